//! From the tree to the typed model: every value parsed into its type, every error collected.
//! References between objects are checked afterwards, in `checks`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use dataplane::prefix::Prefix;
use dataplane::sa::{Cipher, DfMode, Integrity, Lifetime};

use super::error::{ConfigError, Origin};
use super::model::*;
use super::names::{interface_kind, parse_unit_number, InterfaceKind, UnitName};
use super::schema::Kind;
use super::secret::Secret;
use super::tree::Node;

pub struct Builder<'e> {
    errors: &'e mut Vec<ConfigError>,
}

/// The IKE encryption algorithms Junos offers for phase 1.
const IKE_CIPHERS: &[(&str, Cipher)] = &[
    ("3des-cbc", Cipher::TripleDesCbc),
    ("des-cbc", Cipher::DesCbc),
    ("aes-128-cbc", Cipher::AesCbc128),
    ("aes-192-cbc", Cipher::AesCbc192),
    ("aes-256-cbc", Cipher::AesCbc256),
];

const IPSEC_CIPHERS: &[(&str, Cipher)] = &[
    ("3des-cbc", Cipher::TripleDesCbc),
    ("des-cbc", Cipher::DesCbc),
    ("aes-128-cbc", Cipher::AesCbc128),
    ("aes-192-cbc", Cipher::AesCbc192),
    ("aes-256-cbc", Cipher::AesCbc256),
    ("aes-128-gcm", Cipher::AesGcm128),
    ("aes-256-gcm", Cipher::AesGcm256),
];

const IPSEC_INTEGRITY: &[(&str, Integrity)] = &[
    ("hmac-sha1-96", Integrity::HmacSha1_96),
    ("hmac-md5-96", Integrity::HmacMd5_96),
    ("hmac-sha-256-128", Integrity::HmacSha256_128),
];

const DH_GROUPS: &[(&str, DhGroup)] = &[
    ("group1", DhGroup(1)),
    ("group2", DhGroup(2)),
    ("group5", DhGroup(5)),
    ("group14", DhGroup(14)),
];

const DH_GROUPS_UNSUPPORTED: &[&str] = &["group15", "group16", "group19", "group20", "group24"];

const PROTOCOLS: &[(&str, ProposalProtocol)] = &[
    ("esp", ProposalProtocol::Esp),
    ("ah", ProposalProtocol::Ah),
    ("bundle", ProposalProtocol::Bundle),
];

impl<'e> Builder<'e> {
    pub fn new(errors: &'e mut Vec<ConfigError>) -> Self {
        Builder { errors }
    }

    fn error(&mut self, origin: &Origin, message: impl Into<String>) {
        self.errors.push(ConfigError::at(origin, message));
    }

