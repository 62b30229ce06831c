//! One routing instance's forwarding table (IPv4 and IPv6): every route the control plane
//! installed, the best one per prefix (lowest preference, earliest installed on a tie), and
//! longest-prefix match over the best ones.
//!
//! The LPM stores a per-prefix slot number rather than the next hop, so a change of best route
//! for an existing prefix (a reverse route shadowing a static one) is one slot write — except
//! for services-unit next hops, which the LPM holds inline (`TrieValue`): a reverse route's
//! lookup then ends in the trie, without a dependent read of a next-hop line that, with
//! 100,000 tunnels, is a cache miss per packet. A change to or from such a next hop repaints the
//! prefix's trie slots instead.

use std::net::IpAddr;

use serde::Serialize;

use super::fast_hash::FastHashMap;
use super::ids::{PortId, UnitId, VrfId};
use super::lpm_v4::{Lpm4, Lpm4Error};
use super::lpm_v6::Lpm6;
use crate::prefix::Prefix;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum NextHop {
    /// A neighbor address out of a port (the address is resolved to a MAC by the worker).
    Neighbor {
        port: PortId,
        gateway: IpAddr,
    },
    /// Delivered to this gateway (punt to control).
    Local,
    /// Into a service set through its inside services unit (a tunnel or a policy rule set).
    ServicesUnit(UnitId),
    Discard,
}

/// Where a route came from; reverse routes show as `Static` with preference 1, as on Junos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RouteOrigin {
    Direct,
    Local,
    Static,
    ReverseRoute,
}

