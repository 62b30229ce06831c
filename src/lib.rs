//! dyntun as a library: the gateway daemon (`dyntun run`) and the pieces an embedding host uses
//! through the C API (`ffi/capi`): [`daemon::embedded::EmbeddedGateway`] and
//! [`daemon::host_worker::HostWorker`].

pub mod daemon;