    /// A node's value parsed by `parse`; errors point at the value.
    fn parse<T>(
        &mut self,
        node: &Node,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = node.value_text().unwrap_or_default();
        match parse(text) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(&node.value_origin(), message);
                None
            }
        }
    }

    fn leaf<T>(
        &mut self,
        parent: &Node,
        keyword: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let node = parent.child(keyword)?;
        self.parse(node, parse)
    }

    fn text(parent: &Node, keyword: &str) -> Option<String> {
        parent
            .child(keyword)
            .and_then(|n| n.value_text())
            .map(str::to_string)
    }

    fn list(parent: &Node, keyword: &str) -> Vec<String> {
        parent
            .child(keyword)
            .map(|n| n.items.iter().map(|t| t.text.clone()).collect())
            .unwrap_or_default()
    }

    fn choice<T: Copy>(
        &mut self,
        parent: &Node,
        keyword: &str,
        choices: &[(&str, T)],
        unsupported: &[&str],
    ) -> Option<T> {
        let node = parent.child(keyword)?;
        self.parse(node, |text| choose(keyword, text, choices, unsupported))
    }

    pub fn config(&mut self, root: &Node) -> Config {
        let mut config = Config::default();
        if let Some(interfaces) = root.child("interfaces") {
            for node in &interfaces.children {
                if let Some(i) = self.interface(node) {
                    config.interfaces.insert(i.name.clone(), i);
                }
            }
        }
        if let Some(access) = root.child("access") {
            for node in access.children_with("profile") {
                let p = self.access_profile(node);
                config.access_profiles.insert(p.name.clone(), p);
            }
        }
        if let Some(services) = root.child("services") {
            for node in services.children_with("service-set") {
                if let Some(s) = self.service_set(node) {
                    config.service_sets.insert(s.name.clone(), s);
                }
            }
            if let Some(vpn) = services.child("ipsec-vpn") {
                self.ipsec_vpn(vpn, &mut config);
            }
        }
        if let Some(instances) = root.child("routing-instances") {
            for node in &instances.children {
                if let Some(ri) = self.routing_instance(node, &mut config.static_routes) {
                    config.routing_instances.insert(ri.name.clone(), ri);
                }
            }
        }
        if let Some(options) = root.child("routing-options") {
            self.static_routes(options, None, &mut config.static_routes);
        }
        if let Some(dp) = root.child("dataplane") {
            config.dataplane = self.dataplane(dp);
        }
        if let Some(pki) = root.child("security").and_then(|s| s.child("pki")) {
            config.pki = self.pki(pki);
        }
        config.pools = pools(&config.interfaces);
        config
    }

    fn interface(&mut self, node: &Node) -> Option<Interface> {
        let name = node.value_text().unwrap_or_default().to_string();
        let kind = self.parse(node, interface_kind)?;
        let mut interface = Interface {
            name: name.clone(),
            kind,
            units: BTreeMap::new(),
            members: Vec::new(),
            origin: node.origin.clone(),
        };
        if let Some(lb) = node.child("load-balancing-options") {
            if kind != InterfaceKind::Aggregated {
                self.error(
                    &lb.origin,
                    "only an ams interface has load-balancing-options",
                );
            }
            for m in lb.children_with("member-interface") {
                if self
                    .parse(m, |t| match interface_kind(t)? {
                        InterfaceKind::AggregatedMember => Ok(()),
                        _ => Err(format!(
                            "member-interface '{t}' should be a mams- interface"
                        )),
                    })
                    .is_some()
                {
                    interface
                        .members
                        .push(m.value_text().unwrap_or_default().to_string());
                }
            }
        } else if kind == InterfaceKind::Aggregated {
            self.error(
                &node.origin,
                "an ams interface needs load-balancing-options member-interface",
            );
        }
        for unit_node in node.children_with("unit") {
            let Some(number) = self.parse(unit_node, parse_unit_number) else {
                continue;
            };
            let unit = self.unit(unit_node, UnitName::new(name.clone(), number), kind);
            interface.units.insert(number, unit);
        }
        Some(interface)
    }

    fn unit(&mut self, node: &Node, name: UnitName, kind: InterfaceKind) -> Unit {
        let mut unit = Unit {
            name,
            inet: false,
            inet6: false,
            addresses: Vec::new(),
            service_domain: None,
            dial_options: None,
            origin: node.origin.clone(),
            origins: statement_origins(node),
        };
        if let Some(family) = node.child("family") {
            for (keyword, v4) in [("inet", true), ("inet6", false)] {
                let Some(f) = family.child(keyword) else {
                    continue;
                };
                if v4 {
                    unit.inet = true;
                } else {
                    unit.inet6 = true;
                }
                for a in f.children_with("address") {
                    if let Some(addr) = self.parse(a, |t| interface_address(t, v4)) {
                        unit.addresses.push(addr);
                    }
                }
            }
        }
        if let Some(sd) = node.child("service-domain") {
            if !kind.is_services() {
                self.error(
                    &sd.origin,
                    "service-domain belongs on services (sp-, ms-, ams) units",
                );
            }
            unit.service_domain = self.parse(sd, |t| {
                choose(
                    "service-domain",
                    t,
                    &[
                        ("inside", ServiceDomain::Inside),
                        ("outside", ServiceDomain::Outside),
                    ],
                    &[],
                )
            });
        }
        if let Some(dial) = node.child("dial-options") {
            if !kind.is_services() {
                self.error(
                    &dial.origin,
                    "dial-options belong on services (sp-, ms-, ams) units",
                );
            }
            unit.dial_options = Some(self.dial_options(dial));
        }
        unit
    }

    fn dial_options(&mut self, dial: &Node) -> DialOptions {
        let ipsec = Self::text(dial, "ipsec-interface-id");
        let l2tp = Self::text(dial, "l2tp-interface-id");
        let id = match (ipsec, l2tp) {
            (Some(_), Some(_)) => {
                self.error(
                    &dial.origin,
                    "ipsec-interface-id and l2tp-interface-id cannot both be set: a unit has one interface identifier",
                );
                None
            }
            (Some(i), None) => Some(InterfaceId::Ipsec(i)),
            (None, Some(l)) => Some(InterfaceId::L2tp(l)),
            (None, None) => None,
        };
        let mode = match (dial.has("dedicated"), dial.has("shared")) {
            (true, true) => {
                self.error(&dial.origin, "dedicated and shared exclude each other");
                None
            }
            (true, false) => Some(PoolMode::Dedicated),
            (false, true) => Some(PoolMode::Shared),
            (false, false) => None,
        };
        if matches!(id, Some(InterfaceId::Ipsec(_))) && mode.is_none() {
            self.error(
                &dial.origin,
                "ipsec-interface-id needs 'dedicated' or 'shared'",
            );
        }
        DialOptions { id, mode }
    }

    fn access_profile(&mut self, node: &Node) -> AccessProfile {
        let mut profile = AccessProfile {
            name: node.value_text().unwrap_or_default().to_string(),
            client: String::new(),
            allowed_proxy_pairs: Vec::new(),
            pre_shared_key: None,
            ike_policy: None,
            interface_id: None,
            ipsec_policy: None,
            origin: node.origin.clone(),
            origins: statement_origins(node),
        };
        let clients: Vec<&Node> = node.children_with("client").collect();
        if clients.len() > 1 {
            self.error(
                &clients[1].origin,
                "a profile has only one client configuration",
            );
        }
        let Some(client) = clients.first() else {
            self.error(&node.origin, "the profile needs 'client * ike { … }'");
            return profile;
        };
        let Some(ike) = client.child("ike") else {
            self.error(&client.origin, "the client needs an 'ike { … }' block");
            return profile;
        };
        profile.origins = statement_origins(ike);
        // Set only once there is an `ike` block: an empty client tells the commit checks that
        // this profile has already been reported.
        profile.client = client.value_text().unwrap_or_default().to_string();
        if let Some(pairs) = ike.child("allowed-proxy-pair") {
            for pair in pairs.children_with("remote") {
                if let Some(p) = self.proxy_pair(pair) {
                    profile.allowed_proxy_pairs.push(p);
                }
            }
        }
        if profile.allowed_proxy_pairs.is_empty() {
            profile
                .allowed_proxy_pairs
                .push((Prefix::any_v4(), Prefix::any_v4()));
        }
        profile.pre_shared_key = self.secret(ike, "pre-shared-key");
        profile.ike_policy = Self::text(ike, "ike-policy");
        profile.interface_id = Self::text(ike, "interface-id");
        profile.ipsec_policy = Self::text(ike, "ipsec-policy");
        profile
    }

    fn proxy_pair(&mut self, pair: &Node) -> Option<(Prefix, Prefix)> {
        let remote = self.parse(pair, parse_prefix)?;
        let Some(local_token) = pair.option("local") else {
            self.error(
                &pair.origin,
                "an allowed proxy pair needs 'local PREFIX' after the remote prefix",
            );
            return None;
        };
        let local_origin = Origin::new(local_token.pos, pair.origin.path.clone());
        let local = match parse_prefix(&local_token.text) {
            Ok(p) => p,
            Err(message) => {
                self.error(&local_origin, message);
                return None;
            }
        };
        if remote.is_ipv4() != local.is_ipv4() {
            self.error(
                &local_origin,
                format!("remote {remote} and local {local} are of different address families"),
            );
            return None;
        }
        Some((remote, local))
    }

    /// `KEYWORD (ascii-text S | hexadecimal H)` under `parent`.
    fn secret(&mut self, parent: &Node, keyword: &str) -> Option<Secret> {
        let node = parent.child(keyword)?;
        match (node.child("ascii-text"), node.child("hexadecimal")) {
            (Some(_), Some(_)) => {
                self.error(
                    &node.origin,
                    "give the key either as ascii-text or as hexadecimal",
                );
                None
            }
            (Some(a), None) => {
                let text = a.value_text().unwrap_or_default();
                if text.is_empty() {
                    self.error(&a.value_origin(), "the key is empty");
                    return None;
                }
                // Taking Junos' obfuscated form literally would authenticate with the wrong key.
                if text.starts_with("$9$") {
                    self.error(
                        &a.value_origin(),
                        "Junos-encrypted ($9$) keys are not supported: write the key in clear text",
                    );
                    return None;
                }
                Some(Secret::from_ascii(text))
            }
            (None, Some(h)) => self.parse(h, Secret::from_hex),
            (None, None) => {
                self.error(&node.origin, "needs 'ascii-text KEY' or 'hexadecimal KEY'");
                None
            }
        }
    }

    fn service_set(&mut self, node: &Node) -> Option<ServiceSet> {
        let name = node.value_text().unwrap_or_default().to_string();
        let kind = match (
            node.child("next-hop-service"),
            node.child("interface-service"),
        ) {
            (Some(_), Some(i)) => {
                self.error(
                    &i.origin,
                    "a service set is either next-hop-service or interface-service, not both",
                );
                None
            }
            (Some(nh), None) => {
                let inside = self.leaf(nh, "inside-service-interface", |t| t.parse::<UnitName>());
                let outside = self.leaf(nh, "outside-service-interface", |t| t.parse::<UnitName>());
                if !nh.has("inside-service-interface") {
                    self.error(&nh.origin, "needs inside-service-interface");
                }
                if !nh.has("outside-service-interface") {
                    self.error(&nh.origin, "needs outside-service-interface");
                }
                match (inside, outside) {
                    (Some(inside), Some(outside)) => {
                        Some(ServiceSetKind::NextHop { inside, outside })
                    }
                    _ => None,
                }
            }
            (None, Some(is)) => {
                if !is.has("service-interface") {
                    self.error(&is.origin, "needs service-interface");
                }
                // Junos takes a bare interface here as its unit 0.
                self.leaf(is, "service-interface", |t| match t.parse::<UnitName>() {
                    Err(_) if !t.contains('.') => interface_kind(t).map(|_| UnitName::new(t, 0)),
                    other => other,
                })
                .map(|service_interface| ServiceSetKind::Interface { service_interface })
            }
            (None, None) => {
                self.error(
                    &node.origin,
                    "a service set needs next-hop-service or interface-service",
                );
                None
            }
        };
        let mut set = ServiceSet {
            name,
            // Replaced below; the options are read even when the kind is broken, so that their
            // own errors are reported too.
            kind: ServiceSetKind::Interface {
                service_interface: UnitName::new(String::new(), 0),
            },
            local_gateway: None,
            local_gateway_instance: None,
            ike_access_profile: None,
            anti_replay_window: DEFAULT_ANTI_REPLAY_WINDOW,
            df_mode: DfMode::default(),
            tunnel_mtu: None,
            trusted_ca: Vec::new(),
            no_certificate_chain_in_ike: false,
            rules: Self::list(node, "ipsec-vpn-rules"),
            origin: node.origin.clone(),
            origins: statement_origins(node),
        };
        if let Some(options) = node.child("ipsec-vpn-options") {
            if let Some(gw) = options.child("local-gateway") {
                set.local_gateway = self.parse(gw, parse_address);
                set.local_gateway_instance = gw.option("routing-instance").map(|t| t.text.clone());
            }
            set.ike_access_profile = Self::text(options, "ike-access-profile");
            if let Some(w) = options.child("anti-replay-window-size") {
                if let Some(n) = self.parse(w, |t| parse_number(t, 64, 4096)) {
                    set.anti_replay_window = n;
                }
                if options.has("no-anti-replay") {
                    self.error(
                        &w.origin,
                        "anti-replay-window-size and no-anti-replay exclude each other",
                    );
                }
            }
            if options.has("no-anti-replay") {
                set.anti_replay_window = 0;
            }
            set.tunnel_mtu = self
                .leaf(options, "tunnel-mtu", |t| parse_number(t, 256, 9192))
                .map(|n| n as u16);
            let df: Vec<(&str, DfMode)> = [
                ("clear-dont-fragment-bit", DfMode::Clear),
                ("set-dont-fragment-bit", DfMode::Set),
                ("copy-dont-fragment-bit", DfMode::Copy),
            ]
            .into_iter()
            .filter(|(k, _)| options.has(k))
            .collect();
            if df.len() > 1 {
                self.error(
                    &options.origin,
                    format!("{} and {} exclude each other", df[0].0, df[1].0),
                );
            }
            if let Some((_, mode)) = df.first() {
                set.df_mode = *mode;
            }
            set.trusted_ca = Self::list(options, "trusted-ca");
            set.no_certificate_chain_in_ike = options.has("no-certificate-chain-in-ike");
        }
        set.kind = kind?;
        Some(set)
    }

    fn ipsec_vpn(&mut self, vpn: &Node, config: &mut Config) {
        for node in vpn.children_with("rule") {
            let rule = self.rule(node);
            config.rules.insert(rule.name.clone(), rule);
        }
        if let Some(ike) = vpn.child("ike") {
            for node in ike.children_with("proposal") {
                let p = self.ike_proposal(node);
                config.ike_proposals.insert(p.name.clone(), p);
            }
            for node in ike.children_with("policy") {
                let p = self.ike_policy(node);
                config.ike_policies.insert(p.name.clone(), p);
            }
        }
        if let Some(ipsec) = vpn.child("ipsec") {
            for node in ipsec.children_with("proposal") {
                let p = self.ipsec_proposal(node);
                config.ipsec_proposals.insert(p.name.clone(), p);
            }
            for node in ipsec.children_with("policy") {
                let pfs = node.child("perfect-forward-secrecy").and_then(|pfs| {
                    if !pfs.has("keys") {
                        self.error(&pfs.origin, "needs 'keys GROUP'");
                    }
                    self.choice(pfs, "keys", DH_GROUPS, DH_GROUPS_UNSUPPORTED)
                });
                let p = IpsecPolicy {
                    name: node.value_text().unwrap_or_default().to_string(),
                    proposals: Self::list(node, "proposals"),
                    pfs,
                    origin: node.origin.clone(),
                    origins: statement_origins(node),
                };
                config.ipsec_policies.insert(p.name.clone(), p);
            }
        }
    }

    fn rule(&mut self, node: &Node) -> IpsecRule {
        let match_direction = self.choice(
            node,
            "match-direction",
            &[
                ("input", MatchDirection::Input),
                ("output", MatchDirection::Output),
            ],
            &["input-output"],
        );
        if !node.has("match-direction") {
            self.error(
                &node.origin,
                "a rule needs match-direction (input or output)",
            );
        }
        let terms = node
            .children_with("term")
            .map(|t| self.term(t))
            .collect::<Vec<_>>();
        if terms.is_empty() {
            self.error(&node.origin, "a rule needs at least one term");
        }
        IpsecRule {
            name: node.value_text().unwrap_or_default().to_string(),
            match_direction: match_direction.unwrap_or(MatchDirection::Input),
            terms: terms.into_iter().flatten().collect(),
            origin: node.origin.clone(),
        }
    }

    fn term(&mut self, node: &Node) -> Option<Term> {
        let mut term = Term {
            name: node.value_text().unwrap_or_default().to_string(),
            source: Vec::new(),
            destination: Vec::new(),
            ipsec_inside_interface: None,
            remote_gateway: None,
            action: TermAction::Dynamic {
                ike_policy: None,
                ipsec_policy: None,
            },
            origin: node.origin.clone(),
            origins: statement_origins(node),
        };
        if let Some(from) = node.child("from") {
            term.source = from
                .children_with("source-address")
                .filter_map(|a| self.parse(a, parse_prefix))
                .collect();
            term.destination = from
                .children_with("destination-address")
                .filter_map(|a| self.parse(a, parse_prefix))
                .collect();
            term.ipsec_inside_interface =
                self.leaf(from, "ipsec-inside-interface", |t| t.parse::<UnitName>());
        }
        let Some(then) = node.child("then") else {
            self.error(&node.origin, "a term needs 'then { … }'");
            return None;
        };
        term.remote_gateway = self.leaf(then, "remote-gateway", parse_address);
        term.action = match (then.child("dynamic"), then.child("manual")) {
            (Some(_), Some(m)) => {
                self.error(&m.origin, "a term is either dynamic or manual, not both");
                return None;
            }
            (Some(d), None) => TermAction::Dynamic {
                ike_policy: Self::text(d, "ike-policy"),
                ipsec_policy: Self::text(d, "ipsec-policy"),
            },
            (None, Some(m)) => {
                if !then.has("remote-gateway") {
                    self.error(&m.origin, "manual SAs need then remote-gateway");
                }
                let sas: Vec<ManualSa> = m
                    .children_with("direction")
                    .filter_map(|d| self.manual_sa(d))
                    .collect();
                let bidirectional = sas
                    .iter()
                    .any(|s| s.direction == ManualDirection::Bidirectional);
                if bidirectional && sas.len() > 1 {
                    self.error(
                        &m.origin,
                        "direction bidirectional excludes inbound and outbound",
                    );
                }
                if !m.has("direction") {
                    self.error(
                        &m.origin,
                        "manual needs 'direction (inbound|outbound|bidirectional) { … }'",
                    );
                }
                TermAction::Manual(sas)
            }
            (None, None) => {
                self.error(&then.origin, "then needs 'dynamic { … }' or 'manual { … }'");
                return None;
            }
        };
        Some(term)
    }

    fn manual_sa(&mut self, node: &Node) -> Option<ManualSa> {
        let direction = self.parse(node, |t| {
            choose(
                "direction",
                t,
                &[
                    ("inbound", ManualDirection::Inbound),
                    ("outbound", ManualDirection::Outbound),
                    ("bidirectional", ManualDirection::Bidirectional),
                ],
                &[],
            )
        })?;
        let protocol = self.choice(node, "protocol", PROTOCOLS, &[]);
        let spi = self.leaf(node, "spi", |t| parse_number(t, 256, 16639));
        for required in ["protocol", "spi"] {
            if !node.has(required) {
                self.error(&node.origin, format!("a manual SA needs '{required}'"));
            }
        }
        let integrity = node
            .child("authentication")
            .and_then(|a| self.manual_key(a, IPSEC_INTEGRITY, Integrity::key_len));
        let encryption = node
            .child("encryption")
            .and_then(|e| self.manual_key(e, IPSEC_CIPHERS, Cipher::key_len));
        let (protocol, spi) = (protocol?, spi?);
        let wants = |p| protocol == p || protocol == ProposalProtocol::Bundle;
        if wants(ProposalProtocol::Ah) && !node.has("authentication") {
            self.error(&node.origin, "AH needs an authentication block");
        }
        if protocol == ProposalProtocol::Ah && node.has("encryption") {
            self.error(
                &node.origin,
                "AH does not encrypt: remove the encryption block",
            );
        }
        if wants(ProposalProtocol::Esp) && !node.has("encryption") {
            self.error(&node.origin, "ESP needs an encryption block");
        }
        if let Some((cipher, _)) = &encryption {
            if cipher.is_aead() && protocol == ProposalProtocol::Esp && integrity.is_some() {
                self.error(
                    &node.origin,
                    "GCM authenticates by itself: remove the authentication block",
                );
            }
            if !cipher.is_aead() && protocol == ProposalProtocol::Esp && integrity.is_none() {
                self.error(
                    &node.origin,
                    "ESP with a CBC cipher needs an authentication block",
                );
            }
        }
        Some(ManualSa {
            direction,
            protocol,
            spi,
            integrity,
            encryption,
            origin: node.origin.clone(),
        })
    }

    /// `{ algorithm A; key (ascii-text|hexadecimal) K; }` with the key's length checked.
    fn manual_key<T: Copy>(
        &mut self,
        node: &Node,
        algorithms: &[(&str, T)],
        key_len: fn(T) -> usize,
    ) -> Option<(T, Secret)> {
        if !node.has("algorithm") {
            self.error(&node.origin, "needs 'algorithm'");
        }
        if !node.has("key") {
            self.error(&node.origin, "needs 'key (ascii-text|hexadecimal) KEY'");
        }
        let algorithm = self.choice(node, "algorithm", algorithms, &[])?;
        let key = self.secret(node, "key")?;
        let want = key_len(algorithm);
        if key.len() != want {
            let name = node
                .child("algorithm")
                .and_then(|a| a.value_text())
                .unwrap_or("");
            let origin = node
                .child("key")
                .map_or(node.origin.clone(), |k| k.origin.clone());
            self.error(
                &origin,
                format!(
                    "a {name} key is {want} bytes, this one is {} bytes",
                    key.len()
                ),
            );
            return None;
        }
        Some((algorithm, key))
    }

    fn ike_proposal(&mut self, node: &Node) -> IkeProposal {
        IkeProposal {
            name: node.value_text().unwrap_or_default().to_string(),
            auth_method: self
                .choice(
                    node,
                    "authentication-method",
                    &[
                        ("pre-shared-keys", IkeAuthMethod::PreSharedKeys),
                        ("rsa-signatures", IkeAuthMethod::RsaSignatures),
                        ("ecdsa-signatures-256", IkeAuthMethod::EcdsaSignatures256),
                        ("ecdsa-signatures-384", IkeAuthMethod::EcdsaSignatures384),
                    ],
                    &["dsa-signatures"],
                )
                .unwrap_or(IkeAuthMethod::PreSharedKeys),
            dh_group: self.choice(node, "dh-group", DH_GROUPS, DH_GROUPS_UNSUPPORTED),
            hash: self.choice(
                node,
                "authentication-algorithm",
                &[
                    ("md5", IkeHash::Md5),
                    ("sha1", IkeHash::Sha1),
                    ("sha-256", IkeHash::Sha256),
                ],
                &["sha-384", "sha-512"],
            ),
            cipher: self.choice(
                node,
                "encryption-algorithm",
                IKE_CIPHERS,
                &["aes-128-gcm", "aes-256-gcm"],
            ),
            lifetime_seconds: self.leaf(node, "lifetime-seconds", |t| parse_number(t, 180, 86400)),
            origin: node.origin.clone(),
        }
    }

    fn ike_policy(&mut self, node: &Node) -> IkePolicy {
        self.choice(node, "mode", &[("main", ())], &["aggressive"]);
        self.choice(node, "version", &[("1", ())], &["2"]);
        let remote_id = match node.child("remote-id") {
            None => RemoteId::Unset,
            Some(r) if r.has("any-remote-id") => {
                if r.children.len() > 1 {
                    self.error(&r.origin, "any-remote-id excludes listed identities");
                }
                RemoteId::Any
            }
            Some(r) => RemoteId::Listed(
                r.children
                    .iter()
                    .flat_map(|c| c.items.iter().map(|t| t.text.clone()))
                    .collect(),
            ),
        };
        let remote_ids = match node.child("remote-id") {
            Some(r) if !r.has("any-remote-id") => self.remote_id_entries(r),
            _ => Vec::new(),
        };
        let local_certificates = Self::list(node, "local-certificate");
        IkePolicy {
            name: node.value_text().unwrap_or_default().to_string(),
            proposals: Self::list(node, "proposals"),
            pre_shared_key: self.secret(node, "pre-shared-key"),
            local_certificate: local_certificates.first().cloned(),
            local_certificates,
            remote_id,
            remote_ids,
            local_id: node.child("local-id").and_then(|l| self.local_id(l)),
            origin: node.origin.clone(),
            origins: statement_origins(node),
        }
    }

    /// Each entry with its kind; addresses and distinguished names must parse.
    fn remote_id_entries(&mut self, remote_id: &Node) -> Vec<RemoteIdEntry> {
        let kinds = [
            ("ipv4_addr", RemoteIdKind::Ipv4),
            ("ipv6_addr", RemoteIdKind::Ipv6),
            ("fqdn", RemoteIdKind::Fqdn),
            ("user-at-hostname", RemoteIdKind::UserAtHostname),
            ("key_id", RemoteIdKind::KeyId),
            ("distinguished-name", RemoteIdKind::DistinguishedName),
        ];
        let mut out = Vec::new();
        for child in &remote_id.children {
            let Some((_, kind)) = kinds.iter().find(|(k, _)| *k == child.keyword()) else {
                continue;
            };
            for item in &child.items {
                let problem = match kind {
                    RemoteIdKind::Ipv4 => item
                        .text
                        .parse::<std::net::Ipv4Addr>()
                        .err()
                        .map(|_| format!("'{}' is not an IPv4 address", item.text)),
                    RemoteIdKind::Ipv6 => item
                        .text
                        .parse::<std::net::Ipv6Addr>()
                        .err()
                        .map(|_| format!("'{}' is not an IPv6 address", item.text)),
                    RemoteIdKind::DistinguishedName => {
                        crate::pki::RemoteIdRule::distinguished_name(&item.text)
                            .err()
                            .map(|e| format!("distinguished-name '{}': {e}", item.text))
                    }
                    _ => None,
                };
                if let Some(message) = problem {
                    self.error(&Origin::new(item.pos, child.origin.path.clone()), message);
                    continue;
                }
                out.push(RemoteIdEntry {
                    kind: *kind,
                    value: item.text.clone(),
                });
            }
        }
        out
    }

    fn local_id(&mut self, node: &Node) -> Option<LocalId> {
        let given: Vec<&Node> = node.children.iter().collect();
        if given.len() > 1 {
            self.error(&given[1].origin, "local-id takes one identity");
        }
        let first = given.first()?;
        match first.keyword() {
            "distinguished-name" => Some(LocalId::DistinguishedName),
            "fqdn" => Some(LocalId::Fqdn(first.value_text()?.to_string())),
            "user-at-hostname" => Some(LocalId::UserAtHostname(first.value_text()?.to_string())),
            "ipv4_addr" | "ipv6_addr" => {
                let v4 = first.keyword() == "ipv4_addr";
                self.parse(first, |t| match t.parse::<IpAddr>() {
                    Ok(a) if a.is_ipv4() == v4 => Ok(a),
                    _ => Err(format!(
                        "'{t}' is not an {} address",
                        if v4 { "IPv4" } else { "IPv6" }
                    )),
                })
                .map(LocalId::Address)
            }
            _ => None,
        }
    }

    fn pki(&mut self, pki: &Node) -> PkiConfig {
        let mut out = PkiConfig::default();
        for node in pki.children_with("ca-profile") {
            let p = CaProfileConfig {
                name: node.value_text().unwrap_or_default().to_string(),
                ca_identity: Self::text(node, "ca-identity"),
                certificate_file: Self::text(node, "certificate-file"),
                crl_file: Self::text(node, "crl-file"),
                origin: node.origin.clone(),
                origins: statement_origins(node),
            };
            out.ca_profiles.insert(p.name.clone(), p);
        }
        for node in pki.children_with("local-certificate") {
            let c = LocalCertificateConfig {
                name: node.value_text().unwrap_or_default().to_string(),
                certificate_file: Self::text(node, "certificate-file"),
                private_key_file: Self::text(node, "private-key-file"),
                origin: node.origin.clone(),
                origins: statement_origins(node),
            };
            out.local_certificates.insert(c.name.clone(), c);
        }
        out
    }

    fn ipsec_proposal(&mut self, node: &Node) -> IpsecProposal {
        let protocol = self
            .choice(node, "protocol", PROTOCOLS, &[])
            .unwrap_or(ProposalProtocol::Esp);
        let integrity = self.choice(
            node,
            "authentication-algorithm",
            IPSEC_INTEGRITY,
            &["hmac-sha-384", "hmac-sha-512"],
        );
        let cipher = self.choice(
            node,
            "encryption-algorithm",
            IPSEC_CIPHERS,
            &["aes-192-gcm"],
        );
        if protocol == ProposalProtocol::Ah && cipher.is_some() {
            self.error(&node.origin, "an AH proposal has no encryption-algorithm");
        }
        if cipher.is_some_and(Cipher::is_aead) && integrity.is_some() {
            self.error(
                &node.origin,
                "GCM authenticates by itself: remove authentication-algorithm",
            );
        }
        let seconds = self.leaf(node, "lifetime-seconds", |t| parse_number(t, 180, 86400));
        let kilobytes = self.leaf(node, "lifetime-kilobytes", |t| {
            parse_number(t, 64, u32::MAX - 1)
        });
        IpsecProposal {
            name: node.value_text().unwrap_or_default().to_string(),
            protocol,
            integrity,
            cipher,
            lifetime: Lifetime {
                hard_seconds: seconds.map(u64::from),
                hard_kilobytes: kilobytes.map(u64::from),
                ..Lifetime::default()
            },
            origin: node.origin.clone(),
        }
    }

    fn routing_instance(
        &mut self,
        node: &Node,
        routes: &mut Vec<StaticRoute>,
    ) -> Option<RoutingInstance> {
        let name = node.value_text().unwrap_or_default().to_string();
        if !node.has("instance-type") {
            self.error(&node.origin, "needs 'instance-type vrf'");
        }
        self.choice(
            node,
            "instance-type",
            &[("vrf", ())],
            &[
                "virtual-router",
                "forwarding",
                "l2vpn",
                "vpls",
                "virtual-switch",
                "evpn",
                "no-forwarding",
                "mpls-internet-multicast",
                "l2backhaul-vpn",
            ],
        );
        let interfaces = node
            .children_with("interface")
            .filter_map(|i| self.parse(i, |t| t.parse::<UnitName>()))
            .collect();
        if let Some(options) = node.child("routing-options") {
            self.static_routes(options, Some(&name), routes);
        }
        Some(RoutingInstance {
            name,
            interfaces,
            route_distinguisher: Self::text(node, "route-distinguisher"),
            vrf_target: Self::text(node, "vrf-target"),
            origin: node.origin.clone(),
            origins: statement_origins(node),
        })
    }

    fn static_routes(
        &mut self,
        options: &Node,
        instance: Option<&str>,
        routes: &mut Vec<StaticRoute>,
    ) {
        let Some(statics) = options.child("static") else {
            return;
        };
        for node in statics.children_with("route") {
            let Some(prefix) = self.parse(node, parse_prefix) else {
                continue;
            };
            let Some(nh) = node.child("next-hop") else {
                self.error(&node.origin, "a static route needs next-hop");
                continue;
            };
            let Some(next_hop) = self.parse(nh, |t| parse_next_hop(t, prefix.is_ipv4())) else {
                continue;
            };
            let family = if prefix.is_ipv4() {
                "inet.0"
            } else {
                "inet6.0"
            };
            let table = match instance {
                Some(i) => format!("{i}.{family}"),
                None => family.to_string(),
            };
            routes.push(StaticRoute {
                table,
                prefix,
                next_hop,
                origin: node.origin.clone(),
            });
        }
    }

    fn dataplane(&mut self, node: &Node) -> DataplaneConfig {
        let mut dp = DataplaneConfig::default();
        for i in node.children_with("interface") {
            let name = i.value_text().unwrap_or_default().to_string();
            dp.origins
                .insert(format!("interface {name}"), i.origin.clone());
            if self
                .parse(i, |t| match interface_kind(t)? {
                    InterfaceKind::Physical => Ok(()),
                    _ => Err(format!("'{t}' is not a physical (ge-, xe-, et-) interface")),
                })
                .is_none()
            {
                continue;
            }
            match i.child("device") {
                None => self.error(
                    &i.origin,
                    "needs 'device \"VDEV-ARGS\"' or 'device PCI-ADDRESS'",
                ),
                Some(d) => {
                    if let Some(device) = self.parse(d, parse_device) {
                        dp.devices.insert(name, device);
                    }
                }
            }
        }
        for p in node.children_with("pic") {
            let name = p.value_text().unwrap_or_default().to_string();
            dp.origins.insert(format!("pic {name}"), p.origin.clone());
            let ok = self
                .parse(p, |t| match interface_kind(t)? {
                    InterfaceKind::ServicesSp
                    | InterfaceKind::ServicesMs
                    | InterfaceKind::AggregatedMember => Ok(()),
                    _ => Err(format!(
                        "pic '{t}' should be a services PIC (sp-, ms-, mams-)"
                    )),
                })
                .is_some();
            let mut cores = Vec::new();
            match p.child("cores") {
                None => self.error(&p.origin, "needs 'cores [ N … ]'"),
                Some(c) => {
                    for t in &c.items {
                        match parse_number(&t.text, 0, 1023) {
                            Ok(n) => cores.push(n),
                            Err(m) => self.error(&Origin::new(t.pos, c.origin.path.clone()), m),
                        }
                    }
                }
            }
            if ok {
                dp.pics.insert(name, cores);
            }
        }
        dp.control_core = self.leaf(node, "control-core", |t| parse_number(t, 0, 1023));
        dp.eal_options = Self::list(node, "eal-options");
        dp.idle_backoff_us = self.leaf(node, "idle-backoff-us", |t| parse_number(t, 0, 1_000_000));
        dp
    }
}

