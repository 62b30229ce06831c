//! IPsec rule lookup for traffic entering a service set through a services unit
//! (`match-direction input`): the service set's static rules in configured order first, then
//! the implicit dynamic rules created for accepted proxy identities.
//!
//! Dynamic rules are found by one hash probe per destination prefix length in use (usually one
//! or two), keyed by (unit, destination network), so the cost does not grow with the number of
//! tunnels; the few rules sharing a key are then checked for their source. For IPv4 the first
//! rule of a key lives in the probed slot itself, so the usual lookup reads one cache line.

use std::net::IpAddr;

use serde::Serialize;

use super::fast_hash::FastHashMap;
use super::ids::{DynamicRuleId, ServiceSetId, TunnelId, UnitId, WorkerId};
use super::lpm_v6::mask_v6;
use super::prefetch_index::{IndexValue, PrefetchIndex};
use crate::prefix::Prefix;

/// The tunnel a rule sends traffic into, and the worker owning its SAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RuleTarget {
    pub tunnel: TunnelId,
    pub owner: WorkerId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TermAction {
    Protect(RuleTarget),
    /// Forward in clear (a term without an IPsec action).
    Bypass,
    Discard,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaticTerm {
    pub name: String,
    /// `from ipsec-inside-interface`; `None` matches every unit of the service set.
    pub inside_unit: Option<UnitId>,
    /// Empty means any.
    pub sources: Vec<Prefix>,
    pub destinations: Vec<Prefix>,
    pub action: TermAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaticRule {
    pub name: String,
    pub terms: Vec<StaticTerm>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DynamicRule {
    pub id: DynamicRuleId,
    /// `ipsec-inside-interface`: the unit the tunnel took from the pool.
    pub inside_unit: UnitId,
    /// Local proxy (packet source) and remote proxy (packet destination).
    pub source: Prefix,
    pub destination: Prefix,
    pub target: RuleTarget,
}

/// Which rule matched, for counters and tracing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Static { rule: u16, term: u16 },
    Dynamic(DynamicRuleId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    pub action: TermAction,
    pub by: MatchedBy,
}

const UNBOUND: u16 = u16::MAX;

/// Where a dynamic rule is filed: IPv4 rules in one map per destination length keyed by
/// `unit << 32 | network` (an 8-byte key: one multiply to hash, a small entry to fetch),
/// IPv6 rules by (unit, length, network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DynamicKey {
    V4 { len: u8, key: u64 },
    V6 { unit: u32, len: u8, network: u128 },
}

impl DynamicKey {
    fn family(self) -> usize {
        match self {
            DynamicKey::V4 { .. } => 0,
            DynamicKey::V6 { .. } => 1,
        }
    }

    fn len(self) -> u8 {
        match self {
            DynamicKey::V4 { len, .. } | DynamicKey::V6 { len, .. } => len,
        }
    }
}

#[inline]
fn v4_key(unit: UnitId, network: u32) -> u64 {
    (u64::from(unit.0) << 32) | u64::from(network)
}

/// The first IPv4 rule of a key, as the index slot holds it: everything the lookup needs, in 24
/// bytes, so that a slot (with its key) is half a cache line.
#[derive(Clone, Copy)]
#[repr(C)]
struct V4Head {
    source_network: u32,
    source_mask: u32,
    tunnel: u32,
    id: u32,
    /// Index into `v4_overflow` of the other rules sharing the key, or `NO_OVERFLOW`.
    overflow: u32,
    owner: u16,
    occupied: bool,
}

const NO_OVERFLOW: u32 = u32::MAX;

impl IndexValue for V4Head {
    const VACANT: Self = V4Head {
        source_network: 0,
        source_mask: 0,
        tunnel: 0,
        id: 0,
        overflow: NO_OVERFLOW,
        owner: 0,
        occupied: false,
    };
    fn is_vacant(&self) -> bool {
        !self.occupied
    }
}

impl V4Head {
    fn of(rule: &DynamicRule, overflow: u32) -> Option<V4Head> {
        let IpAddr::V4(source) = rule.source.addr() else {
            return None;
        };
        Some(V4Head {
            source_network: u32::from(source),
            source_mask: mask_for(false, rule.source.len()) as u32,
            tunnel: rule.target.tunnel.0,
            id: rule.id.0,
            overflow,
            owner: rule.target.owner.0,
            occupied: true,
        })
    }

    #[inline]
    fn matches(&self, source: u32) -> bool {
        source & self.source_mask == self.source_network
    }

    #[inline]
    fn rule_match(&self) -> RuleMatch {
        RuleMatch {
            action: TermAction::Protect(RuleTarget {
                tunnel: TunnelId(self.tunnel),
                owner: WorkerId(self.owner),
            }),
            by: MatchedBy::Dynamic(DynamicRuleId(self.id)),
        }
    }

    /// The rule back from its compact form and its key.
    fn rule(&self, key: u64, len: u8) -> DynamicRule {
        let network = std::net::Ipv4Addr::from(key as u32);
        let source_len = self.source_mask.count_ones() as u8;
        let source = std::net::Ipv4Addr::from(self.source_network);
        DynamicRule {
            id: DynamicRuleId(self.id),
            inside_unit: UnitId((key >> 32) as u32),
            source: Prefix::new(IpAddr::V4(source), source_len).unwrap_or_else(Prefix::any_v4),
            destination: Prefix::new(IpAddr::V4(network), len).unwrap_or_else(Prefix::any_v4),
            target: RuleTarget {
                tunnel: TunnelId(self.tunnel),
                owner: WorkerId(self.owner),
            },
        }
    }
}

/// Rules sharing one key (IPv6); the first is stored inline so the usual single rule costs no
/// second memory access.
struct DynamicBucket {
    first: DynamicRule,
    others: Vec<DynamicRule>,
}

impl DynamicBucket {
    fn iter(&self) -> impl Iterator<Item = &DynamicRule> {
        std::iter::once(&self.first).chain(self.others.iter())
    }
}

pub struct RuleTable {
    /// Indexed by unit id (control hands out dense ids): one small array read per packet.
    unit_service_set: Vec<u16>,
    static_rules: Vec<Vec<StaticRule>>,
    /// IPv4 dynamic rules: per destination length, an index whose probe line a burst can
    /// prefetch and which holds each key's first rule; further rules of a key (rare: two
    /// tunnels protecting the same remote network from different local networks) sit in one
    /// slab of lists, reused through `v4_overflow_free`.
    dynamic_v4: Vec<PrefetchIndex<V4Head>>,
    v4_overflow: Vec<Vec<DynamicRule>>,
    v4_overflow_free: Vec<u32>,
    dynamic_v6: FastHashMap<(u32, u8, u128), DynamicBucket>,
    dynamic_index: FastHashMap<DynamicRuleId, DynamicKey>,
    /// Destination lengths in use, longest first, per family (index 0 IPv4, 1 IPv6).
    lengths: [Vec<u8>; 2],
    per_length: [Vec<u32>; 2],
}

/// Mask for `len` bits of an address stored right-aligned in a u128.
#[inline]
fn mask_for(is_v6: bool, len: u8) -> u128 {
    if is_v6 {
        mask_v6(len)
    } else if len == 0 {
        0
    } else {
        u128::from(u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn key_of(unit: UnitId, destination: &Prefix) -> DynamicKey {
    let len = destination.len();
    match destination.addr() {
        IpAddr::V4(a) => DynamicKey::V4 {
            len,
            key: v4_key(unit, u32::from(a)),
        },
        IpAddr::V6(a) => DynamicKey::V6 {
            unit: unit.0,
            len,
            network: u128::from(a),
        },
    }
}

fn any_contains(prefixes: &[Prefix], addr: IpAddr) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| p.contains(addr))
}

impl Default for RuleTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RuleTable {
    pub fn new() -> Self {
        RuleTable {
            unit_service_set: Vec::new(),
            static_rules: Vec::new(),
            dynamic_v4: (0..=32).map(|_| PrefetchIndex::new()).collect(),
            v4_overflow: Vec::new(),
            v4_overflow_free: Vec::new(),
            dynamic_v6: FastHashMap::default(),
            dynamic_index: FastHashMap::default(),
            lengths: [Vec::new(), Vec::new()],
            per_length: [vec![0; 129], vec![0; 129]],
        }
    }

    /// Declares that `unit` is an inside unit of `service_set` (its static rules apply there).
    pub fn bind_unit(&mut self, unit: UnitId, service_set: ServiceSetId) {
        let index = unit.0 as usize;
        if self.unit_service_set.len() <= index {
            self.unit_service_set.resize(index + 1, UNBOUND);
        }
        self.unit_service_set[index] = service_set.0;
    }

    pub fn unbind_unit(&mut self, unit: UnitId) {
        if let Some(slot) = self.unit_service_set.get_mut(unit.0 as usize) {
            *slot = UNBOUND;
        }
    }

    pub fn set_static_rules(&mut self, service_set: ServiceSetId, rules: Vec<StaticRule>) {
        let index = usize::from(service_set.0);
        while self.static_rules.len() <= index {
            self.static_rules.push(Vec::new());
        }
        self.static_rules[index] = rules;
    }

    /// Adds a dynamic rule; a rule with the same id is replaced. A rule whose source and
    /// destination are of different families could never match a packet and is not kept.
    pub fn add_dynamic(&mut self, rule: DynamicRule) {
        self.remove_dynamic(rule.id);
        if rule.source.addr().is_ipv4() != rule.destination.addr().is_ipv4() {
            return;
        }
        let key = key_of(rule.inside_unit, &rule.destination);
        match key {
            DynamicKey::V4 { len, key } => self.add_v4(len, key, rule),
            DynamicKey::V6 { unit, len, network } => {
                match self.dynamic_v6.get_mut(&(unit, len, network)) {
                    Some(bucket) => bucket.others.push(rule),
                    None => {
                        self.dynamic_v6.insert(
                            (unit, len, network),
                            DynamicBucket {
                                first: rule,
                                others: Vec::new(),
                            },
                        );
                    }
                }
            }
        }
        let family = key.family();
        let len = usize::from(key.len());
        self.dynamic_index.insert(rule.id, key);
        self.per_length[family][len] += 1;
        if self.per_length[family][len] == 1 {
            self.lengths[family].push(key.len());
            self.lengths[family].sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    fn add_v4(&mut self, len: u8, key: u64, rule: DynamicRule) {
        let index = &mut self.dynamic_v4[usize::from(len)];
        let Some(head) = index.get_mut(key) else {
            if let Some(head) = V4Head::of(&rule, NO_OVERFLOW) {
                index.insert(key, head);
            }
            return;
        };
        if head.overflow == NO_OVERFLOW {
            head.overflow = match self.v4_overflow_free.pop() {
                Some(free) => free,
                None => {
                    self.v4_overflow.push(Vec::new());
                    (self.v4_overflow.len() - 1) as u32
                }
            };
        }
        self.v4_overflow[head.overflow as usize].push(rule);
    }

    pub fn remove_dynamic(&mut self, id: DynamicRuleId) -> Option<DynamicRule> {
        let key = self.dynamic_index.remove(&id)?;
        let removed = match key {
            DynamicKey::V4 { len, key } => self.remove_v4(len, key, id),
            DynamicKey::V6 { unit, len, network } => {
                let bucket = self.dynamic_v6.get_mut(&(unit, len, network))?;
                if bucket.first.id == id {
                    if bucket.others.is_empty() {
                        self.dynamic_v6
                            .remove(&(unit, len, network))
                            .map(|b| b.first)
                    } else {
                        let promoted = bucket.others.remove(0);
                        Some(std::mem::replace(&mut bucket.first, promoted))
                    }
                } else {
                    let position = bucket.others.iter().position(|r| r.id == id)?;
                    Some(bucket.others.remove(position))
                }
            }
        }?;
        let family = key.family();
        let len = usize::from(key.len());
        self.per_length[family][len] -= 1;
        if self.per_length[family][len] == 0 {
            self.lengths[family].retain(|&l| l != key.len());
        }
        Some(removed)
    }

    fn remove_v4(&mut self, len: u8, key: u64, id: DynamicRuleId) -> Option<DynamicRule> {
        let index = &mut self.dynamic_v4[usize::from(len)];
        let head = *index.get(key)?;
        if head.id == id.0 {
            let removed = head.rule(key, len);
            if head.overflow == NO_OVERFLOW {
                index.remove(key);
                return Some(removed);
            }
            let list = &mut self.v4_overflow[head.overflow as usize];
            let promoted = list.remove(0);
            let overflow = if list.is_empty() {
                self.v4_overflow_free.push(head.overflow);
                NO_OVERFLOW
            } else {
                head.overflow
            };
            // Only IPv4-sourced rules are filed here, so the promoted rule has a head form.
            if let Some(head) = V4Head::of(&promoted, overflow) {
                index.insert(key, head);
            }
            return Some(removed);
        }
        if head.overflow == NO_OVERFLOW {
            return None;
        }
        let list = &mut self.v4_overflow[head.overflow as usize];
        let position = list.iter().position(|r| r.id == id)?;
        let removed = list.remove(position);
        if list.is_empty() {
            self.v4_overflow_free.push(head.overflow);
            if let Some(head) = index.get_mut(key) {
                head.overflow = NO_OVERFLOW;
            }
        }
        Some(removed)
    }

    pub fn dynamic_count(&self) -> usize {
        self.dynamic_index.len()
    }

    /// The first matching rule for a packet entering through `unit`.
    #[inline]
    pub fn lookup(&self, unit: UnitId, source: IpAddr, destination: IpAddr) -> Option<RuleMatch> {
        self.lookup_static(unit, source, destination)
            .or_else(|| self.lookup_dynamic(unit, source, destination))
    }

    fn lookup_static(
        &self,
        unit: UnitId,
        source: IpAddr,
        destination: IpAddr,
    ) -> Option<RuleMatch> {
        let service_set = *self.unit_service_set.get(unit.0 as usize)?;
        let rules = self.static_rules.get(usize::from(service_set))?;
        for (rule_index, rule) in rules.iter().enumerate() {
            for (term_index, term) in rule.terms.iter().enumerate() {
                if (term.inside_unit.is_none() || term.inside_unit == Some(unit))
                    && any_contains(&term.sources, source)
                    && any_contains(&term.destinations, destination)
                {
                    return Some(RuleMatch {
                        action: term.action,
                        by: MatchedBy::Static {
                            rule: rule_index as u16,
                            term: term_index as u16,
                        },
                    });
                }
            }
        }
        None
    }

    #[inline]
    fn lookup_dynamic(
        &self,
        unit: UnitId,
        source: IpAddr,
        destination: IpAddr,
    ) -> Option<RuleMatch> {
        match (source, destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.lookup_dynamic_v4(unit, s.into(), d.into()),
            (IpAddr::V6(_), IpAddr::V6(d)) => self.lookup_dynamic_v6(unit, source, d.into()),
            // Rules of mixed families are never kept.
            _ => None,
        }
    }

    #[inline]
    fn lookup_dynamic_v4(&self, unit: UnitId, source: u32, destination: u32) -> Option<RuleMatch> {
        for &len in &self.lengths[0] {
            let network = destination & mask_for(false, len) as u32;
            let Some(head) = self.dynamic_v4[usize::from(len)].get(v4_key(unit, network)) else {
                continue;
            };
            if head.matches(source) {
                return Some(head.rule_match());
            }
            if let Some(rule) = self
                .v4_overflow
                .get(head.overflow as usize)
                .and_then(|others| {
                    others
                        .iter()
                        .find(|r| r.source.contains(IpAddr::V4(source.into())))
                })
            {
                return Some(RuleMatch {
                    action: TermAction::Protect(rule.target),
                    by: MatchedBy::Dynamic(rule.id),
                });
            }
        }
        None
    }

    fn lookup_dynamic_v6(
        &self,
        unit: UnitId,
        source: IpAddr,
        destination: u128,
    ) -> Option<RuleMatch> {
        for &len in &self.lengths[1] {
            let network = destination & mask_for(true, len);
            let Some(bucket) = self.dynamic_v6.get(&(unit.0, len, network)) else {
                continue;
            };
            if let Some(rule) = bucket.iter().find(|r| r.source.contains(source)) {
                return Some(RuleMatch {
                    action: TermAction::Protect(rule.target),
                    by: MatchedBy::Dynamic(rule.id),
                });
            }
        }
        None
    }

    /// First stage of a burst's rule lookups: starts loading the index line that the dynamic
    /// lookup of this packet probes first (the longest IPv4 destination length in use).
    #[inline]
    pub fn prefetch_dynamic_index(&self, unit: UnitId, destination: IpAddr) {
        if let (IpAddr::V4(address), Some(&len)) = (destination, self.lengths[0].first()) {
            let network = u128::from(u32::from(address)) & mask_for(false, len);
            self.dynamic_v4[usize::from(len)].prefetch(v4_key(unit, network as u32));
        }
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

    fn target(tunnel: u32) -> RuleTarget {
        RuleTarget {
            tunnel: TunnelId(tunnel),
            owner: WorkerId(0),
        }
    }

    fn dynamic(id: u32, unit: u32, source: &str, destination: &str) -> DynamicRule {
        DynamicRule {
            id: DynamicRuleId(id),
            inside_unit: UnitId(unit),
            source: p(source),
            destination: p(destination),
            target: target(id),
        }
    }

    #[test]
    fn static_rules_shadow_dynamic_ones_in_configured_order() {
        let mut rules = RuleTable::new();
        rules.bind_unit(UnitId(1), ServiceSetId(0));
        rules.add_dynamic(dynamic(10, 1, "172.16.1.0/24", "172.16.2.0/24"));
        assert_eq!(
            rules.lookup(UnitId(1), a("172.16.1.5"), a("172.16.2.5")),
            Some(RuleMatch {
                action: TermAction::Protect(target(10)),
                by: MatchedBy::Dynamic(DynamicRuleId(10)),
            })
        );
        rules.set_static_rules(
            ServiceSetId(0),
            vec![StaticRule {
                name: "rule-static".into(),
                terms: vec![
                    StaticTerm {
                        name: "t-other".into(),
                        inside_unit: None,
                        sources: vec![],
                        destinations: vec![p("192.168.0.0/16")],
                        action: TermAction::Discard,
                    },
                    StaticTerm {
                        name: "t-host".into(),
                        inside_unit: Some(UnitId(1)),
                        sources: vec![],
                        destinations: vec![p("172.16.2.5/32")],
                        action: TermAction::Protect(target(99)),
                    },
                ],
            }],
        );
        let shadowed = rules
            .lookup(UnitId(1), a("172.16.1.5"), a("172.16.2.5"))
            .unwrap();
        assert_eq!(shadowed.action, TermAction::Protect(target(99)));
        assert_eq!(shadowed.by, MatchedBy::Static { rule: 0, term: 1 });
        let dynamic_still = rules
            .lookup(UnitId(1), a("172.16.1.5"), a("172.16.2.6"))
            .unwrap();
        assert_eq!(dynamic_still.by, MatchedBy::Dynamic(DynamicRuleId(10)));
    }

    #[test]
    fn dynamic_rules_need_unit_source_and_destination() {
        let mut rules = RuleTable::new();
        rules.add_dynamic(dynamic(1, 1, "172.16.1.0/24", "172.16.2.0/24"));
        rules.add_dynamic(dynamic(2, 1, "172.16.1.0/24", "172.16.3.0/24"));
        rules.add_dynamic(dynamic(3, 2, "0.0.0.0/0", "0.0.0.0/0"));
        rules.add_dynamic(dynamic(4, 1, "2001:db8:1::/48", "2001:db8:2::/48"));
        let hit = |unit, s, d| {
            rules
                .lookup(UnitId(unit), a(s), a(d))
                .map(|m| m.by)
                .unwrap_or(MatchedBy::Static {
                    rule: 999,
                    term: 999,
                })
        };
        assert_eq!(
            hit(1, "172.16.1.1", "172.16.3.1"),
            MatchedBy::Dynamic(DynamicRuleId(2))
        );
        assert_eq!(
            hit(1, "172.16.9.1", "172.16.3.1"),
            MatchedBy::Static {
                rule: 999,
                term: 999
            }
        );
        assert_eq!(
            hit(2, "1.2.3.4", "5.6.7.8"),
            MatchedBy::Dynamic(DynamicRuleId(3))
        );
        assert_eq!(
            hit(1, "2001:db8:1::1", "2001:db8:2::1"),
            MatchedBy::Dynamic(DynamicRuleId(4))
        );
        assert!(rules
            .lookup(UnitId(1), a("10.0.0.1"), a("10.0.0.2"))
            .is_none());
        for id in 1..=4 {
            assert!(rules.remove_dynamic(DynamicRuleId(id)).is_some());
        }
        assert!(rules.remove_dynamic(DynamicRuleId(1)).is_none());
        assert_eq!(rules.dynamic_count(), 0);
        assert!(rules
            .lookup(UnitId(2), a("1.2.3.4"), a("5.6.7.8"))
            .is_none());
    }

    #[test]
    fn rules_sharing_a_destination_are_told_apart_by_source() {
        let mut rules = RuleTable::new();
        rules.add_dynamic(dynamic(1, 5, "172.16.1.0/24", "172.16.2.0/24"));
        rules.add_dynamic(dynamic(2, 5, "172.16.9.0/24", "172.16.2.0/24"));
        rules.add_dynamic(dynamic(3, 5, "172.16.8.0/24", "172.16.2.0/24"));
        let by = |rules: &RuleTable, source: &str| {
            rules
                .lookup(UnitId(5), a(source), a("172.16.2.1"))
                .map(|m| m.by)
        };
        assert_eq!(
            by(&rules, "172.16.9.1"),
            Some(MatchedBy::Dynamic(DynamicRuleId(2)))
        );
        assert!(rules.remove_dynamic(DynamicRuleId(1)).is_some());
        assert_eq!(by(&rules, "172.16.1.1"), None);
        assert_eq!(
            by(&rules, "172.16.9.1"),
            Some(MatchedBy::Dynamic(DynamicRuleId(2)))
        );
        assert_eq!(
            by(&rules, "172.16.8.1"),
            Some(MatchedBy::Dynamic(DynamicRuleId(3)))
        );
        assert!(rules.remove_dynamic(DynamicRuleId(3)).is_some());
        assert!(rules.remove_dynamic(DynamicRuleId(2)).is_some());
        assert_eq!(by(&rules, "172.16.9.1"), None);
        assert_eq!(rules.dynamic_count(), 0);
    }

    /// Random adds and removes of rules that often share a key (so heads are promoted and the
    /// overflow lists come and go), checked against a plain list searched in order of arrival.
    #[test]
    fn dynamic_lookup_agrees_with_a_linear_search_through_churn() {
        let mut rules = RuleTable::new();
        let mut reference: Vec<DynamicRule> = Vec::new();
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u32 {
            let r = next();
            let id = (r % 64) as u32;
            if r & 0x100 == 0 {
                assert_eq!(
                    rules.remove_dynamic(DynamicRuleId(id)).map(|r| r.id),
                    reference
                        .iter()
                        .position(|r| r.id.0 == id)
                        .map(|at| reference.remove(at).id),
                    "round {round}"
                );
            } else {
                // Three destinations and four sources: plenty of rules per key.
                let rule = dynamic(
                    id,
                    1 + (r >> 12) as u32 % 2,
                    &format!("10.{}.0.0/16", (r >> 16) % 4),
                    &format!("172.16.{}.0/24", (r >> 20) % 3),
                );
                rules.add_dynamic(rule);
                reference.retain(|r| r.id.0 != id);
                reference.push(rule);
            }
            let probe = next();
            let unit = UnitId(1 + (probe % 2) as u32);
            let source = a(&format!("10.{}.1.1", (probe >> 8) % 5));
            let destination = a(&format!("172.16.{}.9", (probe >> 16) % 4));
            // Rules of one key are tried in arrival order; keys are disjoint here (one length).
            let expected = reference
                .iter()
                .find(|r| {
                    r.inside_unit == unit
                        && r.source.contains(source)
                        && r.destination.contains(destination)
                })
                .map(|r| MatchedBy::Dynamic(r.id));
            assert_eq!(
                rules.lookup(unit, source, destination).map(|m| m.by),
                expected,
                "round {round}"
            );
        }
        assert_eq!(rules.dynamic_count(), reference.len());
    }

    #[test]
    fn a_rule_mixing_address_families_is_not_kept() {
        let mut rules = RuleTable::new();
        rules.add_dynamic(dynamic(1, 1, "2001:db8::/32", "172.16.2.0/24"));
        rules.add_dynamic(dynamic(2, 1, "172.16.1.0/24", "2001:db8::/32"));
        assert_eq!(rules.dynamic_count(), 0);
        assert!(rules.remove_dynamic(DynamicRuleId(1)).is_none());
        assert!(rules
            .lookup(UnitId(1), a("172.16.1.1"), a("172.16.2.1"))
            .is_none());
    }
}
