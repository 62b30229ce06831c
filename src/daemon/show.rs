//! The answers of the operational socket, in the layout Junos prints (field names as Junos
//! names them) or as JSON with the same data. Keys are never part of any answer.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{json, Value};

use super::control_loop::ControlLoop;
use super::socket::Request;
use dataplane::pipeline::PipelineSnapshot;
use dataplane::prefix::Prefix;
use dataplane::sa::Direction;

pub fn answer(state: &mut ControlLoop, request: &Request) -> String {
    let words: Vec<&str> = request.words.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["show", "services", "ipsec-vpn", "ike", "security-associations", rest @ ..] => {
            ike_sas(state, rest.contains(&"detail"))
        }
        ["show", "services", "ipsec-vpn", "ipsec", "security-associations", rest @ ..] => {
            let service_set = rest
                .iter()
                .position(|w| *w == "service-set")
                .and_then(|i| rest.get(i + 1))
                .map(|s| s.to_string());
            ipsec_sas(state, rest.contains(&"detail"), service_set.as_deref())
        }
        ["show", "services", "ipsec-vpn", "ipsec", "statistics"] => ipsec_statistics(state),
        ["show", "route"] => routes(state, None),
        ["show", "route", "table", table] => routes(state, Some(table)),
        ["show", "interfaces", name] => interfaces(state, name),
        ["show", "dataplane", "statistics"] => dataplane_statistics(state),
        ["show", "metrics"] => return metrics(state),
        ["clear", "services", "ipsec-vpn", "ike", "security-associations", rest @ ..] => {
            clear_ike(state, rest.first().copied())
        }
        _ => return format!("error: unknown command: {}\n", request.words.join(" ")),
    };
    if request.json {
        let mut text = serde_json::to_string_pretty(&result.json).unwrap_or_default();
        text.push('\n');
        text
    } else {
        result.text
    }
}

struct Answer {
    text: String,
    json: Value,
}

fn ike_sas(state: &ControlLoop, detail: bool) -> Answer {
    let mut text = String::new();
    let mut rows = Vec::new();
    text.push_str("Remote Address  State     Initiator cookie  Responder cookie  Exchange type\n");
    for slot in &state.responders {
        for sa in slot.responder.ike_sas() {
            let initiator: String = sa.cookie_i.iter().map(|b| format!("{b:02x}")).collect();
            let responder: String = sa.cookie_r.iter().map(|b| format!("{b:02x}")).collect();
            let state_name = format!("{:?}", sa.state);
            let junos_state = if state_name == "Established" {
                "Matured"
            } else {
                "Not matured"
            };
            let _ = writeln!(
                text,
                "{:<16}{:<10}{:<18}{:<18}Main",
                sa.peer.remote.ip(),
                junos_state,
                initiator,
                responder,
            );
            if detail {
                let _ = writeln!(
                    text,
                    "  Local: {}, Remote: {}\n  Authentication method: {}, Encryption: {}, Hash: {}, DH group: {}\n  Lifetime: {} seconds, NAT traversal: {}, IPsec SAs: {}, Identity: {}",
                    sa.peer.local,
                    sa.peer.remote,
                    auth_method_name(sa.auth_method),
                    ike_cipher_name(sa.cipher),
                    ike_hash_name(sa.hash),
                    dh_group_name(sa.group),
                    sa.lifetime_seconds,
                    if sa.nat_traversal { "Enabled" } else { "Disabled" },
                    sa.children,
                    sa.identity.clone().unwrap_or_default()
                );
                // Names and validity only: certificates are public, keys are never shown.
                if let Some(c) = &sa.peer_certificate {
                    let _ = writeln!(
                        text,
                        "  Peer certificate: subject \"{}\", issuer \"{}\"\n    Validity: {} to {}",
                        c.subject, c.issuer, c.not_before, c.not_after
                    );
                }
                if let Some(c) = &sa.local_certificate {
                    let _ = writeln!(
                        text,
                        "  Local certificate: subject \"{}\", issuer \"{}\"",
                        c.subject, c.issuer
                    );
                }
                text.push('\n');
            }
            rows.push(json!({
                "access_profile": slot.access_profile,
                "remote_address": sa.peer.remote.ip().to_string(),
                "remote_port": sa.peer.remote.port(),
                "local_address": sa.peer.local.ip().to_string(),
                "local_port": sa.peer.local.port(),
                "state": junos_state,
                "exchange_type": "Main",
                "initiator_cookie": initiator,
                "responder_cookie": responder,
                "encryption": ike_cipher_name(sa.cipher),
                "hash": ike_hash_name(sa.hash),
                "dh_group": dh_group_name(sa.group),
                "lifetime_seconds": sa.lifetime_seconds,
                "nat_traversal": sa.nat_traversal,
                "ipsec_sas": sa.children,
                "identity": sa.identity,
                "authentication_method": auth_method_name(sa.auth_method),
                "peer_certificate": sa.peer_certificate,
                "local_certificate": sa.local_certificate,
            }));
        }
    }
    Answer {
        text,
        json: json!({ "ike_security_associations": rows }),
    }
}