/// Origins of every statement under `node` (not descending into named objects such as terms,
/// which keep their own).
fn statement_origins(node: &Node) -> StatementOrigins {
    fn walk(node: &Node, out: &mut StatementOrigins) {
        for child in &node.children {
            match child.statement.kind {
                Kind::Named(_) => continue,
                Kind::Container(_) => {
                    out.0
                        .insert(child.keyword().to_string(), child.origin.clone());
                    walk(child, out);
                }
                Kind::MultiLeaf(_) => {
                    let key = format!("{} {}", child.keyword(), child.value_text().unwrap_or(""));
                    out.0.insert(key, child.value_origin());
                }
                Kind::List => {
                    out.0
                        .insert(child.keyword().to_string(), child.origin.clone());
                    for item in &child.items {
                        let key = format!("{} {}", child.keyword(), item.text);
                        out.0
                            .insert(key, Origin::new(item.pos, child.origin.path.clone()));
                    }
                }
                Kind::Leaf(_) => {
                    out.0
                        .insert(child.keyword().to_string(), child.value_origin());
                }
                Kind::Flag | Kind::Unsupported => {
                    out.0
                        .insert(child.keyword().to_string(), child.origin.clone());
                }
            }
        }
    }
    let mut out = StatementOrigins::default();
    walk(node, &mut out);
    out
}