impl RouteOrigin {
    pub fn protocol_name(self) -> &'static str {
        match self {
            RouteOrigin::Direct => "Direct",
            RouteOrigin::Local => "Local",
            RouteOrigin::Static | RouteOrigin::ReverseRoute => "Static",
        }
    }

    /// Junos default preferences: Direct and Local 0, Static 5, reverse routes 1.
    pub fn default_preference(self) -> u32 {
        match self {
            RouteOrigin::Direct | RouteOrigin::Local => 0,
            RouteOrigin::Static => 5,
            RouteOrigin::ReverseRoute => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Route {
    pub prefix: Prefix,
    pub preference: u32,
    pub next_hop: NextHop,
    pub origin: RouteOrigin,
}

impl Route {
    pub fn new(prefix: Prefix, origin: RouteOrigin, next_hop: NextHop) -> Self {
        Route {
            prefix,
            preference: origin.default_preference(),
            next_hop,
            origin,
        }
    }

    /// Two routes are the same route when they agree on everything but the preference.
    fn same_as(&self, other: &Route) -> bool {
        self.prefix == other.prefix
            && self.origin == other.origin
            && self.next_hop == other.next_hop
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    #[error("IPv4 table: {0}")]
    Lpm4(#[from] Lpm4Error),
    #[error("more than {0} prefixes in one table")]
    TooManyPrefixes(u32),
}

/// One route as `show route` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteView {
    pub prefix: Prefix,
    pub protocol: &'static str,
    pub preference: u32,
    pub next_hop: NextHop,
    pub active: bool,
    pub reverse_route: bool,
}

struct PrefixEntry {
    slot: u32,
    /// What the LPM holds for this prefix: `slot`, or its best next hop inline.
    painted: u32,
    /// In install order; the best is recomputed on every change (few candidates per prefix).
    candidates: Vec<Route>,
}

pub struct Fib {
    v4: Lpm4,
    v6: Lpm6,
    prefixes: FastHashMap<Prefix, PrefixEntry>,
    best_next_hop: Vec<NextHop>,
    free_slots: Vec<u32>,
}

impl Default for Fib {
    fn default() -> Self {
        Self::new()
    }
}

/// The LPM's 24-bit values: below `INLINE_UNIT_BASE` a slot of `best_next_hop`; from it up,
/// `NextHop::ServicesUnit(value − INLINE_UNIT_BASE)`.
const INLINE_UNIT_BASE: u32 = 1 << 23;
const MAX_INLINE_UNIT: u32 = super::lpm_v4::MAX_VALUE - INLINE_UNIT_BASE;
/// Prefixes per table: every slot number must stay below the inline units.
const MAX_SLOTS: u32 = INLINE_UNIT_BASE;

fn trie_value(slot: u32, best: &NextHop) -> u32 {
    match best {
        NextHop::ServicesUnit(unit) if unit.0 <= MAX_INLINE_UNIT => INLINE_UNIT_BASE + unit.0,
        _ => slot,
    }
}

impl Fib {
    pub fn new() -> Self {
        Fib {
            v4: Lpm4::new(),
            v6: Lpm6::new(),
            prefixes: FastHashMap::default(),
            best_next_hop: Vec::new(),
            free_slots: Vec::new(),
        }
    }

    #[inline]
    fn decode(&self, value: u32) -> NextHop {
        if value >= INLINE_UNIT_BASE {
            NextHop::ServicesUnit(UnitId(value - INLINE_UNIT_BASE))
        } else {
            self.best_next_hop[value as usize]
        }
    }

    #[inline]
    pub fn lookup_v4(&self, addr: u32) -> Option<NextHop> {
        self.v4.lookup(addr).map(|value| self.decode(value))
    }

    /// First stage of a burst's route lookups: starts loading the trie slot of `addr`.
    #[inline]
    pub fn prefetch(&self, addr: IpAddr) {
        if let IpAddr::V4(a) = addr {
            self.v4.prefetch(u32::from(a));
        }
    }

    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<NextHop> {
        let value = match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        };
        value.map(|value| self.decode(value))
    }

    /// Points the LPM at `best` for `prefix` if what it holds for the prefix changes.
    fn repaint(&mut self, prefix: Prefix, best: NextHop) -> Result<(), FibError> {
        let entry = self
            .prefixes
            .get_mut(&prefix)
            .unwrap_or_else(|| unreachable!("only installed prefixes are repainted"));
        let value = trie_value(entry.slot, &best);
        if value == entry.painted {
            return Ok(());
        }
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), prefix.len(), value)?,
            IpAddr::V6(a) => self.v6.insert(u128::from(a), prefix.len(), value),
        }
        entry.painted = value;
        Ok(())
    }

    /// Installs a route; the same route again only updates its preference.
    pub fn add(&mut self, route: Route) -> Result<(), FibError> {
        if let Some(entry) = self.prefixes.get_mut(&route.prefix) {
            match entry.candidates.iter_mut().find(|r| r.same_as(&route)) {
                Some(existing) => existing.preference = route.preference,
                None => entry.candidates.push(route),
            }
            let slot = entry.slot as usize;
            let best = best_of(&entry.candidates).next_hop;
            self.best_next_hop[slot] = best;
            return self.repaint(route.prefix, best);
        }
        let slot = self.take_slot(route.next_hop)?;
        let painted = trie_value(slot, &route.next_hop);
        let placed = match route.prefix.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), route.prefix.len(), painted),
            IpAddr::V6(a) => {
                self.v6.insert(u128::from(a), route.prefix.len(), painted);
                Ok(())
            }
        };
        if let Err(e) = placed {
            self.free_slots.push(slot);
            return Err(e.into());
        }
        self.prefixes.insert(
            route.prefix,
            PrefixEntry {
                slot,
                painted,
                candidates: vec![route],
            },
        );
        Ok(())
    }

    /// Withdraws a route (matched on prefix, origin and next hop); false if it was not there.
    pub fn remove(&mut self, route: &Route) -> bool {
        let Some(entry) = self.prefixes.get_mut(&route.prefix) else {
            return false;
        };
        let Some(position) = entry.candidates.iter().position(|r| r.same_as(route)) else {
            return false;
        };
        entry.candidates.remove(position);
        if !entry.candidates.is_empty() {
            let slot = entry.slot as usize;
            let best = best_of(&entry.candidates).next_hop;
            self.best_next_hop[slot] = best;
            // Repainting a prefix the LPM already holds only rewrites slots it painted: no
            // chunk is allocated, so this cannot fail.
            let _ = self.repaint(route.prefix, best);
            return true;
        }
        let slot = entry.slot;
        self.prefixes.remove(&route.prefix);
        match route.prefix.addr() {
            IpAddr::V4(a) => {
                let fallback = self.covering_v4(route.prefix);
                // Removal of a valid length cannot fail; a failure would leave a stale slot
                // that still points at a valid (freed, not reused) next hop, so keep the slot.
                if self
                    .v4
                    .remove(u32::from(a), route.prefix.len(), fallback)
                    .is_err()
                {
                    return true;
                }
            }
            IpAddr::V6(a) => {
                self.v6.remove(u128::from(a), route.prefix.len());
            }
        }
        self.free_slots.push(slot);
        true
    }

    /// Every installed route, sorted by prefix then preference, best marked active.
    pub fn routes(&self) -> Vec<RouteView> {
        let mut views: Vec<RouteView> = Vec::new();
        for entry in self.prefixes.values() {
            let best = best_of(&entry.candidates);
            for route in &entry.candidates {
                views.push(RouteView {
                    prefix: route.prefix,
                    protocol: route.origin.protocol_name(),
                    preference: route.preference,
                    next_hop: route.next_hop,
                    active: route.same_as(best),
                    reverse_route: route.origin == RouteOrigin::ReverseRoute,
                });
            }
        }
        views.sort_by(|a, b| {
            (a.prefix, a.preference, !a.active).cmp(&(b.prefix, b.preference, !b.active))
        });
        views
    }

    pub fn route_count(&self) -> usize {
        self.prefixes.values().map(|e| e.candidates.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The LPM value and length of the longest shorter IPv4 prefix covering `prefix`.
    fn covering_v4(&self, prefix: Prefix) -> Option<(u32, u8)> {
        (0..prefix.len()).rev().find_map(|len| {
            let shorter = Prefix::new(prefix.addr(), len)?;
            self.prefixes.get(&shorter).map(|e| (e.painted, len))
        })
    }

    fn take_slot(&mut self, next_hop: NextHop) -> Result<u32, FibError> {
        if let Some(slot) = self.free_slots.pop() {
            self.best_next_hop[slot as usize] = next_hop;
            return Ok(slot);
        }
        let slot = u32::try_from(self.best_next_hop.len())
            .ok()
            .filter(|&s| s < MAX_SLOTS)
            .ok_or(FibError::TooManyPrefixes(MAX_SLOTS))?;
        self.best_next_hop.push(next_hop);
        Ok(slot)
    }
}

fn best_of(candidates: &[Route]) -> &Route {
    // `min_by_key` keeps the first of equal keys: the earliest installed wins a tie.
    candidates
        .iter()
        .min_by_key(|r| r.preference)
        .unwrap_or_else(|| unreachable!("a prefix entry always has a candidate"))
}

/// The FIBs of all routing instances, indexed by `VrfId`.
#[derive(Default)]
pub struct Fibs {
    tables: Vec<Fib>,
}

impl Fibs {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn get(&self, vrf: VrfId) -> Option<&Fib> {
        self.tables.get(usize::from(vrf.0))
    }

    /// The table of `vrf`, created empty on first use (at update time, never per packet).
    pub fn get_or_create(&mut self, vrf: VrfId) -> &mut Fib {
        let index = usize::from(vrf.0);
        while self.tables.len() <= index {
            self.tables.push(Fib::new());
        }
        &mut self.tables[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = (VrfId, &Fib)> {
        self.tables
            .iter()
            .enumerate()
            .map(|(i, fib)| (VrfId(i as u16), fib))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn a(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn lower_preference_wins_and_withdrawal_restores_the_other() {
        let mut fib = Fib::new();
        let uplink = NextHop::Neighbor {
            port: PortId(0),
            gateway: a("10.1.1.254"),
        };
        let static_route = Route::new(p("172.16.2.0/24"), RouteOrigin::Static, uplink);
        let reverse = Route::new(
            p("172.16.2.0/24"),
            RouteOrigin::ReverseRoute,
            NextHop::ServicesUnit(UnitId(7)),
        );
        fib.add(static_route).unwrap();
        fib.add(reverse).unwrap();
        assert_eq!(
            fib.lookup(a("172.16.2.9")),
            Some(NextHop::ServicesUnit(UnitId(7)))
        );
        let views = fib.routes();
        assert_eq!(views.len(), 2);
        assert!(views[0].active && views[0].reverse_route && views[0].preference == 1);
        assert_eq!(views[0].protocol, "Static");
        assert!(fib.remove(&reverse));
        assert_eq!(fib.lookup(a("172.16.2.9")), Some(uplink));
        assert!(!fib.remove(&reverse));
        assert!(fib.remove(&static_route));
        assert!(fib.is_empty());
        assert_eq!(fib.lookup(a("172.16.2.9")), None);
    }

    #[test]
    fn longest_match_across_families_and_fallback_on_removal() {
        let mut fib = Fib::new();
        let default = Route::new(
            p("0.0.0.0/0"),
            RouteOrigin::Static,
            NextHop::Neighbor {
                port: PortId(1),
                gateway: a("10.1.1.254"),
            },
        );
        let tunnel = Route::new(
            p("0.0.0.0/0"),
            RouteOrigin::Static,
            NextHop::ServicesUnit(UnitId(3)),
        );
        let local = Route::new(p("10.1.1.1/32"), RouteOrigin::Local, NextHop::Local);
        let v6 = Route::new(
            p("2001:db8:2::/48"),
            RouteOrigin::ReverseRoute,
            NextHop::ServicesUnit(UnitId(4)),
        );
        fib.add(default).unwrap();
        fib.add(local).unwrap();
        fib.add(v6).unwrap();
        assert_eq!(fib.lookup(a("10.1.1.1")), Some(NextHop::Local));
        assert_eq!(fib.lookup(a("10.1.1.2")), Some(default.next_hop));
        assert_eq!(
            fib.lookup(a("2001:db8:2::1")),
            Some(NextHop::ServicesUnit(UnitId(4)))
        );
        assert_eq!(fib.lookup(a("2001:db8:3::1")), None);
        // A static default into a services unit, steering everything into a link tunnel.
        let mut preferred = tunnel;
        preferred.preference = 2;
        fib.add(preferred).unwrap();
        assert_eq!(
            fib.lookup(a("8.8.8.8")),
            Some(NextHop::ServicesUnit(UnitId(3)))
        );
        assert!(fib.remove(&local));
        assert_eq!(
            fib.lookup(a("10.1.1.1")),
            Some(NextHop::ServicesUnit(UnitId(3)))
        );
    }

    #[test]
    fn units_held_in_the_trie_follow_every_change_of_best_route() {
        let mut fib = Fib::new();
        let unit = |n| NextHop::ServicesUnit(UnitId(n));
        let wide = Route::new(p("16.0.0.0/8"), RouteOrigin::Static, unit(1));
        let narrow = Route::new(p("16.1.2.0/24"), RouteOrigin::ReverseRoute, unit(2));
        fib.add(wide).unwrap();
        fib.add(narrow).unwrap();
        // The /8 changes unit while the /24 inside it is installed: the /24 keeps its slots.
        let mut better = Route::new(p("16.0.0.0/8"), RouteOrigin::Static, unit(3));
        better.preference = 2;
        fib.add(better).unwrap();
        assert_eq!(fib.lookup(a("16.1.2.1")), Some(unit(2)));
        assert_eq!(fib.lookup(a("16.1.3.1")), Some(unit(3)));
        // Withdrawing the /24 falls back to what the /8 holds now, not what it held then.
        assert!(fib.remove(&narrow));
        assert_eq!(fib.lookup(a("16.1.2.1")), Some(unit(3)));
        assert!(fib.remove(&better));
        assert_eq!(fib.lookup(a("16.1.2.1")), Some(unit(1)));
        // A unit number too large for the trie is reached through its slot instead.
        let far = Route::new(
            p("16.1.2.0/24"),
            RouteOrigin::ReverseRoute,
            unit(MAX_INLINE_UNIT + 1),
        );
        fib.add(far).unwrap();
        assert_eq!(fib.lookup(a("16.1.2.1")), Some(unit(MAX_INLINE_UNIT + 1)));
        assert_eq!(fib.lookup(a("16.1.3.1")), Some(unit(1)));
        assert_eq!(fib.lookup(a("2001:db8::1")), None);
        let v6_far = Route::new(
            p("2001:db8::/32"),
            RouteOrigin::ReverseRoute,
            unit(u32::MAX),
        );
        fib.add(v6_far).unwrap();
        assert_eq!(fib.lookup(a("2001:db8::1")), Some(unit(u32::MAX)));
    }
}