/// Junos' names for the phase 1 authentication methods.
fn auth_method_name(method: control::ike::AuthMethod) -> &'static str {
    use control::ike::AuthMethod;
    match method {
        AuthMethod::PreSharedKey => "Pre-shared-keys",
        AuthMethod::RsaSignature => "RSA-signatures",
        AuthMethod::EcdsaP256 => "ECDSA-signatures-256",
        AuthMethod::EcdsaP384 => "ECDSA-signatures-384",
        AuthMethod::EcdsaP521 => "ECDSA-signatures-521",
    }
}

/// Junos' names for the negotiated IKE algorithms.
fn ike_cipher_name(cipher: control::ike::crypto::IkeCipher) -> String {
    use control::ike::crypto::IkeCipher;
    match cipher {
        IkeCipher::DesCbc => "des-cbc".into(),
        IkeCipher::TripleDesCbc => "3des-cbc".into(),
        IkeCipher::AesCbc { key_bits } => format!("aes-{key_bits}-cbc"),
    }
}

fn ike_hash_name(hash: control::ike::crypto::HashAlg) -> &'static str {
    use control::ike::crypto::HashAlg;
    match hash {
        HashAlg::Md5 => "md5",
        HashAlg::Sha1 => "sha1",
        HashAlg::Sha256 => "sha-256",
    }
}

fn dh_group_name(group: control::ike::dh::DhGroup) -> String {
    format!("group{}", group as u8)
}

fn identity_text(prefix: &Prefix) -> String {
    if prefix.is_ipv4() {
        format!("ipv4_subnet(any:0,[0..7]={prefix})")
    } else {
        format!("ipv6_subnet(any:0,[0..15]={prefix})")
    }
}

