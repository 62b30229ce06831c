//! Scenario-test support shared by the IKE interop tests and (later) the end-to-end tests:
//! network namespaces with veth links, real strongSwan charons driven through swanctl, the
//! dyntun responder running inside a namespace, and scapy as an independent ESP oracle.
//! Everything started here is stopped by PID and removed by name when its guard drops.

#![allow(dead_code)]

pub mod esp_oracle;
pub mod gateway;
pub mod netns;
pub mod strongswan;

/// A name unique to this process and call, short enough for interface names (15 bytes).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// Runs a command, returning stdout; panics with stderr on failure (setup steps only).
pub fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