/// Pools from the units' `dial-options ipsec-interface-id`; the mode is the first unit's
/// (`checks` reports pools that mix modes).
fn pools(interfaces: &BTreeMap<String, Interface>) -> BTreeMap<String, Pool> {
    let mut pools: BTreeMap<String, Pool> = BTreeMap::new();
    for unit in interfaces.values().flat_map(|i| i.units.values()) {
        let Some(DialOptions {
            id: Some(InterfaceId::Ipsec(id)),
            mode: Some(mode),
        }) = &unit.dial_options
        else {
            continue;
        };
        pools
            .entry(id.clone())
            .or_insert_with(|| Pool {
                id: id.clone(),
                mode: *mode,
                units: Vec::new(),
            })
            .units
            .push(unit.name.clone());
    }
    pools
}

pub fn choose<T: Copy>(
    keyword: &str,
    text: &str,
    choices: &[(&str, T)],
    unsupported: &[&str],
) -> Result<T, String> {
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text) {
        return Ok(*v);
    }
    if unsupported.contains(&text) {
        return Err(format!("{keyword} '{text}' is not supported by dyntun"));
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "'{text}' is not a valid {keyword}; expected one of: {}",
        names.join(", ")
    ))
}

pub fn parse_number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("'{text}' should be a number from {min} to {max}")),
    }
}