fn ipsec_sas(state: &ControlLoop, detail: bool, only_set: Option<&str>) -> Answer {
    let view = state.manager.lock().map(|m| m.view()).ok();
    let mut text = String::new();
    let mut tunnels_json = Vec::new();
    let Some(view) = view else {
        return Answer {
            text: "error: tunnel state unavailable\n".into(),
            json: json!({ "error": "tunnel state unavailable" }),
        };
    };
    let mut by_set: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for tunnel in &view.tunnels {
        if only_set.is_some_and(|s| s != tunnel.service_set) {
            continue;
        }
        by_set
            .entry(tunnel.service_set.as_str())
            .or_default()
            .push(tunnel);
    }
    let now = std::time::Instant::now();
    for (set, tunnels) in by_set {
        let _ = writeln!(text, "Service set: {set}, IKE Routing-instance: default\n");
        for tunnel in tunnels {
            let child = state.children.values().find(|c| c.tunnel == tunnel.id);
            let _ = writeln!(
                text,
                "  Rule: {}, Term: {}, Tunnel index: {}",
                tunnel.rule, tunnel.term, tunnel.id.0
            );
            let _ = writeln!(
                text,
                "  Local gateway: {}, Remote gateway: {}",
                tunnel.local_gateway,
                tunnel.peer.ip()
            );
            let _ = writeln!(
                text,
                "  IPSec inside interface: {}",
                tunnel.inside_interface
            );
            let _ = writeln!(
                text,
                "  Local identity: {}",
                identity_text(&tunnel.source_address)
            );
            let _ = writeln!(
                text,
                "  Remote identity: {}",
                identity_text(&tunnel.destination_address)
            );
            let mut sas = Vec::new();
            let directions = [
                ("inbound", Direction::Inbound, &tunnel.inbound_spis),
                ("outbound", Direction::Outbound, &tunnel.outbound_spis),
            ];
            for (direction, key, spis) in directions {
                for spi in spis.iter() {
                    let counters = state
                        .sa_counters
                        .lock()
                        .ok()
                        .and_then(|r| r.get(&(key, *spi)).map(|c| c.snapshot()));
                    let mut sa = json!({
                        "direction": direction,
                        "spi": spi,
                        "mode": "tunnel",
                        "type": "dynamic",
                        "state": "Installed",
                        "packets": counters.map(|c| c.packets),
                        "bytes": counters.map(|c| c.bytes),
                    });
                    let _ = writeln!(text, "\n    Direction: {direction}, SPI: {spi}, AUX-SPI: 0");
                    let _ = writeln!(text, "    Mode: tunnel, Type: dynamic, State: Installed");
                    if let Some(child) = child {
                        let protocol = if child.protocols.len() > 1 {
                            "AH+ESP".to_string()
                        } else {
                            format!("{:?}", child.protocols[0]).to_uppercase()
                        };
                        let age = now.duration_since(child.installed_at).as_secs();
                        let remaining = |limit: Option<u64>| {
                            limit.map_or("none".to_string(), |l| {
                                format!("Expires in {} seconds", l.saturating_sub(age))
                            })
                        };
                        let _ = writeln!(
                            text,
                            "    Protocol: {protocol}, Authentication: {}, Encryption: {}",
                            child.integrity.junos_name(),
                            child.cipher.junos_name()
                        );
                        if detail {
                            let _ = writeln!(
                                text,
                                "    Soft lifetime: {}",
                                remaining(child.lifetime.soft_seconds)
                            );
                            let _ = writeln!(
                                text,
                                "    Hard lifetime: {}",
                                remaining(child.lifetime.hard_seconds)
                            );
                            let _ = writeln!(
                                text,
                                "    Anti-replay service: {}, Replay window size: {}",
                                if child.replay_window > 0 {
                                    "Enabled"
                                } else {
                                    "Disabled"
                                },
                                child.replay_window
                            );
                            let _ = writeln!(
                                text,
                                "    NAT traversal: {}",
                                if child.nat_t {
                                    "Enabled (UDP 4500)"
                                } else {
                                    "Disabled"
                                }
                            );
                        }
                        sa["protocol"] = json!(protocol);
                        sa["authentication"] = json!(child.integrity.junos_name());
                        sa["encryption"] = json!(child.cipher.junos_name());
                        sa["soft_lifetime_seconds"] =
                            json!(child.lifetime.soft_seconds.map(|l| l.saturating_sub(age)));
                        sa["hard_lifetime_seconds"] =
                            json!(child.lifetime.hard_seconds.map(|l| l.saturating_sub(age)));
                        sa["anti_replay"] = json!(child.replay_window > 0);
                        sa["replay_window_size"] = json!(child.replay_window);
                        sa["nat_traversal"] = json!(child.nat_t);
                    }
                    sas.push(sa);
                }
            }
            let _ = writeln!(text);
            tunnels_json.push(json!({
                "service_set": tunnel.service_set,
                "rule": tunnel.rule,
                "term": tunnel.term,
                "tunnel_index": tunnel.id.0,
                "pic": tunnel.pic,
                "worker": tunnel.worker.0,
                "local_gateway": tunnel.local_gateway.to_string(),
                "remote_gateway": tunnel.peer.ip().to_string(),
                "remote_port": tunnel.peer.port(),
                "ipsec_inside_interface": tunnel.inside_interface,
                "type": tunnel.rule_type,
                "match_direction": tunnel.match_direction,
                "local_identity": tunnel.source_address.to_string(),
                "remote_identity": tunnel.destination_address.to_string(),
                "reverse_route": tunnel.reverse_route.as_ref().map(|r| json!({
                    "table": r.table, "prefix": r.prefix.to_string()
                })),
                "security_associations": sas,
            }));
        }
    }
    let mut static_json = Vec::new();
    for tunnel in state
        .static_tunnels
        .iter()
        .filter(|t| only_set.is_none_or(|s| s == t.service_set))
    {
        let child = &tunnel.summary;
        let _ = writeln!(
            text,
            "Service set: {}, IKE Routing-instance: default\n",
            tunnel.service_set
        );
        let _ = writeln!(
            text,
            "  Rule: {}, Term: {}, Tunnel index: {}\n  Local gateway: {}, Remote gateway: {}",
            tunnel.rule, tunnel.term, tunnel.tunnel.0, tunnel.local_gateway, tunnel.remote_gateway
        );
        let mut sas = Vec::new();
        let directions = [
            ("inbound", &child.inbound_spis),
            ("outbound", &tunnel.outbound_spis),
        ];
        for (direction, spis) in directions {
            for spi in spis.iter() {
                let _ = writeln!(
                    text,
                    "\n    Direction: {direction}, SPI: {spi}, AUX-SPI: 0\n    Mode: tunnel, Type: manual, State: Installed\n    Protocol: {}, Authentication: {}, Encryption: {}",
                    format!("{:?}", child.protocols[0]).to_uppercase(),
                    child.integrity.junos_name(),
                    child.cipher.junos_name()
                );
                sas.push(json!({
                    "direction": direction, "spi": spi, "type": "manual",
                    "protocol": format!("{:?}", child.protocols[0]).to_uppercase(),
                    "authentication": child.integrity.junos_name(),
                    "encryption": child.cipher.junos_name(),
                }));
            }
        }
        let _ = writeln!(text);
        static_json.push(json!({
            "service_set": tunnel.service_set, "rule": tunnel.rule, "term": tunnel.term,
            "tunnel_index": tunnel.tunnel.0, "type": "manual",
            "local_gateway": tunnel.local_gateway.to_string(),
            "remote_gateway": tunnel.remote_gateway.to_string(),
            "source_addresses": tunnel.sources.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "destination_addresses": tunnel.destinations.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "security_associations": sas,
        }));
    }
    if tunnels_json.is_empty() && static_json.is_empty() {
        text.push_str("No IPsec security associations\n");
    }
    Answer {
        text,
        json: json!({ "tunnels": tunnels_json, "static_tunnels": static_json }),
    }
}

