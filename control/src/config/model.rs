//! The validated configuration: typed values only, references already checked to resolve.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dataplane::prefix::Prefix;
use dataplane::sa::{Cipher, DfMode, Integrity, Lifetime};

use super::error::Origin;
use super::names::{InterfaceKind, UnitName};
use super::secret::Secret;

/// Where the statements under one object were written, keyed by keyword (`ike-access-profile`)
/// or, for repeatable statements and list items, keyword and value (`ipsec-vpn-rules r1`):
/// commit-check errors point at the statement at fault rather than at its object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatementOrigins(pub BTreeMap<String, Origin>);

impl StatementOrigins {
    /// The statement's origin, else `fallback` (the object's own).
    pub fn at<'a>(&'a self, key: &str, fallback: &'a Origin) -> &'a Origin {
        self.0.get(key).unwrap_or(fallback)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub interfaces: BTreeMap<String, Interface>,
    pub access_profiles: BTreeMap<String, AccessProfile>,
    pub service_sets: BTreeMap<String, ServiceSet>,
    pub rules: BTreeMap<String, IpsecRule>,
    pub ike_proposals: BTreeMap<String, IkeProposal>,
    pub ike_policies: BTreeMap<String, IkePolicy>,
    pub ipsec_proposals: BTreeMap<String, IpsecProposal>,
    pub ipsec_policies: BTreeMap<String, IpsecPolicy>,
    pub routing_instances: BTreeMap<String, RoutingInstance>,
    /// Every static route, top-level and per routing instance, in configuration order.
    pub static_routes: Vec<StaticRoute>,
    /// `ipsec-interface-id` pools, derived from the units' `dial-options`.
    pub pools: BTreeMap<String, Pool>,
    pub dataplane: DataplaneConfig,
    /// `security pki`: certificate files for signature authentication.
    pub pki: PkiConfig,
}

#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub kind: InterfaceKind,
    pub units: BTreeMap<u32, Unit>,
    /// `load-balancing-options member-interface` of an `ams` interface.
    pub members: Vec<String>,
    pub origin: Origin,
}

