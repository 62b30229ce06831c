//! The C API of dyntun, for a host (a vRouter) that owns the EAL, the ports, the lcores and the
//! mbufs and embeds dyntun in its own DPDK process. The header `include/dyntun.h` is generated
//! from this crate by cbindgen (build.rs); docs/c-api.md explains ownership and threads.
//!
//! Every exported function catches panics at the boundary and turns them into
//! `DYNTUN_ERR_PANIC` with a message (`dyntun_last_error`).

pub mod events;
pub mod gateway;
pub mod logging;
pub mod status;
pub mod worker;