fn ipsec_statistics(state: &ControlLoop) -> Answer {
    let mut text = String::new();
    let mut rows = Vec::new();
    let registry = state.sa_counters.lock().map(|r| {
        let mut all: Vec<_> = r.iter().map(|(key, c)| (*key, c.snapshot())).collect();
        all.sort_by_key(|((direction, spi), _)| (*spi, *direction == Direction::Outbound));
        all
    });
    for ((direction, spi), c) in registry.unwrap_or_default() {
        let direction = if direction == Direction::Inbound {
            "inbound"
        } else {
            "outbound"
        };
        let _ = writeln!(
            text,
            "SPI: {spi}, Direction: {direction}\n  Packets: {}, Bytes: {}\n  Authentication failures: {}, Replay errors: {}, Bad padding: {}, Bad headers: {}, Other drops: {}\n",
            c.packets, c.bytes, c.auth_failures, c.replays, c.bad_padding, c.bad_header, c.other_drops
        );
        rows.push(json!({
            "spi": spi, "direction": direction, "packets": c.packets, "bytes": c.bytes, "auth_failures": c.auth_failures,
            "replays": c.replays, "bad_padding": c.bad_padding, "bad_header": c.bad_header,
            "other_drops": c.other_drops,
        }));
    }
    if rows.is_empty() {
        text.push_str("No IPsec security associations\n");
    }
    Answer {
        text,
        json: json!({ "security_associations": rows }),
    }
}

