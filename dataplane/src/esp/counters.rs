//! Per-SA counters: written only by the owning worker, read by any thread without stopping it.
//!
//! Single writer, so each update is a relaxed load and store (no locked read-modify-write on the
//! packet path); a reader sees each counter torn-free, possibly a burst behind.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct SaCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    auth_failures: AtomicU64,
    replays: AtomicU64,
    bad_padding: AtomicU64,
    bad_header: AtomicU64,
    other_drops: AtomicU64,
}

/// A copy of the counters at one moment, for `show` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSnapshot {
    pub packets: u64,
    pub bytes: u64,
    pub auth_failures: u64,
    pub replays: u64,
    pub bad_padding: u64,
    pub bad_header: u64,
    /// No room, expired, too big, wrong SPI, fragments, sequence exhausted.
    pub other_drops: u64,
}

/// Increments collected over one burst, published with one store per counter.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BurstTally {
    pub packets: u64,
    pub bytes: u64,
    pub auth_failures: u64,
    pub replays: u64,
    pub bad_padding: u64,
    pub bad_header: u64,
    pub other_drops: u64,
}

impl BurstTally {
    pub fn drop(&mut self, reason: super::DropReason) {
        use super::DropReason::*;
        match reason {
            Authentication => self.auth_failures += 1,
            Replay => self.replays += 1,
            BadPadding => self.bad_padding += 1,
            BadHeader | Truncated => self.bad_header += 1,
            _ => self.other_drops += 1,
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    if by != 0 {
        counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
    }
}

impl SaCounters {
    /// Owner-thread only: adds one burst's tally.
    pub(crate) fn publish(&self, t: &BurstTally) {
        bump(&self.packets, t.packets);
        bump(&self.bytes, t.bytes);
        bump(&self.auth_failures, t.auth_failures);
        bump(&self.replays, t.replays);
        bump(&self.bad_padding, t.bad_padding);
        bump(&self.bad_header, t.bad_header);
        bump(&self.other_drops, t.other_drops);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            replays: self.replays.load(Relaxed),
            bad_padding: self.bad_padding.load(Relaxed),
            bad_header: self.bad_header.load(Relaxed),
            other_drops: self.other_drops.load(Relaxed),
        }
    }
}

/// An SA's counters as the SA and `show` share them: in huge-page memory, one cache line with
/// their reference count (`tables::huge_slab`), since every packet of a cold SA touches them.
pub type SharedCounters = crate::tables::huge_slab::HugeArc<SaCounters>;
