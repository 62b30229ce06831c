//! From the validated configuration to what `dyntun run` builds: EAL arguments, ports with
//! their addresses and routing instances, PICs and their worker cores, the tunnel topology,
//! one IKE responder policy per access profile, and the routes every worker starts with.
//!
//! Everything that can be wrong with the configuration was refused by `dyntun check`; what is
//! refused here is what the running gateway does not support yet, each with one clear line.

use std::net::{IpAddr, Ipv4Addr};

use control::config::{self, Config, Device, NextHop as ConfigNextHop, ServiceSetKind};
use control::ike::{self, IkeProposal, IpsecProposal, PskTable, ResponderPolicy};
use control::tunnels::{
    PicId, PicInfo, PoolInfo, ServiceSetInfo, ServicesInterface, TunnelTopology, UnitInfo, UnitMode,
};
use dataplane::prefix::Prefix;
use dataplane::tables::WorkerId;

/// A physical interface backed by a DPDK port.
#[derive(Debug, Clone)]
pub struct PlannedPort {
    pub interface: String,
    pub devargs: String,
    /// `(address, subnet)` of every unit of the interface.
    pub addresses: Vec<(IpAddr, Prefix)>,
    /// Routing instance of the interface's units (`None` = the default instance).
    pub vrf: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PlannedPic {
    pub name: String,
    pub id: PicId,
    /// CPUs from the configuration (several workers may share one on a small machine).
    pub cores: Vec<u32>,
    /// EAL lcore ids of the workers, mapped onto `cores` with `--lcores`.
    pub lcores: Vec<u32>,
    /// Global worker ids, one per core.
    pub workers: Vec<WorkerId>,
}

/// One IKE responder: the access profile and the gateway address its service sets share.
pub struct PlannedResponder {
    pub access_profile: String,
    pub local_gateway: IpAddr,
    /// The service set's outer-header settings, applied to every SA IKE negotiates.
    pub df_mode: dataplane::sa::DfMode,
    pub tunnel_mtu: Option<u16>,
    pub policy: ResponderPolicy,
}

/// A route the configuration asks for, before unit and VRF names become ids.
#[derive(Debug, Clone)]
pub struct PlannedRoute {
    pub vrf: Option<String>,
    pub prefix: Prefix,
    pub kind: PlannedRouteKind,
}

#[derive(Debug, Clone)]
pub enum PlannedRouteKind {
    /// The subnet of an interface address, out of that port.
    Direct { port_index: usize },
    /// One of the gateway's own addresses.
    Local,
    /// A static route through a neighbor out of the port whose subnet holds it.
    Gateway { port_index: usize, gateway: IpAddr },
    /// A static route into a services unit (a link-type tunnel with a 0/0 proxy).
    Unit(String),
}

/// A configured term of a service set's static rules, in match order.
pub struct PlannedTerm {
    pub service_set: String,
    pub rule: String,
    pub term: String,
    pub inside_unit: Option<String>,
    pub sources: Vec<Prefix>,
    pub destinations: Vec<Prefix>,
    pub remote_gateway: Option<IpAddr>,
    /// The manual SAs the term protects its traffic with (`then manual`). Terms with `then
    /// dynamic` and a remote gateway only name a per-address key: dyntun never initiates, so
    /// they install nothing in the dataplane.
    pub manual: Option<(Vec<dataplane::sa::SaSpec>, Vec<dataplane::sa::SaSpec>)>,
}

pub struct Plan {
    pub eal_args: Vec<String>,
    /// Data room of the gateway's mbufs: large enough for the biggest frame a port hands over.
    pub mbuf_data_room: u16,
    pub static_terms: Vec<PlannedTerm>,
    pub ports: Vec<PlannedPort>,
    pub pics: Vec<PlannedPic>,
    pub topology: TunnelTopology,
    pub responders: Vec<PlannedResponder>,
    pub routes: Vec<PlannedRoute>,
    pub idle_backoff_us: u32,
}

pub fn plan(config: &Config, file_prefix: &str, extra_eal: &[String]) -> Result<Plan, String> {
    let ports = plan_ports(config)?;
    let (pics, control_core) = plan_pics(config)?;
    let topology = plan_topology(config, &pics)?;
    let responders = plan_responders(config)?;
    let routes = plan_routes(config, &ports)?;
    let eal_args = eal_arguments(config, &pics, control_core, file_prefix, extra_eal);
    let static_terms = plan_static_terms(config)?;
    let mbuf_data_room = eal_args
        .iter()
        .filter_map(|a| a.strip_prefix("--vdev="))
        .filter_map(af_packet_frame_size)
        .map(|frame| frame.saturating_add(MBUF_HEADROOM))
        .fold(dpdk::Mempool::DEFAULT_DATA_ROOM, u16::max);
    Ok(Plan {
        eal_args,
        mbuf_data_room,
        static_terms,
        ports,
        pics,
        topology,
        responders,
        routes,
        idle_backoff_us: config.dataplane.idle_backoff_us.unwrap_or(100),
    })
}

fn plan_ports(config: &Config) -> Result<Vec<PlannedPort>, String> {
    let mut ports = Vec::new();
    for (interface, device) in &config.dataplane.devices {
        let devargs = match device {
            Device::Virtual(devargs) => devargs.clone(),
            Device::Pci(address) => address.clone(),
        };
        let mut addresses = Vec::new();
        let mut vrf = None;
        if let Some(found) = config.interfaces.get(interface) {
            for unit in found.units.values() {
                addresses.extend(unit.addresses.iter().map(|a| (a.addr, a.subnet)));
                if let Some(instance) = config.routing_instance_of(&unit.name) {
                    vrf = Some(instance.to_string());
                }
            }
        }
        ports.push(PlannedPort {
            interface: interface.clone(),
            devargs,
            addresses,
            vrf,
        });
    }
    if ports.is_empty() {
        return Err(
            "the dataplane hierarchy names no interface device: nothing to forward on".into(),
        );
    }
    Ok(ports)
}

fn plan_pics(config: &Config) -> Result<(Vec<PlannedPic>, u32), String> {
    let mut pics = Vec::new();
    let mut next_worker = 0u16;
    // lcore 0 is the control thread; workers are 1, 2, … whatever CPU they run on.
    let mut next_lcore = 1u32;
    for (index, (name, cores)) in config.dataplane.pics.iter().enumerate() {
        let lcores = cores
            .iter()
            .map(|_| {
                let id = next_lcore;
                next_lcore += 1;
                id
            })
            .collect();
        let workers = cores
            .iter()
            .map(|_| {
                let id = WorkerId(next_worker);
                next_worker += 1;
                id
            })
            .collect();
        pics.push(PlannedPic {
            name: name.clone(),
            id: PicId(index as u16),
            cores: cores.clone(),
            lcores,
            workers,
        });
    }
    if pics.is_empty() {
        return Err(
            "the dataplane hierarchy names no services PIC (`pic NAME { cores [ … ]; }`)".into(),
        );
    }
    let control_core = config.dataplane.control_core.unwrap_or(0);
    Ok((pics, control_core))
}

fn pic_of(pics: &[PlannedPic], interface: &str) -> Option<PicId> {
    pics.iter().find(|p| p.name == interface).map(|p| p.id)
}

fn plan_topology(config: &Config, pics: &[PlannedPic]) -> Result<TunnelTopology, String> {
    let mut topology = TunnelTopology {
        pics: pics
            .iter()
            .map(|p| PicInfo {
                id: p.id,
                name: p.name.clone(),
                workers: p.workers.clone(),
            })
            .collect(),
        ..TunnelTopology::default()
    };
    for view in config.service_sets() {
        let set = view.set;
        let (inside, outside, next_hop_style) = match &set.kind {
            ServiceSetKind::NextHop { inside, outside } => (inside.clone(), outside.clone(), true),
            ServiceSetKind::Interface { service_interface } => {
                (service_interface.clone(), service_interface.clone(), false)
            }
        };
        // A service set without `ike-access-profile` carries only static rules (manual SAs or
        // IKE-less terms): it still owns its services units, which static routes point at.
        let profile = view.access_profile;
        let interface = match config.interfaces.get(&inside.interface) {
            Some(found) if !found.members.is_empty() => ServicesInterface::Ams {
                name: inside.interface.clone(),
                members: found
                    .members
                    .iter()
                    .map(|m| {
                        pic_of(pics, m).ok_or_else(|| {
                            format!(
                                "dataplane: AMS member {m} of {} has no `pic` entry",
                                inside.interface
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            _ => ServicesInterface::Pic(pic_of(pics, &inside.interface).ok_or_else(|| {
                format!(
                    "service set {}: services interface {} has no `dataplane pic` entry with cores",
                    set.name, inside.interface
                )
            })?),
        };
        let local_gateway = match (set.local_gateway, profile) {
            (Some(address), _) => address,
            (None, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, Some(_)) => {
                return Err(format!(
                    "service set {}: dynamic endpoints need `local-gateway`",
                    set.name
                ))
            }
        };
        topology.service_sets.push(ServiceSetInfo {
            name: set.name.clone(),
            interface,
            inside_unit: inside.to_string(),
            outside_unit: outside.to_string(),
            vrf: config.routing_instance_of(&inside).map(str::to_string),
            next_hop_style,
            access_profile: profile.map(|p| p.name.clone()).unwrap_or_default(),
            local_gateway,
            local_gateway_vrf: set.local_gateway_instance.clone(),
            pool_id: view.pool.map(|p| p.id.clone()),
        });
    }
    topology.pools = config
        .pools
        .values()
        .map(|pool| PoolInfo {
            id: pool.id.clone(),
            units: pool
                .units
                .iter()
                .map(|u| UnitInfo {
                    name: u.to_string(),
                    mode: match pool.mode {
                        config::PoolMode::Dedicated => UnitMode::Dedicated,
                        config::PoolMode::Shared => UnitMode::Shared,
                    },
                })
                .collect(),
        })
        .collect();
    Ok(topology)
}

fn plan_responders(config: &Config) -> Result<Vec<PlannedResponder>, String> {
    let mut responders: Vec<PlannedResponder> = Vec::new();
    for view in config.service_sets() {
        let Some(profile) = view.access_profile else {
            continue;
        };
        if responders.iter().any(|r| r.access_profile == profile.name) {
            continue;
        }
        let local_gateway = view.set.local_gateway.ok_or_else(|| {
            format!(
                "service set {}: dynamic endpoints need `local-gateway`",
                view.set.name
            )
        })?;
        // Per-address keys: every static term with a remote gateway in the service sets that
        // share this profile (the reference's "explicitly configured keys" come first).
        let mut explicit = Vec::new();
        for other in config
            .service_sets()
            .filter(|v| v.access_profile.map(|p| &p.name) == Some(&profile.name))
        {
            for rule_name in &other.set.rules {
                let Some(rule) = config.rules.get(rule_name) else {
                    continue;
                };
                for term in &rule.terms {
                    let Some(peer) = term.remote_gateway else {
                        continue;
                    };
                    if let Some((key, config::PskSource::PerAddress { .. })) =
                        config.psk_for_peer(&other.set.name, peer)
                    {
                        explicit.push((peer, ike::Secret::new(key.bytes().to_vec())));
                    }
                }
            }
        }
        let global = profile
            .pre_shared_key
            .as_ref()
            .or(view.ike_policy.and_then(|p| p.pre_shared_key.as_ref()))
            .map(|key| ike::Secret::new(key.bytes().to_vec()));
        let ike_proposals = match view.ike_policy {
            Some(policy) => ike_proposals_of(config, &policy.proposals)?,
            None => Vec::new(),
        };
        let (ipsec_proposals, pfs_group) = match view.ipsec_policy {
            Some(policy) => (
                ipsec_proposals_of(config, &policy.proposals),
                policy
                    .pfs
                    .and_then(|g| ike::dh::DhGroup::from_number(u16::from(g.0))),
            ),
            None => (Vec::new(), None),
        };
        responders.push(PlannedResponder {
            access_profile: profile.name.clone(),
            local_gateway,
            df_mode: view.set.df_mode,
            tunnel_mtu: view.set.tunnel_mtu,
            policy: ResponderPolicy {
                local_addresses: vec![local_gateway],
                psk: PskTable { explicit, global },
                ike_proposals,
                ipsec_proposals,
                pfs_group,
                allowed_proxy_pairs: profile.allowed_proxy_pairs.clone(),
                limits: ike::Limits::default(),
                replay_window: view.set.anti_replay_window,
                certificates: certificate_auth(config, &profile.name, view.ike_policy)?,
            },
        });
    }
    Ok(responders)
}

/// Certificate authentication for the access profile's IKE policy, when it names local
/// certificates: the PEM files are read now (relative paths from the working directory), the
/// trusted CAs are those of every service set sharing the profile.
fn certificate_auth(
    config: &Config,
    profile: &str,
    policy: Option<&config::IkePolicy>,
) -> Result<Option<std::sync::Arc<ike::CertificateAuth>>, String> {
    use control::pki::{RemoteIdRule, RemoteIdRules, TrustStore};
    let Some(policy) = policy.filter(|p| !p.local_certificates.is_empty()) else {
        return Ok(None);
    };
    let base = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    let mut credentials: Vec<control::pki::LocalCredential> = Vec::new();
    for name in &policy.local_certificates {
        let c = config.pki.local_certificates.get(name).ok_or_else(|| {
            format!(
                "ike policy {}: local-certificate {name} is not configured",
                policy.name
            )
        })?;
        let credential = config::load_local_certificate(c, &base).map_err(|e| e.to_string())?;
        if let Some(other) = credentials.iter().find(|o| o.kind == credential.kind) {
            return Err(format!(
                "ike policy {}: local certificates {} and {name} hold the same kind of key ({:?}): give at most one certificate per key kind",
                policy.name, other.name, credential.kind
            ));
        }
        credentials.push(credential);
    }
    let sets: Vec<_> = config
        .service_sets()
        .filter(|v| v.access_profile.is_some_and(|p| p.name == profile))
        .collect();
    let mut profiles = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for ca in sets.iter().flat_map(|v| v.set.trusted_ca.iter()) {
        if !seen.insert(ca.clone()) {
            continue;
        }
        let p = config
            .pki
            .ca_profiles
            .get(ca)
            .ok_or_else(|| format!("trusted-ca {ca} is not configured"))?;
        profiles.push(config::load_ca_profile(p, &base).map_err(|e| e.to_string())?);
    }
    let trust = TrustStore::new(profiles).map_err(|e| e.to_string())?;
    let remote_id = match &policy.remote_id {
        config::RemoteId::Any => RemoteIdRules::Any,
        _ => RemoteIdRules::Listed(
            policy
                .remote_ids
                .iter()
                .filter_map(remote_id_rule)
                .collect::<Vec<RemoteIdRule>>(),
        ),
    };
    let local_id = match &policy.local_id {
        None | Some(config::LocalId::DistinguishedName) => ike::LocalIdentity::SubjectDn,
        Some(config::LocalId::Fqdn(n)) => ike::LocalIdentity::Fqdn(n.clone()),
        Some(config::LocalId::UserAtHostname(n)) => ike::LocalIdentity::UserFqdn(n.clone()),
        Some(config::LocalId::Address(a)) => ike::LocalIdentity::Address(*a),
    };
    let send_chain = !sets.iter().any(|v| v.set.no_certificate_chain_in_ike);
    Ok(Some(std::sync::Arc::new(ike::CertificateAuth {
        credentials,
        trust,
        remote_id,
        local_id,
        send_chain,
    })))
}

/// One `remote-id` entry as the responder matches it (the checks already parsed each value).
fn remote_id_rule(entry: &config::RemoteIdEntry) -> Option<control::pki::RemoteIdRule> {
    use config::RemoteIdKind as Kind;
    use control::pki::RemoteIdRule;
    Some(match entry.kind {
        Kind::Ipv4 | Kind::Ipv6 => RemoteIdRule::Address(entry.value.parse().ok()?),
        Kind::Fqdn => RemoteIdRule::Fqdn(entry.value.clone()),
        Kind::UserAtHostname => RemoteIdRule::UserFqdn(entry.value.clone()),
        Kind::KeyId => RemoteIdRule::KeyId(entry.value.as_bytes().to_vec()),
        Kind::DistinguishedName => RemoteIdRule::distinguished_name(&entry.value).ok()?,
    })
}

fn ike_proposals_of(config: &Config, names: &[String]) -> Result<Vec<IkeProposal>, String> {
    let default = IkeProposal::implicit_default();
    names
        .iter()
        .filter_map(|name| config.ike_proposals.get(name))
        .map(|p| {
            let cipher = match p.cipher {
                None => None,
                Some(c) => Some(ike_cipher_of(c).ok_or_else(|| {
                    format!(
                        "ike proposal {}: {} is not an IKE cipher",
                        p.name,
                        c.junos_name()
                    )
                })?),
            };
            Ok(IkeProposal {
                groups: p
                    .dh_group
                    .and_then(|g| ike::dh::DhGroup::from_number(u16::from(g.0)))
                    .map_or_else(|| default.groups.clone(), |g| vec![g]),
                hashes: p.hash.map_or_else(
                    || default.hashes.clone(),
                    |h| {
                        vec![match h {
                            config::IkeHash::Md5 => ike::crypto::HashAlg::Md5,
                            config::IkeHash::Sha1 => ike::crypto::HashAlg::Sha1,
                            config::IkeHash::Sha256 => ike::crypto::HashAlg::Sha256,
                        }]
                    },
                ),
                ciphers: cipher.map_or_else(|| default.ciphers.clone(), |c| vec![c]),
                auth_methods: vec![match p.auth_method {
                    config::IkeAuthMethod::PreSharedKeys => ike::AuthMethod::PreSharedKey,
                    config::IkeAuthMethod::RsaSignatures => ike::AuthMethod::RsaSignature,
                    config::IkeAuthMethod::EcdsaSignatures256 => ike::AuthMethod::EcdsaP256,
                    config::IkeAuthMethod::EcdsaSignatures384 => ike::AuthMethod::EcdsaP384,
                }],
                lifetime_seconds: p
                    .lifetime_seconds
                    .map_or(default.lifetime_seconds, u64::from),
            })
        })
        .collect()
}

fn ike_cipher_of(cipher: dataplane::sa::Cipher) -> Option<ike::crypto::IkeCipher> {
    use dataplane::sa::Cipher;
    use ike::crypto::IkeCipher;
    Some(match cipher {
        Cipher::DesCbc => IkeCipher::DesCbc,
        Cipher::TripleDesCbc => IkeCipher::TripleDesCbc,
        Cipher::AesCbc128 => IkeCipher::AesCbc { key_bits: 128 },
        Cipher::AesCbc192 => IkeCipher::AesCbc { key_bits: 192 },
        Cipher::AesCbc256 => IkeCipher::AesCbc { key_bits: 256 },
        _ => return None,
    })
}

fn ipsec_proposals_of(config: &Config, names: &[String]) -> Vec<IpsecProposal> {
    let default = IpsecProposal::implicit_default();
    names
        .iter()
        .filter_map(|name| config.ipsec_proposals.get(name))
        .map(|p| IpsecProposal {
            suites: vec![match p.protocol {
                config::ProposalProtocol::Esp => ike::policy::ProtocolSuite::Esp,
                config::ProposalProtocol::Ah => ike::policy::ProtocolSuite::Ah,
                config::ProposalProtocol::Bundle => ike::policy::ProtocolSuite::Bundle,
            }],
            ciphers: p
                .cipher
                .map_or_else(|| default.ciphers.clone(), |c| vec![c]),
            integrities: p
                .integrity
                .map_or_else(|| default.integrities.clone(), |i| vec![i]),
            lifetime_seconds: p.lifetime.hard_seconds.unwrap_or(default.lifetime_seconds),
            lifetime_kilobytes: p.lifetime.hard_kilobytes,
        })
        .collect()
}

fn plan_static_terms(config: &Config) -> Result<Vec<PlannedTerm>, String> {
    let mut terms = Vec::new();
    for view in config.service_sets() {
        let set = view.set;
        for rule_name in &set.rules {
            let Some(rule) = config.rules.get(rule_name) else {
                continue;
            };
            for term in &rule.terms {
                let manual = match &term.action {
                    config::TermAction::Manual(blocks) => {
                        let (Some(local), Some(remote)) = (set.local_gateway, term.remote_gateway)
                        else {
                            return Err(format!(
                                "service set {}: rule {} term {}: manual SAs need local-gateway and remote-gateway",
                                set.name, rule.name, term.name
                            ));
                        };
                        let specs: Vec<_> = blocks
                            .iter()
                            .flat_map(|b| b.sa_specs(local, remote, set))
                            .collect();
                        let (inbound, outbound): (Vec<_>, Vec<_>) = specs
                            .into_iter()
                            .partition(|s| s.direction == dataplane::sa::Direction::Inbound);
                        Some((inbound, outbound))
                    }
                    config::TermAction::Dynamic { .. } => None,
                };
                terms.push(PlannedTerm {
                    service_set: set.name.clone(),
                    rule: rule.name.clone(),
                    term: term.name.clone(),
                    inside_unit: term.ipsec_inside_interface.as_ref().map(|u| u.to_string()),
                    sources: term.source.clone(),
                    destinations: term.destination.clone(),
                    remote_gateway: term.remote_gateway,
                    manual,
                });
            }
        }
    }
    Ok(terms)
}

fn plan_routes(config: &Config, ports: &[PlannedPort]) -> Result<Vec<PlannedRoute>, String> {
    let mut routes = Vec::new();
    for (port_index, port) in ports.iter().enumerate() {
        for (addr, subnet) in &port.addresses {
            routes.push(PlannedRoute {
                vrf: port.vrf.clone(),
                prefix: *subnet,
                kind: PlannedRouteKind::Direct { port_index },
            });
            routes.push(PlannedRoute {
                vrf: port.vrf.clone(),
                prefix: Prefix::host(*addr),
                kind: PlannedRouteKind::Local,
            });
        }
    }
    for route in &config.static_routes {
        let vrf = route
            .table
            .split_once(".inet")
            .map(|(instance, _)| instance)
            .filter(|instance| !instance.is_empty() && *instance != "inet" && *instance != "inet6")
            .map(str::to_string);
        let vrf = if route.table.starts_with("inet") {
            None
        } else {
            vrf
        };
        let kind = match &route.next_hop {
            ConfigNextHop::Address(gateway) => {
                let port_index = ports
                    .iter()
                    .position(|p| p.vrf == vrf && p.addresses.iter().any(|(_, s)| s.contains(*gateway)))
                    .ok_or_else(|| {
                        format!(
                            "static route {} in {}: next hop {gateway} is on no interface of that table",
                            route.prefix, route.table
                        )
                    })?;
                PlannedRouteKind::Gateway {
                    port_index,
                    gateway: *gateway,
                }
            }
            ConfigNextHop::Interface(unit) => PlannedRouteKind::Unit(unit.to_string()),
        };
        routes.push(PlannedRoute {
            vrf,
            prefix: route.prefix,
            kind,
        });
    }
    Ok(routes)
}

fn eal_arguments(
    config: &Config,
    pics: &[PlannedPic],
    control_core: u32,
    file_prefix: &str,
    extra: &[String],
) -> Vec<String> {
    let mut mapping = vec![format!("0@{control_core}")];
    for pic in pics {
        for (lcore, cpu) in pic.lcores.iter().zip(&pic.cores) {
            mapping.push(format!("{lcore}@{cpu}"));
        }
    }
    let mut args: Vec<String> = vec![
        "--lcores".into(),
        mapping.join(","),
        "--main-lcore".into(),
        "0".into(),
        "--file-prefix".into(),
        file_prefix.into(),
    ];
    let mut has_pci = false;
    for device in config.dataplane.devices.values() {
        match device {
            Device::Virtual(devargs) => {
                args.push(format!("--vdev={}", with_af_packet_frames(devargs)))
            }
            Device::Pci(address) => {
                has_pci = true;
                args.push("-a".into());
                args.push(address.clone());
            }
        }
    }
    if !has_pci {
        args.push("--no-pci".into());
    }
    args.extend(config.dataplane.eal_options.iter().cloned());
    args.extend(extra.iter().cloned());
    args
}

/// net_af_packet joins its fanout group with kernel defragmentation, so a LAN host's fragmented
/// IPv4 datagram arrives whole; the default 2 KiB ring frame would cut it. 4 KiB frames carry
/// datagrams up to about 4,000 bytes (larger ones are counted as `drop_truncated`).
const AF_PACKET_FRAME_SIZE: u16 = 4096;
/// DPDK's mbuf headroom: the PMD copies a whole frame into one mbuf, after it.
const MBUF_HEADROOM: u16 = 128;

fn af_packet_frame_size(devargs: &str) -> Option<u16> {
    if !devargs.starts_with("net_af_packet") {
        return None;
    }
    devargs
        .split(',')
        .find_map(|kv| kv.strip_prefix("framesz="))
        .and_then(|n| n.parse().ok())
}

fn with_af_packet_frames(devargs: &str) -> String {
    if !devargs.starts_with("net_af_packet") || devargs.contains("framesz=") {
        return devargs.to_string();
    }
    let size = AF_PACKET_FRAME_SIZE;
    let block = if devargs.contains("blocksz=") {
        String::new()
    } else {
        format!(",blocksz={size}")
    };
    format!("{devargs},framesz={size}{block}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af_packet_devices_get_frames_for_defragmented_datagrams() {
        assert_eq!(
            with_af_packet_frames("net_af_packet0,iface=sg1-out,qpairs=2"),
            "net_af_packet0,iface=sg1-out,qpairs=2,framesz=4096,blocksz=4096"
        );
        assert_eq!(
            with_af_packet_frames("net_af_packet0,iface=x,framesz=9000,blocksz=16384"),
            "net_af_packet0,iface=x,framesz=9000,blocksz=16384"
        );
        assert_eq!(with_af_packet_frames("net_ring0"), "net_ring0");
        assert_eq!(
            af_packet_frame_size("net_af_packet1,iface=y,framesz=9000"),
            Some(9000)
        );
        assert_eq!(af_packet_frame_size("net_ring0,framesz=9000"), None);
    }

    fn example(name: &str) -> Config {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        control::config::parse(&text).unwrap_or_else(|e| panic!("{}", e.render(&path)))
    }

    #[test]
    fn two_pics_on_one_cpu_get_distinct_lcores() {
        let plan = plan(
            &example("sg1-two-pics.conf"),
            "px",
            &["--log-level=5".into()],
        )
        .unwrap();
        assert_eq!(
            plan.eal_args,
            [
                "--lcores",
                "0@0,1@1,2@1",
                "--main-lcore",
                "0",
                "--file-prefix",
                "px",
                "--vdev=net_af_packet0,iface=sg1-out,qpairs=2,framesz=4096,blocksz=4096",
                "--vdev=net_af_packet1,iface=sg1-in,qpairs=2,framesz=4096,blocksz=4096",
                "--no-pci",
                "--no-huge",
                "-m",
                "256",
                "--log-level=5"
            ]
        );
        assert_eq!(plan.mbuf_data_room, 4096 + 128);
        let workers: Vec<_> = plan.pics.iter().map(|p| p.workers.clone()).collect();
        assert_eq!(workers, [vec![WorkerId(0)], vec![WorkerId(1)]]);
        assert_eq!(plan.topology.service_sets.len(), 2);
    }

    #[test]
    fn reference_example_gives_routes_and_one_responder() {
        let plan = plan(&example("sg1-policy-shared.conf"), "px", &[]).unwrap();
        assert_eq!(plan.responders.len(), 1);
        let responder = &plan.responders[0];
        assert_eq!(
            responder.local_gateway,
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(responder.policy.allowed_proxy_pairs.len(), 2);
        assert!(plan
            .routes
            .iter()
            .any(|r| r.prefix.to_string() == "0.0.0.0/0"
                && matches!(r.kind, PlannedRouteKind::Gateway { port_index: 0, .. })));
        assert!(plan
            .routes
            .iter()
            .any(|r| r.prefix.to_string() == "172.16.1.0/24"
                && matches!(r.kind, PlannedRouteKind::Direct { port_index: 1 })));
    }

    #[test]
    fn per_address_key_is_explicit_and_the_global_key_stays() {
        let plan = plan(&example("sg1-per-peer-key.conf"), "px", &[]).unwrap();
        let psk = &plan.responders[0].policy.psk;
        let sg2: IpAddr = "10.2.2.2".parse().unwrap();
        let sg3: IpAddr = "10.3.3.3".parse().unwrap();
        assert_eq!(psk.lookup(sg2).unwrap().expose(), b"dyntun-sg2-own-key");
        assert_eq!(psk.lookup(sg3).unwrap().expose(), b"dyntun-demo-global-key");
    }

    #[test]
    fn certificate_example_loads_both_keys_and_the_trusted_ca() {
        // Relative PEM paths are taken from the working directory, which cargo sets to the
        // workspace root for this package's tests.
        let plan = plan(&example("sg1-certificates.conf"), "px", &[]).unwrap();
        let certs = plan.responders[0].policy.certificates.as_ref().unwrap();
        assert_eq!(
            certs.methods(),
            vec![ike::AuthMethod::RsaSignature, ike::AuthMethod::EcdsaP256]
        );
        assert_eq!(certs.trust.profiles()[0].name, "example-ca");
        assert_eq!(certs.remote_id, control::pki::RemoteIdRules::Any);
        assert!(certs.send_chain);
        let shown = format!("{certs:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
}