fn routes(state: &ControlLoop, only: Option<&str>) -> Answer {
    let view = state.manager.lock().map(|m| m.view()).ok();
    let mut text = String::new();
    let mut tables = Vec::new();
    for table in view.map(|v| v.route_tables).unwrap_or_default() {
        if only.is_some_and(|t| t != table.table) {
            continue;
        }
        let active = table.routes.iter().filter(|r| r.active).count();
        let _ = writeln!(
            text,
            "\n{}: {} destinations, {} routes ({} active, 0 holddown, 0 hidden)\n+ = Active Route, - = Last Active, * = Both\n",
            table.table,
            active,
            table.routes.len(),
            active
        );
        let mut routes = Vec::new();
        for route in &table.routes {
            let next_hop = junos_next_hop(state, &route.next_hop);
            let mark = if route.active { "*" } else { " " };
            let _ = writeln!(
                text,
                "{:<19}{}[{}/{}]",
                route.prefix.to_string(),
                mark,
                route.protocol,
                route.preference,
            );
            let _ = writeln!(text, "                    > {next_hop}");
            routes.push(json!({
                "prefix": route.prefix.to_string(),
                "protocol": route.protocol,
                "preference": route.preference,
                "next_hop": next_hop,
                "active": route.active,
            }));
        }
        tables.push(json!({ "table": table.table, "routes": routes }));
    }
    Answer {
        text,
        json: json!({ "route_tables": tables }),
    }
}

/// The manager names ports by number; Junos names the interface unit (`ge-0/0/0.0`), and a
/// directly connected route has no gateway.
fn junos_next_hop(state: &ControlLoop, text: &str) -> String {
    let mut out = text.to_string();
    for port in &state.ports {
        let by_number = format!("via port {}", port.id.0);
        if out.ends_with(&by_number) {
            out = format!(
                "{}via {}.0",
                &out[..out.len() - by_number.len()],
                port.interface
            );
        }
    }
    out.replace("to 0.0.0.0 via", "via")
        .replace("to :: via", "via")
}

