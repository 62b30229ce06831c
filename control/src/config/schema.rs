//! The statements dyntun knows: for each hierarchy level, which keywords exist, what follows
//! them, and which real Junos statements are recognised but not supported.

/// What follows a keyword.
#[derive(Debug)]
pub enum Kind {
    /// `kw { … }`, `kw;` or `kw child …;`.
    Container(&'static [Statement]),
    /// `kw NAME { … }`; several with different names. With the keyword `*` the name stands
    /// alone (`interfaces { ge-0/0/0 { … } }`).
    Named(&'static [Statement]),
    /// `kw VALUE [opt VALUE]…;` once; the slice lists the optional keyed values allowed after it.
    Leaf(&'static [&'static str]),
    /// Like `Leaf`, repeatable with different values (`member-interface a; member-interface b;`).
    MultiLeaf(&'static [&'static str]),
    /// `kw;`
    Flag,
    /// `kw [ a b ];` or `kw a;`, accumulating.
    List,
    /// A real Junos statement that dyntun does not implement.
    Unsupported,
}

#[derive(Debug)]
pub struct Statement {
    pub keyword: &'static str,
    pub kind: Kind,
    /// Displayed on one line with its only child, as Junos shows it (`pre-shared-key ascii-text "…";`).
    pub oneliner: bool,
}

const fn container(keyword: &'static str, children: &'static [Statement]) -> Statement {
    Statement {
        keyword,
        kind: Kind::Container(children),
        oneliner: false,
    }
}

const fn oneliner(keyword: &'static str, children: &'static [Statement]) -> Statement {
    Statement {
        keyword,
        kind: Kind::Container(children),
        oneliner: true,
    }
}

const fn named(keyword: &'static str, children: &'static [Statement]) -> Statement {
    Statement {
        keyword,
        kind: Kind::Named(children),
        oneliner: false,
    }
}

const fn named_oneliner(keyword: &'static str, children: &'static [Statement]) -> Statement {
    Statement {
        keyword,
        kind: Kind::Named(children),
        oneliner: true,
    }
}

const fn leaf(keyword: &'static str) -> Statement {
    Statement {
        keyword,
        kind: Kind::Leaf(&[]),
        oneliner: false,
    }
}