/// An address on an interface: the host address and the subnet it sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub addr: IpAddr,
    pub subnet: Prefix,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ServiceDomain {
    Inside,
    Outside,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PoolMode {
    /// One unit per tunnel (link-type tunnels).
    Dedicated,
    /// One unit for many tunnels (policy-based tunnels).
    Shared,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceId {
    Ipsec(String),
    L2tp(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialOptions {
    pub id: Option<InterfaceId>,
    pub mode: Option<PoolMode>,
}

#[derive(Clone, Debug)]
pub struct Unit {
    pub name: UnitName,
    /// `family inet` is present (possibly without addresses).
    pub inet: bool,
    pub inet6: bool,
    pub addresses: Vec<InterfaceAddress>,
    pub service_domain: Option<ServiceDomain>,
    pub dial_options: Option<DialOptions>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

/// An `ipsec-interface-id` pool: the units dynamic tunnels of a profile are assigned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub id: String,
    pub mode: PoolMode,
    pub units: Vec<UnitName>,
}

/// `access profile NAME client * ike { … }`.
#[derive(Clone, Debug)]
pub struct AccessProfile {
    pub name: String,
    /// The client name: dyntun needs `*` (every dynamic peer), checked at commit.
    pub client: String,
    /// `(remote, local)`, as the peer's phase-2 identities must match; the default is any IPv4.
    pub allowed_proxy_pairs: Vec<(Prefix, Prefix)>,
    pub pre_shared_key: Option<Secret>,
    pub ike_policy: Option<String>,
    pub interface_id: Option<String>,
    pub ipsec_policy: Option<String>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceSetKind {
    NextHop { inside: UnitName, outside: UnitName },
    Interface { service_interface: UnitName },
}

#[derive(Clone, Debug)]
pub struct ServiceSet {
    pub name: String,
    pub kind: ServiceSetKind,
    pub local_gateway: Option<IpAddr>,
    /// `local-gateway A routing-instance R`: where the gateway address lives.
    pub local_gateway_instance: Option<String>,
    pub ike_access_profile: Option<String>,
    /// 0 with `no-anti-replay`; Junos' default is 64.
    pub anti_replay_window: u32,
    pub df_mode: DfMode,
    pub tunnel_mtu: Option<u16>,
    pub trusted_ca: Vec<String>,
    /// `no-certificate-chain-in-ike`: send only the end-entity certificate.
    pub no_certificate_chain_in_ike: bool,
    /// `ipsec-vpn-rules`, in the order they are matched.
    pub rules: Vec<String>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

pub const DEFAULT_ANTI_REPLAY_WINDOW: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MatchDirection {
    Input,
    Output,
}

#[derive(Clone, Debug)]
pub struct IpsecRule {
    pub name: String,
    pub match_direction: MatchDirection,
    pub terms: Vec<Term>,
    pub origin: Origin,
}

#[derive(Clone, Debug)]
pub struct Term {
    pub name: String,
    pub source: Vec<Prefix>,
    pub destination: Vec<Prefix>,
    pub ipsec_inside_interface: Option<UnitName>,
    pub remote_gateway: Option<IpAddr>,
    pub action: TermAction,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

#[derive(Clone, Debug)]
pub enum TermAction {
    Dynamic {
        ike_policy: Option<String>,
        ipsec_policy: Option<String>,
    },
    Manual(Vec<ManualSa>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ManualDirection {
    Inbound,
    Outbound,
    Bidirectional,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ProposalProtocol {
    Esp,
    Ah,
    /// AH and ESP together.
    Bundle,
}

/// One `manual direction …` block: key material and algorithms for a static SA.
#[derive(Clone, Debug)]
pub struct ManualSa {
    pub direction: ManualDirection,
    pub protocol: ProposalProtocol,
    pub spi: u32,
    pub integrity: Option<(Integrity, Secret)>,
    pub encryption: Option<(Cipher, Secret)>,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IkeAuthMethod {
    PreSharedKeys,
    RsaSignatures,
    /// RFC 4754 ECDSA with P-256 / P-384.
    EcdsaSignatures256,
    EcdsaSignatures384,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IkeHash {
    Md5,
    Sha1,
    Sha256,
}

/// A Diffie-Hellman group by its IKE number (1, 2, 5, 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DhGroup(pub u8);

#[derive(Clone, Debug)]
pub struct IkeProposal {
    pub name: String,
    pub auth_method: IkeAuthMethod,
    pub dh_group: Option<DhGroup>,
    pub hash: Option<IkeHash>,
    pub cipher: Option<Cipher>,
    pub lifetime_seconds: Option<u32>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteId {
    /// Not configured.
    Unset,
    /// `any-remote-id`: every identity (dynamic endpoints, certificate mode).
    Any,
    /// Explicit identities (`ipv4_addr`, `fqdn`, …), as written.
    Listed(Vec<String>),
}

/// The kind of one `remote-id` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RemoteIdKind {
    Ipv4,
    Ipv6,
    Fqdn,
    UserAtHostname,
    KeyId,
    DistinguishedName,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteIdEntry {
    pub kind: RemoteIdKind,
    pub value: String,
}

/// `local-id`: the identity sent to peers with certificate authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalId {
    /// The local certificate's subject (also the default).
    DistinguishedName,
    Fqdn(String),
    UserAtHostname(String),
    Address(IpAddr),
}

#[derive(Clone, Debug)]
pub struct IkePolicy {
    pub name: String,
    pub proposals: Vec<String>,
    pub pre_shared_key: Option<Secret>,
    /// The first of `local_certificates`.
    pub local_certificate: Option<String>,
    /// dyntun accepts several (one RSA, one ECDSA): both ends sign with the negotiated method.
    pub local_certificates: Vec<String>,
    pub remote_id: RemoteId,
    /// The `remote-id` entries with their kinds (empty for `any-remote-id`).
    pub remote_ids: Vec<RemoteIdEntry>,
    pub local_id: Option<LocalId>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

#[derive(Clone, Debug)]
pub struct IpsecProposal {
    pub name: String,
    pub protocol: ProposalProtocol,
    pub integrity: Option<Integrity>,
    pub cipher: Option<Cipher>,
    pub lifetime: Lifetime,
    pub origin: Origin,
}

#[derive(Clone, Debug)]
pub struct IpsecPolicy {
    pub name: String,
    pub proposals: Vec<String>,
    pub pfs: Option<DhGroup>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

#[derive(Clone, Debug)]
pub struct RoutingInstance {
    pub name: String,
    pub interfaces: Vec<UnitName>,
    pub route_distinguisher: Option<String>,
    pub vrf_target: Option<String>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    Address(IpAddr),
    Interface(UnitName),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// `inet.0`, `inet6.0`, `VRF.inet.0` or `VRF.inet6.0`.
    pub table: String,
    pub prefix: Prefix,
    pub next_hop: NextHop,
    pub origin: Origin,
}

/// `security pki` (dyntun extension: the PEM files are named here).
#[derive(Clone, Debug, Default)]
pub struct PkiConfig {
    pub ca_profiles: BTreeMap<String, CaProfileConfig>,
    pub local_certificates: BTreeMap<String, LocalCertificateConfig>,
}

/// `security pki ca-profile NAME { ca-identity ID; certificate-file F; crl-file F; }`.
#[derive(Clone, Debug)]
pub struct CaProfileConfig {
    pub name: String,
    pub ca_identity: Option<String>,
    /// PEM, one or more CA certificates; relative paths are taken from the working directory.
    pub certificate_file: Option<String>,
    pub crl_file: Option<String>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

/// `security pki local-certificate NAME { certificate-file F; private-key-file F; }`.
#[derive(Clone, Debug)]
pub struct LocalCertificateConfig {
    pub name: String,
    /// PEM: the certificate, then optionally its intermediate CAs.
    pub certificate_file: Option<String>,
    /// PEM private key (RSA or ECDSA P-256), unencrypted.
    pub private_key_file: Option<String>,
    pub origin: Origin,
    pub origins: StatementOrigins,
}

/// What backs a physical interface: a DPDK virtual device or a PCI device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// EAL `--vdev` argument, e.g. `net_af_packet0,iface=sg1-out`.
    Virtual(String),
    /// PCI address `DDDD:BB:DD.F`.
    Pci(String),
}

impl Device {
    /// The name DPDK gives the port (`rte_eth_dev_get_port_by_name`): the vdev's name before its
    /// first `,`, or the PCI address.
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Virtual(args) => args.split(',').next().unwrap_or(args),
            Device::Pci(addr) => addr,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataplaneConfig {
    pub devices: BTreeMap<String, Device>,
    /// Worker cores of each emulated services PIC, by services interface name.
    pub pics: BTreeMap<String, Vec<u32>>,
    pub control_core: Option<u32>,
    pub eal_options: Vec<String>,
    pub idle_backoff_us: Option<u32>,
    /// Where each `interface NAME` / `pic NAME` entry was written, for commit-check errors.
    pub origins: BTreeMap<String, Origin>,
}