fn interfaces(state: &ControlLoop, name: &str) -> Answer {
    let view = state.manager.lock().map(|m| m.view()).ok();
    let mut text = String::new();
    let mut units = Vec::new();
    for pool in view.map(|v| v.pools).unwrap_or_default() {
        for unit in &pool.units {
            if !unit.name.starts_with(name) {
                continue;
            }
            let holders: Vec<u32> = unit.holders.iter().map(|t| t.0).collect();
            let _ = writeln!(
                text,
                "  Logical interface {} (ipsec-interface-id {}, {:?})\n    Tunnels: {}",
                unit.name,
                pool.id,
                pool.mode,
                if holders.is_empty() {
                    "none".to_string()
                } else {
                    holders
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            units.push(json!({
                "name": unit.name, "pool": pool.id, "mode": format!("{:?}", pool.mode).to_lowercase(),
                "tunnels": holders,
            }));
        }
    }
    if units.is_empty() {
        let _ = writeln!(text, "error: no pool unit on {name}");
    }
    Answer {
        text,
        json: json!({ "units": units }),
    }
}

fn worker_rows(state: &ControlLoop) -> Vec<(String, u16, u32, PipelineSnapshot)> {
    state
        .workers
        .iter()
        .map(|w| (w.pic.clone(), w.worker.0, w.core, w.counters.snapshot()))
        .collect()
}

fn dataplane_statistics(state: &ControlLoop) -> Answer {
    let mut text = String::new();
    let mut rows = Vec::new();
    let uptime = state.started.elapsed().as_secs_f64().max(1e-3);
    for (pic, worker, core, snapshot) in worker_rows(state) {
        let _ = writeln!(text, "PIC {pic}, worker {worker} (core {core}):");
        for (name, value) in snapshot.fields() {
            if value > 0 || !name.starts_with("drop_") {
                let _ = writeln!(text, "  {name:<22} {value}");
            }
        }
        let _ = writeln!(
            text,
            "  rx_rate                {:.1} pps (average)",
            snapshot.rx_packets as f64 / uptime
        );
        let tables = state
            .table_counters
            .get(&worker)
            .copied()
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  tables: no_route {}, no_rule {}, no_sa {}, rule_discard {}, handoff_ring_full {}, updates_applied {}",
            tables.no_route, tables.no_rule, tables.no_sa, tables.rule_discard, tables.handoff_ring_full, tables.updates_applied
        );
        rows.push(json!({
            "pic": pic, "worker": worker, "core": core, "counters": snapshot, "tables": tables,
        }));
    }
    let _ = writeln!(
        text,
        "Control: punted {}, IKE in {}, IKE out {}, tunnels refused {}, neighbors {}",
        state.punted,
        state.ike_in,
        state.ike_out,
        state.refused_tunnels,
        state.neighbors.entries().len()
    );
    let ike_drops: Vec<Value> = state
        .responders
        .iter()
        .map(
            |s| json!({ "access_profile": s.access_profile, "drops": s.responder.drop_counters() }),
        )
        .collect();
    Answer {
        text,
        json: json!({
            "workers": rows,
            "control": {
                "punted": state.punted, "ike_in": state.ike_in, "ike_out": state.ike_out,
                "tunnels_refused": state.refused_tunnels, "ike_drops": ike_drops,
                "neighbors": state.neighbors.entries().iter().map(|(port, address, mac)| json!({
                    "port": port.0,
                    "address": address.to_string(),
                    "mac": mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
                })).collect::<Vec<_>>(),
                "neighbors_tracked_for_aging": state.aging_tracked(),
            },
        }),
    }
}

/// Prometheus text exposition of the same counters.
fn metrics(state: &ControlLoop) -> String {
    let mut out = String::new();
    for (pic, worker, _, snapshot) in worker_rows(state) {
        for (name, value) in snapshot.fields() {
            let _ = writeln!(
                out,
                "dyntun_worker_{name}{{pic=\"{pic}\",worker=\"{worker}\"}} {value}"
            );
        }
    }
    let tunnels = state.manager.lock().map(|m| m.tunnel_count()).unwrap_or(0);
    let _ = writeln!(out, "dyntun_tunnels {tunnels}");
    let _ = writeln!(out, "dyntun_ike_packets_in {}", state.ike_in);
    let _ = writeln!(out, "dyntun_ike_packets_out {}", state.ike_out);
    let _ = writeln!(out, "dyntun_tunnels_refused {}", state.refused_tunnels);
    out
}

fn clear_ike(state: &mut ControlLoop, address: Option<&str>) -> Answer {
    let peer = match address.map(str::parse::<IpAddr>) {
        None => None,
        Some(Ok(peer)) => Some(peer),
        Some(Err(_)) => {
            let text = format!(
                "error: {} is not an IP address\n",
                address.unwrap_or_default()
            );
            return Answer {
                json: json!({ "error": text.trim() }),
                text,
            };
        }
    };
    let cleared = state.clear_peers(peer);
    Answer {
        text: format!("Cleared {cleared} IKE security associations (deletes sent to the peers)\n"),
        json: json!({ "cleared_ike_security_associations": cleared }),
    }
}