const fn leaf_with(keyword: &'static str, options: &'static [&'static str]) -> Statement {
    Statement {
        keyword,
        kind: Kind::Leaf(options),
        oneliner: false,
    }
}

const fn multi(keyword: &'static str) -> Statement {
    Statement {
        keyword,
        kind: Kind::MultiLeaf(&[]),
        oneliner: false,
    }
}

const fn multi_with(keyword: &'static str, options: &'static [&'static str]) -> Statement {
    Statement {
        keyword,
        kind: Kind::MultiLeaf(options),
        oneliner: false,
    }
}

const fn flag(keyword: &'static str) -> Statement {
    Statement {
        keyword,
        kind: Kind::Flag,
        oneliner: false,
    }
}

const fn list(keyword: &'static str) -> Statement {
    Statement {
        keyword,
        kind: Kind::List,
        oneliner: false,
    }
}

const fn unsupported(keyword: &'static str) -> Statement {
    Statement {
        keyword,
        kind: Kind::Unsupported,
        oneliner: false,
    }
}

/// Statements Junos accepts at every level; none of them is implemented.
pub const ANYWHERE_UNSUPPORTED: &[&str] = &["apply-groups", "apply-groups-except", "apply-macro"];

const SECRET: &[Statement] = &[leaf("ascii-text"), leaf("hexadecimal")];

const ADDRESS: &[Statement] = &[
    unsupported("primary"),
    unsupported("preferred"),
    unsupported("vrrp-group"),
    unsupported("arp"),
    unsupported("broadcast"),
    unsupported("destination"),
];

const FAMILY_INET: &[Statement] = &[
    named("address", ADDRESS),
    unsupported("filter"),
    unsupported("mtu"),
    unsupported("unnumbered-address"),
    unsupported("dhcp"),
    unsupported("sampling"),
    unsupported("rpf-check"),
    unsupported("service"),
];

const FAMILY: &[Statement] = &[
    container("inet", FAMILY_INET),
    container("inet6", FAMILY_INET),
    unsupported("mpls"),
    unsupported("iso"),
    unsupported("ethernet-switching"),
    unsupported("bridge"),
    unsupported("vpls"),
    unsupported("ccc"),
    unsupported("inet-vpn"),
];

const DIAL_OPTIONS: &[Statement] = &[
    leaf("ipsec-interface-id"),
    leaf("l2tp-interface-id"),
    flag("dedicated"),
    flag("shared"),
    unsupported("access-profile"),
    unsupported("return-cache"),
    unsupported("tunnel-group"),
];

const UNIT: &[Statement] = &[
    leaf("description"),
    container("family", FAMILY),
    leaf("service-domain"),
    container("dial-options", DIAL_OPTIONS),
    unsupported("vlan-id"),
    unsupported("disable"),
    unsupported("encapsulation"),
    unsupported("services-options"),
    unsupported("rpm"),
    unsupported("bandwidth"),
];

const LOAD_BALANCING: &[Statement] = &[
    multi("member-interface"),
    unsupported("high-availability-options"),
    unsupported("member-failure-options"),
];

const INTERFACE: &[Statement] = &[
    leaf("description"),
    named("unit", UNIT),
    container("load-balancing-options", LOAD_BALANCING),
    unsupported("mtu"),
    unsupported("vlan-tagging"),
    unsupported("flexible-vlan-tagging"),
    unsupported("gigether-options"),
    unsupported("aggregated-ether-options"),
    unsupported("services-options"),
    unsupported("multiservice-options"),
    unsupported("encapsulation"),
    unsupported("disable"),
    unsupported("speed"),
];

const INTERFACES: &[Statement] = &[
    unsupported("traceoptions"),
    unsupported("interface-range"),
    unsupported("interface-set"),
    named("*", INTERFACE),
];

const PROXY_PAIRS: &[Statement] = &[multi_with("remote", &["local"])];

const IKE_CLIENT: &[Statement] = &[
    container("allowed-proxy-pair", PROXY_PAIRS),
    oneliner("pre-shared-key", SECRET),
    leaf("ike-policy"),
    leaf("interface-id"),
    leaf("ipsec-policy"),
    unsupported("initiate-dead-peer-detection"),
    unsupported("dead-peer-detection"),
    unsupported("reverse-route"),
];

const CLIENT: &[Statement] = &[
    container("ike", IKE_CLIENT),
    unsupported("l2tp"),
    unsupported("ppp"),
    unsupported("chap-secret"),
    unsupported("pap-password"),
    unsupported("firewall-user"),
    unsupported("group-profile"),
];

const PROFILE: &[Statement] = &[
    named("client", CLIENT),
    unsupported("authentication-order"),
    unsupported("radius"),
    unsupported("radius-server"),
    unsupported("accounting"),
    unsupported("address-assignment"),
];

const ACCESS: &[Statement] = &[
    named("profile", PROFILE),
    unsupported("radius-server"),
    unsupported("address-assignment"),
    unsupported("address-pool"),
    unsupported("traceoptions"),
];

const NEXT_HOP_SERVICE: &[Statement] = &[
    leaf("inside-service-interface"),
    leaf("outside-service-interface"),
    unsupported("service-interface-pool"),
];

const INTERFACE_SERVICE: &[Statement] = &[
    leaf("service-interface"),
    unsupported("load-balancing-options"),
];

const IPSEC_VPN_OPTIONS: &[Statement] = &[
    leaf_with("local-gateway", &["routing-instance"]),
    leaf("ike-access-profile"),
    leaf("anti-replay-window-size"),
    flag("no-anti-replay"),
    leaf("tunnel-mtu"),
    flag("clear-dont-fragment-bit"),
    flag("set-dont-fragment-bit"),
    flag("copy-dont-fragment-bit"),
    list("trusted-ca"),
    flag("no-certificate-chain-in-ike"),
    unsupported("passive-mode-tunneling"),
    unsupported("clear-ike-sas-on-pic-restart"),
    unsupported("clear-ipsec-sas-on-pic-restart"),
];

const SERVICE_SET: &[Statement] = &[
    container("next-hop-service", NEXT_HOP_SERVICE),
    container("interface-service", INTERFACE_SERVICE),
    container("ipsec-vpn-options", IPSEC_VPN_OPTIONS),
    list("ipsec-vpn-rules"),
    unsupported("nat-rules"),
    unsupported("stateful-firewall-rules"),
    unsupported("ids-rules"),
    unsupported("softwire-rules"),
    unsupported("pcp-rules"),
    unsupported("syslog"),
    unsupported("max-flows"),
    unsupported("service-order"),
    unsupported("replicate-services"),
    unsupported("ipsec-vpn-rule-sets"),
];

const FROM: &[Statement] = &[
    multi("source-address"),
    multi("destination-address"),
    leaf("ipsec-inside-interface"),
    unsupported("source-address-range"),
    unsupported("destination-address-range"),
    unsupported("applications"),
];

const DYNAMIC: &[Statement] = &[leaf("ike-policy"), leaf("ipsec-policy")];

const MANUAL_KEYED: &[Statement] = &[leaf("algorithm"), oneliner("key", SECRET)];

const MANUAL_DIRECTION: &[Statement] = &[
    leaf("protocol"),
    leaf("spi"),
    container("authentication", MANUAL_KEYED),
    container("encryption", MANUAL_KEYED),
    unsupported("auxiliary-spi"),
];

const MANUAL: &[Statement] = &[named("direction", MANUAL_DIRECTION)];

const THEN: &[Statement] = &[
    leaf("remote-gateway"),
    container("dynamic", DYNAMIC),
    container("manual", MANUAL),
    unsupported("backup-remote-gateway"),
    unsupported("clear-dont-fragment-bit"),
    unsupported("set-dont-fragment-bit"),
    unsupported("copy-dont-fragment-bit"),
    unsupported("tunnel-mtu"),
    unsupported("initiate-dead-peer-detection"),
    unsupported("dead-peer-detection"),
    unsupported("anti-replay-window-size"),
    unsupported("no-anti-replay"),
    unsupported("syslog"),
];

const TERM: &[Statement] = &[container("from", FROM), container("then", THEN)];

const RULE: &[Statement] = &[named("term", TERM), leaf("match-direction")];

const IKE_PROPOSAL: &[Statement] = &[
    leaf("description"),
    leaf("authentication-method"),
    leaf("dh-group"),
    leaf("authentication-algorithm"),
    leaf("encryption-algorithm"),
    leaf("lifetime-seconds"),
];

const REMOTE_ID: &[Statement] = &[
    flag("any-remote-id"),
    list("ipv4_addr"),
    list("ipv6_addr"),
    list("fqdn"),
    list("user-at-hostname"),
    list("key_id"),
    list("distinguished-name"),
];

const LOCAL_ID: &[Statement] = &[
    flag("distinguished-name"),
    leaf("fqdn"),
    leaf("user-at-hostname"),
    leaf("ipv4_addr"),
    leaf("ipv6_addr"),
    unsupported("key_id"),
];

const IKE_POLICY: &[Statement] = &[
    leaf("description"),
    leaf("mode"),
    list("proposals"),
    oneliner("pre-shared-key", SECRET),
    list("local-certificate"),
    container("remote-id", REMOTE_ID),
    container("local-id", LOCAL_ID),
    leaf("version"),
    unsupported("proposal-set"),
    unsupported("respond-bad-spi"),
];

const IKE: &[Statement] = &[
    named("proposal", IKE_PROPOSAL),
    named("policy", IKE_POLICY),
    unsupported("traceoptions"),
];

const IPSEC_PROPOSAL: &[Statement] = &[
    leaf("description"),
    leaf("protocol"),
    leaf("authentication-algorithm"),
    leaf("encryption-algorithm"),
    leaf("lifetime-seconds"),
    leaf("lifetime-kilobytes"),
];

const PFS: &[Statement] = &[leaf("keys")];

const IPSEC_POLICY: &[Statement] = &[
    leaf("description"),
    list("proposals"),
    oneliner("perfect-forward-secrecy", PFS),
    unsupported("proposal-set"),
];

const IPSEC: &[Statement] = &[
    named("proposal", IPSEC_PROPOSAL),
    named("policy", IPSEC_POLICY),
    unsupported("traceoptions"),
];

const IPSEC_VPN: &[Statement] = &[
    named("rule", RULE),
    container("ike", IKE),
    container("ipsec", IPSEC),
    unsupported("traceoptions"),
    unsupported("rule-set"),
    unsupported("establish-tunnels"),
    unsupported("no-ipsec-tunnel-in-traceroute"),
    unsupported("clear-ike-sas-on-pic-restart"),
];

const SERVICES: &[Statement] = &[
    named("service-set", SERVICE_SET),
    container("ipsec-vpn", IPSEC_VPN),
    unsupported("nat"),
    unsupported("stateful-firewall"),
    unsupported("ids"),
    unsupported("rpm"),
    unsupported("l2tp"),
    unsupported("adaptive-services-pics"),
    unsupported("service-interface-pools"),
    unsupported("softwire"),
    unsupported("pcp"),
    unsupported("cos"),
    unsupported("flow-monitoring"),
    unsupported("application-identification"),
];

const ROUTE: &[Statement] = &[
    leaf("next-hop"),
    unsupported("preference"),
    unsupported("metric"),
    unsupported("discard"),
    unsupported("reject"),
    unsupported("qualified-next-hop"),
    unsupported("tag"),
    unsupported("no-readvertise"),
    unsupported("resolve"),
];

const STATIC: &[Statement] = &[
    named_oneliner("route", ROUTE),
    unsupported("defaults"),
    unsupported("rib-group"),
];

const ROUTING_OPTIONS: &[Statement] = &[
    container("static", STATIC),
    unsupported("autonomous-system"),
    unsupported("router-id"),
    unsupported("rib"),
    unsupported("interface-routes"),
    unsupported("forwarding-table"),
    unsupported("aggregate"),
    unsupported("generate"),
    unsupported("rib-groups"),
];

const ROUTING_INSTANCE: &[Statement] = &[
    leaf("description"),
    leaf("instance-type"),
    multi("interface"),
    leaf("route-distinguisher"),
    leaf("vrf-target"),
    container("routing-options", ROUTING_OPTIONS),
    unsupported("protocols"),
    unsupported("vrf-import"),
    unsupported("vrf-export"),
    unsupported("vrf-table-label"),
    unsupported("forwarding-options"),
];

const ROUTING_INSTANCES: &[Statement] = &[named("*", ROUTING_INSTANCE)];

/// dyntun names the PEM files here; Junos loads certificates by operational command instead.
const CA_PROFILE: &[Statement] = &[
    leaf("ca-identity"),
    leaf("certificate-file"),
    leaf("crl-file"),
    unsupported("enrollment"),
    unsupported("revocation-check"),
    unsupported("administrator"),
];

const LOCAL_CERTIFICATE: &[Statement] = &[leaf("certificate-file"), leaf("private-key-file")];

const PKI: &[Statement] = &[
    named("ca-profile", CA_PROFILE),
    named("local-certificate", LOCAL_CERTIFICATE),
    unsupported("auto-re-enrollment"),
    unsupported("trap"),
    unsupported("traceoptions"),
];

const SECURITY: &[Statement] = &[
    container("pki", PKI),
    unsupported("ike"),
    unsupported("ipsec"),
    unsupported("policies"),
    unsupported("zones"),
    unsupported("screen"),
    unsupported("nat"),
    unsupported("ssh-known-hosts"),
];

const DATAPLANE_INTERFACE: &[Statement] = &[leaf("device")];
const DATAPLANE_PIC: &[Statement] = &[list("cores")];

const DATAPLANE: &[Statement] = &[
    named("interface", DATAPLANE_INTERFACE),
    named("pic", DATAPLANE_PIC),
    leaf("control-core"),
    list("eal-options"),
    leaf("idle-backoff-us"),
];

pub const TOP: &[Statement] = &[
    leaf("version"),
    container("interfaces", INTERFACES),
    container("access", ACCESS),
    container("services", SERVICES),
    container("routing-instances", ROUTING_INSTANCES),
    container("routing-options", ROUTING_OPTIONS),
    container("dataplane", DATAPLANE),
    unsupported("system"),
    unsupported("chassis"),
    unsupported("protocols"),
    unsupported("firewall"),
    unsupported("policy-options"),
    container("security", SECURITY),
    unsupported("snmp"),
    unsupported("class-of-service"),
    unsupported("forwarding-options"),
    unsupported("groups"),
    unsupported("event-options"),
    unsupported("applications"),
];

/// The statement for `word` at this level: its own keyword, else the level's `*` entry.
pub fn lookup(level: &'static [Statement], word: &str) -> Option<&'static Statement> {
    level
        .iter()
        .find(|s| s.keyword == word)
        .or_else(|| level.iter().find(|s| s.keyword == "*"))
}