pub fn parse_prefix(text: &str) -> Result<Prefix, String> {
    Prefix::from_str(text).map_err(|e| format!("bad prefix '{text}': {e}"))
}

pub fn parse_address(text: &str) -> Result<IpAddr, String> {
    IpAddr::from_str(text).map_err(|_| format!("'{text}' is not an IPv4 or IPv6 address"))
}

fn interface_address(text: &str, v4: bool) -> Result<InterfaceAddress, String> {
    let Some((addr_text, _)) = text.split_once('/') else {
        return Err(format!(
            "address '{text}' needs a prefix length (ADDRESS/LENGTH)"
        ));
    };
    let addr = parse_address(addr_text)?;
    let subnet = parse_prefix(text)?;
    if addr.is_ipv4() != v4 {
        let family = if v4 { "inet" } else { "inet6" };
        return Err(format!(
            "address '{text}' does not belong to family {family}"
        ));
    }
    Ok(InterfaceAddress { addr, subnet })
}

fn parse_next_hop(text: &str, v4: bool) -> Result<NextHop, String> {
    if let Ok(addr) = IpAddr::from_str(text) {
        if addr.is_ipv4() != v4 {
            return Err(format!(
                "next-hop {text} is not of the route's address family"
            ));
        }
        return Ok(NextHop::Address(addr));
    }
    match text.parse::<UnitName>() {
        Ok(unit) => Ok(NextHop::Interface(unit)),
        Err(_) => Err(format!(
            "next-hop '{text}' should be an address or a unit such as sp-1/2/0.1"
        )),
    }
}

