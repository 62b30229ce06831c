//! What every DPDK test binary shares: one EAL per process (cargo runs the tests of a binary on
//! several threads, and EAL can be initialised only once), and unique names.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use dpdk::Eal;

/// The process-wide EAL: two lcores (main + one worker), no hugepages, no PCI scan, and a
/// runtime directory unique to this process (the crate adds it) that is removed at exit.
pub fn eal() -> &'static Eal {
    Eal::init_global([
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
        "--log-level=lib.eal:warning",
    ])
    .unwrap_or_else(|e| panic!("test EAL must start: {e}"))
}

/// A name unique in this process, short enough for DPDK's 25-29 byte object names.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
