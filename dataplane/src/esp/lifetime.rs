//! Soft and hard SA lifetimes in seconds and kilobytes, checked against a coarse `now` (seconds)
//! given per burst: the worker never reads a clock per packet.

use crate::sa::Lifetime;

/// What an SA reports to the control plane (each at most once per SA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SaEventKind {
    SoftSeconds,
    SoftKilobytes,
    HardSeconds,
    HardKilobytes,
    /// The sequence number space is exhausted (outbound); the SA has stopped.
    SequenceExhausted,
}

impl SaEventKind {
    const ALL: [SaEventKind; 5] = [
        SaEventKind::SoftSeconds,
        SaEventKind::SoftKilobytes,
        SaEventKind::HardSeconds,
        SaEventKind::HardKilobytes,
        SaEventKind::SequenceExhausted,
    ];
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The events newly raised by one burst, as a small set (no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaisedEvents(u8);

impl RaisedEvents {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, kind: SaEventKind) -> bool {
        self.0 & kind.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = SaEventKind> {
        SaEventKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
    pub(crate) fn insert(&mut self, kind: SaEventKind) {
        self.0 |= kind.bit();
    }
    pub(crate) fn insert_all(&mut self, other: RaisedEvents) {
        self.0 |= other.0;
    }
    pub(crate) fn only(kind: SaEventKind) -> Self {
        RaisedEvents(kind.bit())
    }
    pub(crate) fn bits(self) -> u8 {
        self.0
    }
    pub(crate) fn from_bits(bits: u8) -> Self {
        RaisedEvents(bits)
    }
}

pub(crate) struct LifetimeTracker {
    installed_at: u64,
    soft_seconds: u64,
    hard_seconds: u64,
    soft_bytes: u64,
    hard_bytes: u64,
    bytes: u64,
    /// Events already reported, so each is raised once.
    reported: RaisedEvents,
}

impl LifetimeTracker {
    pub fn new(limits: &Lifetime, now: u64) -> Self {
        let kb = |v: Option<u64>| v.map_or(u64::MAX, |k| k.saturating_mul(1024));
        LifetimeTracker {
            installed_at: now,
            soft_seconds: limits.soft_seconds.unwrap_or(u64::MAX),
            hard_seconds: limits.hard_seconds.unwrap_or(u64::MAX),
            soft_bytes: kb(limits.soft_kilobytes),
            hard_bytes: kb(limits.hard_kilobytes),
            bytes: 0,
            reported: RaisedEvents::default(),
        }
    }

    /// True once a hard limit is reached: the SA must drop everything.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.reported.contains(SaEventKind::HardSeconds)
            || self.reported.contains(SaEventKind::HardKilobytes)
            || self.reported.contains(SaEventKind::SequenceExhausted)
    }

    /// Whether `len` more bytes still fit under the hard byte limit.
    #[inline]
    pub fn admits(&self, len: usize) -> bool {
        self.bytes.saturating_add(len as u64) <= self.hard_bytes
    }

    #[inline]
    pub fn add_bytes(&mut self, len: usize) {
        self.bytes += len as u64;
    }

    /// Evaluates the limits at `now` and after the bytes counted so far; returns the events not
    /// reported before. `byte_limit_hit` marks a packet refused by [`admits`](Self::admits).
    pub fn evaluate(&mut self, now: u64, byte_limit_hit: bool) -> RaisedEvents {
        let age = now.saturating_sub(self.installed_at);
        let mut now_true = RaisedEvents::default();
        if age >= self.soft_seconds {
            now_true.insert(SaEventKind::SoftSeconds);
        }
        if age >= self.hard_seconds {
            now_true.insert(SaEventKind::HardSeconds);
        }
        if self.bytes >= self.soft_bytes {
            now_true.insert(SaEventKind::SoftKilobytes);
        }
        if byte_limit_hit || self.bytes >= self.hard_bytes {
            now_true.insert(SaEventKind::HardKilobytes);
        }
        self.raise(now_true)
    }

    pub fn raise(&mut self, events: RaisedEvents) -> RaisedEvents {
        let new = RaisedEvents(events.0 & !self.reported.0);
        self.reported.0 |= new.0;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_raised_once_in_order_of_limits() {
        let limits = Lifetime {
            soft_seconds: Some(10),
            hard_seconds: Some(20),
            soft_kilobytes: Some(1),
            hard_kilobytes: Some(2),
        };
        let mut t = LifetimeTracker::new(&limits, 100);
        assert!(t.evaluate(105, false).is_empty());
        let e = t.evaluate(110, false);
        assert!(e.contains(SaEventKind::SoftSeconds) && !e.contains(SaEventKind::HardSeconds));
        assert!(t.evaluate(111, false).is_empty());
        t.add_bytes(1500);
        assert_eq!(
            t.evaluate(111, false).iter().collect::<Vec<_>>(),
            vec![SaEventKind::SoftKilobytes]
        );
        assert!(!t.admits(600) && t.admits(500));
        assert!(!t.is_dead());
        assert!(t.evaluate(112, true).contains(SaEventKind::HardKilobytes));
        assert!(t.is_dead());
    }
}