fn is_pci_address(text: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F, hex digits.
    let parts: Vec<&str> = text.split(':').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let dev_fn = |s: &str| matches!(s.split_once('.'), Some((d, f)) if hex(d, 2) && hex(f, 1));
    match parts.as_slice() {
        [domain, bus, df] => hex(domain, 4) && hex(bus, 2) && dev_fn(df),
        [bus, df] => hex(bus, 2) && dev_fn(df),
        _ => false,
    }
}

fn parse_device(text: &str) -> Result<Device, String> {
    if is_pci_address(text) {
        Ok(Device::Pci(text.to_string()))
    } else if text.starts_with("net_") && !text.contains(char::is_whitespace) {
        Ok(Device::Virtual(text.to_string()))
    } else {
        Err(format!(
            "device '{text}' should be a PCI address (0000:03:00.0) or a DPDK virtual device (net_af_packet0,iface=NAME)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_explain() {
        assert_eq!(parse_number("64", 64, 4096), Ok(64));
        assert!(parse_number("+64", 0, 100).is_err());
        assert!(parse_number("4097", 64, 4096).is_err());
        assert!(parse_prefix("10.0.0.0/33")
            .unwrap_err()
            .contains("10.0.0.0/33"));
        assert_eq!(
            parse_next_hop("sp-1/2/0.1", true),
            Ok(NextHop::Interface(UnitName::new("sp-1/2/0", 1)))
        );
        assert!(parse_next_hop("::1", true).is_err());
        assert_eq!(
            parse_device("0000:03:00.1"),
            Ok(Device::Pci("0000:03:00.1".into()))
        );
        assert!(matches!(
            parse_device("net_af_packet0,iface=sg1-out"),
            Ok(Device::Virtual(_))
        ));
        assert!(parse_device("eth0").is_err());
        let a = interface_address("10.1.1.1/24", true).unwrap();
        assert_eq!(a.addr.to_string(), "10.1.1.1");
        assert_eq!(a.subnet.to_string(), "10.1.1.0/24");
        assert!(interface_address("10.1.1.1", true).is_err());
        assert!(interface_address("2001:db8::1/64", true).is_err());
        assert_eq!(
            choose("dh-group", "group19", DH_GROUPS, DH_GROUPS_UNSUPPORTED).unwrap_err(),
            "dh-group 'group19' is not supported by dyntun"
        );
    }
}
