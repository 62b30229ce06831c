//! When learned neighbors are probed again and when they are forgotten: an entry not confirmed
//! for `reachable` is probed (ARP request / neighbor solicitation, which a live neighbor
//! answers, refreshing it); one still unconfirmed `grace` later is removed from the workers'
//! cache, so traffic towards a host that went away stops being sent to a stale MAC.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dataplane::tables::PortId;

pub struct NeighborAging {
    confirmed: HashMap<(PortId, IpAddr), Instant>,
    reachable: Duration,
    grace: Duration,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct AgingWork {
    pub probe: Vec<(PortId, IpAddr)>,
    pub forget: Vec<(PortId, IpAddr)>,
}

impl NeighborAging {
    pub fn new(reachable: Duration, grace: Duration) -> Self {
        NeighborAging {
            confirmed: HashMap::new(),
            reachable,
            grace,
        }
    }

    pub fn confirmed(&mut self, port: PortId, address: IpAddr, now: Instant) {
        self.confirmed.insert((port, address), now);
    }

    /// What to probe and what to forget at `now`; forgotten entries leave the tracker.
    pub fn due(&mut self, now: Instant) -> AgingWork {
        let mut work = AgingWork::default();
        let (reachable, grace) = (self.reachable, self.grace);
        self.confirmed.retain(|key, seen| {
            let age = now.saturating_duration_since(*seen);
            if age >= reachable + grace {
                work.forget.push(*key);
                false
            } else {
                if age >= reachable {
                    work.probe.push(*key);
                }
                true
            }
        });
        work.probe.sort();
        work.forget.sort();
        work
    }

    /// How many neighbors are tracked (for `show dataplane statistics`).
    pub fn tracked(&self) -> usize {
        self.confirmed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_neighbors_are_probed_then_forgotten_unless_they_answer() {
        let mut aging = NeighborAging::new(Duration::from_secs(60), Duration::from_secs(10));
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) =
            ("10.1.1.254".parse().unwrap(), "fd00:1::10".parse().unwrap());
        aging.confirmed(PortId(0), a, t0);
        aging.confirmed(PortId(1), b, t0);
        assert_eq!(
            aging.due(t0 + Duration::from_secs(30)),
            AgingWork::default()
        );
        let work = aging.due(t0 + Duration::from_secs(61));
        assert_eq!(work.probe, vec![(PortId(0), a), (PortId(1), b)]);
        assert!(work.forget.is_empty());
        // Only `a` answers the probe.
        aging.confirmed(PortId(0), a, t0 + Duration::from_secs(62));
        let work = aging.due(t0 + Duration::from_secs(71));
        assert_eq!(work.forget, vec![(PortId(1), b)]);
        assert!(work.probe.is_empty());
        assert_eq!(aging.tracked(), 1);
    }
}
