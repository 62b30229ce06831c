//! The per-packet side of dyntun.
//!
//! `dataplane` never depends on `control`: the control plane tells it what to do with the typed
//! values defined here (SA specifications, table updates) and hears back through typed events.

pub mod buf;
pub mod mbuf_buf;
pub mod prefix;
pub mod sa;

pub mod crypto;
pub mod esp;
pub mod pipeline;
pub mod tables;
pub mod wire;
