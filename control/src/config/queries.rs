//! Questions the rest of dyntun asks the validated configuration.

use std::net::IpAddr;

use super::model::*;
use super::names::UnitName;
use super::secret::Secret;

/// A service set with what it refers to already looked up.
#[derive(Clone, Debug)]
pub struct ServiceSetView<'c> {
    pub set: &'c ServiceSet,
    pub access_profile: Option<&'c AccessProfile>,
    /// The profile's `interface-id` pool.
    pub pool: Option<&'c Pool>,
    pub ike_policy: Option<&'c IkePolicy>,
    pub ipsec_policy: Option<&'c IpsecPolicy>,
    /// Where reverse routes of this set's dynamic tunnels go (`inet.0` or `VRF.inet.0`).
    pub reverse_route_table: Option<String>,
}

/// Where a peer's pre-shared key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PskSource {
    /// A static rule's term with `remote-gateway` equal to the peer, through its IKE policy.
    PerAddress {
        rule: String,
        term: String,
        ike_policy: String,
    },
    /// The access profile's key (or its IKE policy's), for every other peer.
    AccessProfile { profile: String },
}

impl Config {
    pub fn service_sets(&self) -> impl Iterator<Item = ServiceSetView<'_>> {
        self.service_sets.values().map(|set| self.view(set))
    }

    pub fn service_set(&self, name: &str) -> Option<ServiceSetView<'_>> {
        self.service_sets.get(name).map(|set| self.view(set))
    }

    fn view<'c>(&'c self, set: &'c ServiceSet) -> ServiceSetView<'c> {
        let access_profile = set
            .ike_access_profile
            .as_ref()
            .and_then(|p| self.access_profiles.get(p));
        let pool = access_profile
            .and_then(|p| p.interface_id.as_ref())
            .and_then(|id| self.pools.get(id));
        let ike_policy = access_profile
            .and_then(|p| p.ike_policy.as_ref())
            .and_then(|n| self.ike_policies.get(n));
        let ipsec_policy = access_profile
            .and_then(|p| p.ipsec_policy.as_ref())
            .and_then(|n| self.ipsec_policies.get(n));
        let reverse_route_table = match &set.kind {
            ServiceSetKind::NextHop { inside, .. } => Some(self.route_table_of(inside, true)),
            ServiceSetKind::Interface { .. } => None,
        };
        ServiceSetView {
            set,
            access_profile,
            pool,
            ike_policy,
            ipsec_policy,
            reverse_route_table,
        }
    }

    pub fn unit(&self, name: &UnitName) -> Option<&Unit> {
        self.interfaces.get(&name.interface)?.units.get(&name.unit)
    }

    /// The routing instance (VRF) a unit belongs to; `None` is the default instance.
    pub fn routing_instance_of(&self, unit: &UnitName) -> Option<&str> {
        self.routing_instances
            .values()
            .find(|ri| ri.interfaces.contains(unit))
            .map(|ri| ri.name.as_str())
    }

    /// `inet.0`/`inet6.0`, or `VRF.inet.0`/`VRF.inet6.0` for a unit in a VRF.
    pub fn route_table_of(&self, unit: &UnitName, ipv4: bool) -> String {
        let family = if ipv4 { "inet.0" } else { "inet6.0" };
        match self.routing_instance_of(unit) {
            Some(vrf) => format!("{vrf}.{family}"),
            None => family.to_string(),
        }
    }

    pub fn static_routes_in<'c>(
        &'c self,
        table: &'c str,
    ) -> impl Iterator<Item = &'c StaticRoute> + 'c {
        self.static_routes.iter().filter(move |r| r.table == table)
    }

    /// The pre-shared key for a peer of a service set: a key configured for the peer's address
    /// (a rule of the set with `remote-gateway PEER` whose dynamic IKE policy has a key) wins,
    /// else the access profile's key, else the key of the profile's IKE policy.
    pub fn psk_for_peer(&self, service_set: &str, peer: IpAddr) -> Option<(&Secret, PskSource)> {
        let set = self.service_sets.get(service_set)?;
        for rule_name in &set.rules {
            let Some(rule) = self.rules.get(rule_name) else {
                continue;
            };
            for term in rule.terms.iter().filter(|t| t.remote_gateway == Some(peer)) {
                let TermAction::Dynamic {
                    ike_policy: Some(policy_name),
                    ..
                } = &term.action
                else {
                    continue;
                };
                if let Some(key) = self
                    .ike_policies
                    .get(policy_name)
                    .and_then(|p| p.pre_shared_key.as_ref())
                {
                    let source = PskSource::PerAddress {
                        rule: rule.name.clone(),
                        term: term.name.clone(),
                        ike_policy: policy_name.clone(),
                    };
                    return Some((key, source));
                }
            }
        }
        let profile = self.access_profiles.get(set.ike_access_profile.as_ref()?)?;
        let source = PskSource::AccessProfile {
            profile: profile.name.clone(),
        };
        if let Some(key) = &profile.pre_shared_key {
            return Some((key, source));
        }
        let policy = self.ike_policies.get(profile.ike_policy.as_ref()?)?;
        policy.pre_shared_key.as_ref().map(|key| (key, source))
    }
}
