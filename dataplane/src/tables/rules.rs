//! IPsec rule lookup for traffic entering a service set through a services unit
//! (`match-direction input`): the service set's static rules in configured order first, then
//! the implicit dynamic rules created for accepted proxy identities.
//!
//! Dynamic rules are found by one hash probe per destination prefix length in use (usually one
//! or two), keyed by (unit, destination network), so the cost does not grow with the number of
//! tunnels; the few rules sharing a key are then checked for their source.

use std::net::IpAddr;

use serde::Serialize;

use super::fast_hash::FastHashMap;
use super::huge_pages::advise_huge_pages;
use super::ids::{DynamicRuleId, ServiceSetId, TunnelId, UnitId, WorkerId};
use super::lpm_v6::mask_v6;
use super::prefetch_index::PrefetchIndex;
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

/// Rules sharing one key; the first is stored inline so the usual single rule costs no
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
    /// prefetch, pointing into one slab of buckets (reused through `v4_free`).
    dynamic_v4: Vec<PrefetchIndex>,
    v4_buckets: Vec<Option<DynamicBucket>>,
    v4_free: Vec<u32>,
    dynamic_v6: FastHashMap<(u32, u8, u128), DynamicBucket>,
    dynamic_index: FastHashMap<DynamicRuleId, DynamicKey>,
    /// Destination lengths in use, longest first, per family (index 0 IPv4, 1 IPv6).
    lengths: [Vec<u8>; 2],
    per_length: [Vec<u32>; 2],
}

fn family_bits(addr: IpAddr) -> (bool, u128) {
    match addr {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
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
            v4_buckets: Vec::new(),
            v4_free: Vec::new(),
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

    /// Adds a dynamic rule; a rule with the same id is replaced.
    pub fn add_dynamic(&mut self, rule: DynamicRule) {
        self.remove_dynamic(rule.id);
        let key = key_of(rule.inside_unit, &rule.destination);
        let family = key.family();
        let len = usize::from(key.len());
        match self.bucket_mut(key) {
            Some(bucket) => bucket.others.push(rule),
            None => self.insert_bucket(
                key,
                DynamicBucket {
                    first: rule,
                    others: Vec::new(),
                },
            ),
        }
        self.dynamic_index.insert(rule.id, key);
        self.per_length[family][len] += 1;
        if self.per_length[family][len] == 1 {
            self.lengths[family].push(key.len());
            self.lengths[family].sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    pub fn remove_dynamic(&mut self, id: DynamicRuleId) -> Option<DynamicRule> {
        let key = self.dynamic_index.remove(&id)?;
        let bucket = self.bucket_mut(key)?;
        let removed = if bucket.first.id == id {
            if bucket.others.is_empty() {
                self.remove_bucket(key).map(|b| b.first)?
            } else {
                let promoted = bucket.others.remove(0);
                std::mem::replace(&mut bucket.first, promoted)
            }
        } else {
            let position = bucket.others.iter().position(|r| r.id == id)?;
            bucket.others.remove(position)
        };
        let family = key.family();
        let len = usize::from(key.len());
        self.per_length[family][len] -= 1;
        if self.per_length[family][len] == 0 {
            self.lengths[family].retain(|&l| l != key.len());
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
        let (is_v6, bits) = family_bits(destination);
        for &len in &self.lengths[usize::from(is_v6)] {
            let network = bits & mask_for(is_v6, len);
            let bucket = if is_v6 {
                self.dynamic_v6.get(&(unit.0, len, network))
            } else {
                self.dynamic_v4[usize::from(len)]
                    .get(v4_key(unit, network as u32))
                    .and_then(|slot| self.v4_buckets.get(slot as usize))
                    .and_then(Option::as_ref)
            };
            if let Some(rule) = bucket.and_then(|b| b.iter().find(|r| r.source.contains(source))) {
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

    /// Second stage, once the index line is cached: starts loading the rule bucket it names.
    #[inline]
    pub fn prefetch_dynamic_bucket(&self, unit: UnitId, destination: IpAddr) {
        if let (IpAddr::V4(address), Some(&len)) = (destination, self.lengths[0].first()) {
            let network = u128::from(u32::from(address)) & mask_for(false, len);
            if let Some(slot) = self.dynamic_v4[usize::from(len)].get(v4_key(unit, network as u32))
            {
                let bucket = self.v4_buckets.as_ptr().wrapping_add(slot as usize);
                crate::esp::prefetch::prefetch_bytes(
                    bucket as *const u8,
                    std::mem::size_of::<Option<DynamicBucket>>(),
                );
            }
        }
    }

    fn bucket_mut(&mut self, key: DynamicKey) -> Option<&mut DynamicBucket> {
        match key {
            DynamicKey::V4 { len, key } => {
                let slot = self.dynamic_v4[usize::from(len)].get(key)?;
                self.v4_buckets.get_mut(slot as usize)?.as_mut()
            }
            DynamicKey::V6 { unit, len, network } => self.dynamic_v6.get_mut(&(unit, len, network)),
        }
    }

    fn insert_bucket(&mut self, key: DynamicKey, bucket: DynamicBucket) {
        match key {
            DynamicKey::V4 { len, key } => {
                let slot = match self.v4_free.pop() {
                    Some(free) => {
                        self.v4_buckets[free as usize] = Some(bucket);
                        free
                    }
                    None => {
                        let capacity = self.v4_buckets.capacity();
                        self.v4_buckets.push(Some(bucket));
                        if self.v4_buckets.capacity() != capacity {
                            advise_huge_pages(&self.v4_buckets);
                        }
                        (self.v4_buckets.len() - 1) as u32
                    }
                };
                self.dynamic_v4[usize::from(len)].insert(key, slot);
            }
            DynamicKey::V6 { unit, len, network } => {
                self.dynamic_v6.insert((unit, len, network), bucket);
            }
        }
    }

    fn remove_bucket(&mut self, key: DynamicKey) -> Option<DynamicBucket> {
        match key {
            DynamicKey::V4 { len, key } => {
                let slot = self.dynamic_v4[usize::from(len)].remove(key)?;
                self.v4_free.push(slot);
                self.v4_buckets.get_mut(slot as usize)?.take()
            }
            DynamicKey::V6 { unit, len, network } => self.dynamic_v6.remove(&(unit, len, network)),
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
}
