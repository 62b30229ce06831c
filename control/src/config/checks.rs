//! Commit checks: the rules Junos enforces across hierarchies (references resolve, pools are
//! consistent, service sets that share an access profile can share its tunnels, …).

use std::collections::{BTreeMap, HashMap};

use super::error::{ConfigError, Origin};
use super::model::*;
use super::names::{InterfaceKind, UnitName};

struct Checker<'c> {
    config: &'c Config,
    errors: &'c mut Vec<ConfigError>,
    /// Which routing instance each unit is in (absent: the default instance, inet.0).
    instance_of: HashMap<&'c UnitName, &'c str>,
}

pub fn check(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut checker = Checker {
        config,
        errors,
        instance_of: HashMap::new(),
    };
    checker.routing_instances();
    checker.service_sets();
    checker.access_profiles();
    checker.pools();
    checker.distribution();
    checker.rules_and_policies();
    checker.certificates();
    checker.static_routes();
    checker.dataplane();
}

fn vrf_name(instance: Option<&str>) -> String {
    match instance {
        Some(i) => format!("routing instance {i}"),
        None => "the default instance".to_string(),
    }
}

impl<'c> Checker<'c> {
    fn error(&mut self, origin: &Origin, message: impl Into<String>) {
        self.errors.push(ConfigError::at(origin, message));
    }

    fn unit(&self, name: &UnitName) -> Result<&'c Unit, String> {
        let Some(interface) = self.config.interfaces.get(&name.interface) else {
            return Err(format!(
                "{name} names interface {} which is not configured",
                name.interface
            ));
        };
        interface.units.get(&name.unit).ok_or_else(|| {
            format!(
                "{name} names unit {} which {} does not have",
                name.unit, name.interface
            )
        })
    }

    fn kind(&self, name: &UnitName) -> Option<InterfaceKind> {
        self.config.interfaces.get(&name.interface).map(|i| i.kind)
    }

    fn instance(&self, name: &UnitName) -> Option<&'c str> {
        self.instance_of.get(name).copied()
    }

    fn routing_instances(&mut self) {
        let config = self.config;
        for ri in config.routing_instances.values() {
            for unit in &ri.interfaces {
                if let Err(m) = self.unit(unit) {
                    self.error(
                        ri.origins.at(&format!("interface {unit}"), &ri.origin),
                        format!("interface {m}"),
                    );
                }
                if let Some(other) = self.instance_of.insert(unit, &ri.name) {
                    self.error(
                        ri.origins.at(&format!("interface {unit}"), &ri.origin),
                        format!("interface {unit} is already in routing instance {other}"),
                    );
                }
            }
        }
    }

    fn service_sets(&mut self) {
        let config = self.config;
        let mut inside_users: BTreeMap<&UnitName, &str> = BTreeMap::new();
        for set in config.service_sets.values() {
            let o = &set.origin;
            let units: Vec<(&str, &UnitName, Option<ServiceDomain>)> = match &set.kind {
                ServiceSetKind::NextHop { inside, outside } => vec![
                    (
                        "inside-service-interface",
                        inside,
                        Some(ServiceDomain::Inside),
                    ),
                    (
                        "outside-service-interface",
                        outside,
                        Some(ServiceDomain::Outside),
                    ),
                ],
                ServiceSetKind::Interface { service_interface } => {
                    vec![("service-interface", service_interface, None)]
                }
            };
            for (what, name, domain) in units {
                match self.unit(name) {
                    Err(m) => self.error(set.origins.at(what, o), format!("{what} {m}")),
                    Ok(unit) => {
                        if !self.kind(name).is_some_and(InterfaceKind::is_services) {
                            self.error(
                                set.origins.at(what, o),
                                format!(
                                    "{what} {name} is not a services (sp-, ms-, ams) interface"
                                ),
                            );
                        }
                        // A service-domain with a bad value has been reported already.
                        let unreadable = unit.service_domain.is_none()
                            && unit.origins.0.contains_key("service-domain");
                        if let Some(d) = domain.filter(|_| !unreadable) {
                            if unit.service_domain != Some(d) {
                                let want = if d == ServiceDomain::Inside {
                                    "inside"
                                } else {
                                    "outside"
                                };
                                self.error(
                                    set.origins.at(what, o),
                                    format!("{what} {name} needs 'service-domain {want}'"),
                                );
                            }
                        }
                    }
                }
            }
            if let ServiceSetKind::NextHop { inside, .. } = &set.kind {
                if let Some(other) = inside_users.insert(inside, &set.name) {
                    self.error(set.origins.at("inside-service-interface", o), format!("inside-service-interface {inside} is already used by service set {other}"));
                }
            }
            if let Some(instance) = &set.local_gateway_instance {
                if !config.routing_instances.contains_key(instance) {
                    self.error(
                        set.origins.at("local-gateway", o),
                        format!("local-gateway routing-instance {instance} is not configured"),
                    );
                }
            }
            if let Some(gw) = set.local_gateway {
                let owned = config
                    .interfaces
                    .values()
                    .flat_map(|i| i.units.values())
                    .any(|u| u.addresses.iter().any(|a| a.addr == gw));
                if !owned {
                    self.error(
                        set.origins.at("local-gateway", o),
                        format!("local-gateway {gw} is not an address of any configured interface"),
                    );
                }
            }
            if let Some(profile) = &set.ike_access_profile {
                if !config.access_profiles.contains_key(profile) {
                    self.error(
                        set.origins.at("ike-access-profile", o),
                        format!(
                            "ike-access-profile {profile} is not configured under access profile"
                        ),
                    );
                }
                if set.local_gateway.is_none() && !set.origins.0.contains_key("local-gateway") {
                    self.error(set.origins.at("ike-access-profile", o), "a service set with ike-access-profile needs ipsec-vpn-options local-gateway");
                }
            }
            for rule in &set.rules {
                if !config.rules.contains_key(rule) {
                    self.error(
                        set.origins.at(&format!("ipsec-vpn-rules {rule}"), o),
                        format!("ipsec-vpn-rules names rule {rule}, which is not configured"),
                    );
                }
            }
            self.inside_in_one_vrf(set);
        }
    }

    /// The inside-service-interface, the rules' ipsec-inside-interfaces and the profile's pool
    /// units are where dynamic tunnels of this set live: one VRF, so one reverse-route table.
    fn inside_in_one_vrf(&mut self, set: &ServiceSet) {
        let config = self.config;
        let mut inside: Vec<&UnitName> = Vec::new();
        if let ServiceSetKind::NextHop { inside: unit, .. } = &set.kind {
            inside.push(unit);
        }
        for rule in set.rules.iter().filter_map(|r| config.rules.get(r)) {
            inside.extend(
                rule.terms
                    .iter()
                    .filter_map(|t| t.ipsec_inside_interface.as_ref()),
            );
        }
        if let Some(pool) = set
            .ike_access_profile
            .as_ref()
            .and_then(|p| config.access_profiles.get(p))
            .and_then(|p| p.interface_id.as_ref())
            .and_then(|id| config.pools.get(id))
        {
            inside.extend(pool.units.iter());
        }
        let Some(first) = inside.first() else {
            return;
        };
        let vrf = self.instance(first);
        if let Some(other) = inside.iter().find(|u| self.instance(u) != vrf) {
            let message = format!(
                "all inside service interfaces must be in one VRF: {first} is in {}, {other} in {}",
                vrf_name(vrf),
                vrf_name(self.instance(other))
            );
            self.error(
                set.origins.at("inside-service-interface", &set.origin),
                message,
            );
        }
    }

    fn access_profiles(&mut self) {
        let config = self.config;
        for p in config.access_profiles.values() {
            let o = &p.origin;
            if p.client.is_empty() {
                continue;
            }
            if p.client != "*" {
                self.error(
                    o,
                    format!(
                        "client '{}': dynamic peers need the wildcard client '*'",
                        p.client
                    ),
                );
            }
            // A key that is present but unreadable has been reported already.
            let key_written = p.origins.0.contains_key("pre-shared-key");
            if p.pre_shared_key.is_none() && p.ike_policy.is_none() && !key_written {
                self.error(
                    o,
                    "pre-shared-key is mandatory unless an ike-policy is given",
                );
            }
            if let Some(policy) = &p.ike_policy {
                if !config.ike_policies.contains_key(policy) {
                    self.error(
                        p.origins.at("ike-policy", o),
                        format!(
                            "ike-policy {policy} is not configured under services ipsec-vpn ike"
                        ),
                    );
                }
            }
            if let Some(policy) = &p.ipsec_policy {
                if !config.ipsec_policies.contains_key(policy) {
                    self.error(p.origins.at("ipsec-policy", o), format!("ipsec-policy {policy} is not configured under services ipsec-vpn ipsec"));
                }
            }
            match &p.interface_id {
                None => self.error(
                    o,
                    "interface-id is mandatory: it names the ipsec-interface-id pool",
                ),
                Some(id) if !config.pools.contains_key(id) => self.error(
                    p.origins.at("interface-id", o),
                    format!(
                        "interface-id {id}: no unit has 'dial-options ipsec-interface-id {id}'"
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    fn pools(&mut self) {
        let config = self.config;
        let inside_interfaces: Vec<&str> = config
            .service_sets
            .values()
            .map(|s| match &s.kind {
                ServiceSetKind::NextHop { inside, .. } => inside.interface.as_str(),
                // An interface-style set has no inside unit; its service interface plays that part.
                ServiceSetKind::Interface { service_interface } => {
                    service_interface.interface.as_str()
                }
            })
            .collect();
        let mut shared_per_interface: HashMap<&str, &UnitName> = HashMap::new();
        for interface in config.interfaces.values() {
            for unit in interface.units.values() {
                let Some(DialOptions {
                    id: Some(InterfaceId::Ipsec(id)),
                    mode: Some(mode),
                }) = &unit.dial_options
                else {
                    continue;
                };
                let o = &unit.origin;
                if let Some(pool) = config.pools.get(id) {
                    if pool.mode != *mode {
                        self.error(o, format!(
                            "ipsec-interface-id {id} mixes dedicated and shared units: use one mode for the whole pool"
                        ));
                    }
                }
                if *mode == PoolMode::Shared {
                    if let Some(other) = shared_per_interface.insert(&interface.name, &unit.name) {
                        self.error(o, format!(
                            "{} already has a shared ipsec-interface-id unit ({other}); at most one per interface",
                            interface.name
                        ));
                    }
                }
                if !inside_interfaces.contains(&interface.name.as_str()) {
                    self.error(o, format!(
                        "ipsec-interface-id units must be on an interface used as a service set's inside-service-interface (or service-interface); {} is not",
                        interface.name
                    ));
                }
                let unreadable =
                    unit.service_domain.is_none() && unit.origins.0.contains_key("service-domain");
                if unit.service_domain != Some(ServiceDomain::Inside) && !unreadable {
                    self.error(
                        o,
                        "a unit with ipsec-interface-id needs 'service-domain inside'",
                    );
                }
            }
        }
        for pool in config.pools.values() {
            let Some(first) = pool.units.first() else {
                continue;
            };
            let vrf = self.instance(first);
            if let Some(other) = pool.units.iter().find(|u| self.instance(u) != vrf) {
                let origin = self
                    .unit(other)
                    .map(|u| u.origin.clone())
                    .unwrap_or_default();
                let message = format!(
                    "the units of ipsec-interface-id {} must be in one VRF: {first} is in {}, {other} in {}",
                    pool.id,
                    vrf_name(vrf),
                    vrf_name(self.instance(other))
                );
                self.error(&origin, message);
            }
        }
    }

    /// Service sets sharing an access profile distribute its tunnels: they must be alike.
    fn distribution(&mut self) {
        let config = self.config;
        let mut first_of_profile: BTreeMap<&str, &ServiceSet> = BTreeMap::new();
        for set in config.service_sets.values() {
            let Some(profile) = &set.ike_access_profile else {
                continue;
            };
            let Some(first) = first_of_profile.get(profile.as_str()).copied() else {
                first_of_profile.insert(profile, set);
                continue;
            };
            let family = |s: &ServiceSet| {
                let unit = match &s.kind {
                    ServiceSetKind::NextHop { inside, .. } => inside,
                    ServiceSetKind::Interface { service_interface } => service_interface,
                };
                self.kind(unit).map(InterfaceKind::distribution_family)
            };
            let (a, b) = (family(first), family(set));
            if a.is_some() && b.is_some() && a != b {
                self.error(set.origins.at("inside-service-interface", &set.origin), format!(
                    "service sets sharing ike-access-profile {profile} must use one kind of services interface: {} uses {}, {} uses {}",
                    first.name, a.unwrap_or_default(), set.name, b.unwrap_or_default()
                ));
            }
            if first.local_gateway != set.local_gateway {
                let show =
                    |g: Option<std::net::IpAddr>| g.map_or("none".to_string(), |g| g.to_string());
                self.error(set.origins.at("local-gateway", &set.origin), format!(
                    "service sets sharing ike-access-profile {profile} must have the same local-gateway: {} has {}, {} has {}",
                    first.name, show(first.local_gateway), set.name, show(set.local_gateway)
                ));
            }
            let outside_vrf = |s: &ServiceSet| match &s.kind {
                ServiceSetKind::NextHop { outside, .. } => Some(self.instance(outside)),
                ServiceSetKind::Interface { .. } => None,
            };
            if let (Some(a), Some(b)) = (outside_vrf(first), outside_vrf(set)) {
                if a != b {
                    self.error(set.origins.at("outside-service-interface", &set.origin), format!(
                        "service sets sharing ike-access-profile {profile} must have their outside-service-interface in one VRF: {} is in {}, {} in {}",
                        first.name, vrf_name(a), set.name, vrf_name(b)
                    ));
                }
            }
        }
    }

    fn rules_and_policies(&mut self) {
        let config = self.config;
        for rule in config.rules.values() {
            for term in &rule.terms {
                let o = &term.origin;
                if let Some(unit) = &term.ipsec_inside_interface {
                    if let Err(m) = self.unit(unit) {
                        self.error(
                            term.origins.at("ipsec-inside-interface", o),
                            format!("ipsec-inside-interface {m}"),
                        );
                    }
                }
                if let TermAction::Dynamic {
                    ike_policy,
                    ipsec_policy,
                } = &term.action
                {
                    if let Some(p) = ike_policy {
                        if !config.ike_policies.contains_key(p) {
                            self.error(
                                term.origins.at("ike-policy", o),
                                format!("dynamic ike-policy {p} is not configured"),
                            );
                        }
                    }
                    if let Some(p) = ipsec_policy {
                        if !config.ipsec_policies.contains_key(p) {
                            self.error(
                                term.origins.at("ipsec-policy", o),
                                format!("dynamic ipsec-policy {p} is not configured"),
                            );
                        }
                    }
                }
            }
        }
        for policy in config.ike_policies.values() {
            for p in &policy.proposals {
                if !config.ike_proposals.contains_key(p) {
                    self.error(
                        policy.origins.at(&format!("proposals {p}"), &policy.origin),
                        format!(
                            "proposal {p} is not configured under services ipsec-vpn ike proposal"
                        ),
                    );
                }
            }
            let certificates = policy
                .proposals
                .iter()
                .filter_map(|p| config.ike_proposals.get(p))
                .any(|p| p.auth_method != IkeAuthMethod::PreSharedKeys);
            if certificates && policy.local_certificate.is_none() {
                self.error(
                    &policy.origin,
                    "signature proposals (rsa-signatures, ecdsa-signatures-*) need local-certificate",
                );
            }
        }
        for policy in config.ipsec_policies.values() {
            for p in &policy.proposals {
                if !config.ipsec_proposals.contains_key(p) {
                    self.error(policy.origins.at(&format!("proposals {p}"), &policy.origin), format!("proposal {p} is not configured under services ipsec-vpn ipsec proposal"));
                }
            }
        }
    }

    /// References of certificate authentication resolve; the files themselves are read by
    /// `pki_files` (`dyntun check`, `dyntun run`), not here.
    fn certificates(&mut self) {
        let config = self.config;
        for set in config.service_sets.values() {
            for ca in &set.trusted_ca {
                if !config.pki.ca_profiles.contains_key(ca) {
                    self.error(
                        set.origins.at(&format!("trusted-ca {ca}"), &set.origin),
                        format!("trusted-ca {ca}: no 'security pki ca-profile {ca}'"),
                    );
                }
            }
            let policy = config.service_set(&set.name).and_then(|v| v.ike_policy);
            if let Some(policy) = policy.filter(|p| !p.local_certificates.is_empty()) {
                if set.trusted_ca.is_empty() {
                    self.error(
                        &set.origin,
                        format!(
                            "ike-policy {} authenticates with certificates: ipsec-vpn-options needs trusted-ca",
                            policy.name
                        ),
                    );
                }
            }
        }
        let used: Vec<&IkePolicy> = config
            .ike_policies
            .values()
            .filter(|p| {
                config
                    .access_profiles
                    .values()
                    .any(|a| a.ike_policy.as_deref() == Some(p.name.as_str()))
            })
            .collect();
        for policy in used {
            for name in &policy.local_certificates {
                if !config.pki.local_certificates.contains_key(name) {
                    self.error(
                        policy
                            .origins
                            .at(&format!("local-certificate {name}"), &policy.origin),
                        format!(
                            "local-certificate {name}: no 'security pki local-certificate {name}'"
                        ),
                    );
                }
            }
            if !policy.local_certificates.is_empty() && policy.remote_id == RemoteId::Unset {
                self.error(
                    &policy.origin,
                    "certificate authentication needs remote-id (any-remote-id or the identities allowed)",
                );
            }
        }
        for ca in config.pki.ca_profiles.values() {
            if ca.certificate_file.is_none() {
                self.error(
                    &ca.origin,
                    "needs certificate-file PATH (the CA certificate, PEM)",
                );
            }
        }
        for c in config.pki.local_certificates.values() {
            if c.certificate_file.is_none() {
                self.error(&c.origin, "needs certificate-file PATH (PEM)");
            }
            if c.private_key_file.is_none() {
                self.error(&c.origin, "needs private-key-file PATH (PEM)");
            }
        }
    }

    fn static_routes(&mut self) {
        for route in &self.config.static_routes {
            if let NextHop::Interface(unit) = &route.next_hop {
                if let Err(m) = self.unit(unit) {
                    self.error(&route.origin, format!("next-hop {m}"));
                }
            }
        }
    }

    fn dataplane(&mut self) {
        let config = self.config;
        let dp = &config.dataplane;
        let origin_of = |key: String| dp.origins.get(&key).cloned().unwrap_or_default();
        for name in dp.devices.keys() {
            if !config.interfaces.contains_key(name) {
                self.error(
                    &origin_of(format!("interface {name}")),
                    format!("interface {name} has a device but is not configured under interfaces"),
                );
            }
        }
        if !dp.devices.is_empty() {
            for i in config.interfaces.values() {
                if i.kind == InterfaceKind::Physical && !dp.devices.contains_key(&i.name) {
                    self.error(
                        &i.origin,
                        format!("{} needs 'dataplane interface {} device …'", i.name, i.name),
                    );
                }
            }
        }
        let members: Vec<&String> = config
            .interfaces
            .values()
            .flat_map(|i| i.members.iter())
            .collect();
        for pic in dp.pics.keys() {
            let origin = origin_of(format!("pic {pic}"));
            if !config.interfaces.contains_key(pic) && !members.contains(&pic) {
                self.error(
                    &origin,
                    format!("pic {pic} is neither a configured interface nor an ams member"),
                );
            }
            if dp.control_core.is_some_and(|c| dp.pics[pic].contains(&c)) {
                self.error(
                    &origin,
                    format!("pic {pic} polls on the control-core; give it other cores"),
                );
            }
        }
    }
}
