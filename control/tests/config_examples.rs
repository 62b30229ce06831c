//! Every configuration in `examples/` passes the commit checks, yields the model the rest of
//! dyntun relies on, and survives a display round trip in both forms.

use std::net::IpAddr;
use std::path::PathBuf;

use control::config::{
    self, Config, DisplayFormat, Document, NextHop, PoolMode, PskSource, ServiceSetKind, UnitName,
};
use dataplane::prefix::Prefix;
use dataplane::sa::{Cipher, DfMode, Direction, Integrity, IpsecProtocol};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn load(name: &str) -> Config {
    let text = std::fs::read_to_string(examples_dir().join(name)).unwrap();
    match config::parse(&text) {
        Ok(c) => c,
        Err(e) => panic!("{name}:\n{}", e.render(name)),
    }
}

fn prefix(text: &str) -> Prefix {
    text.parse().unwrap()
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The model's debug form without positions, which legitimately move when text is reformatted.
fn model_without_origins(config: &Config) -> String {
    let shown = format!("{config:#?}");
    let mut out = String::with_capacity(shown.len());
    let mut rest = shown.as_str();
    while let Some(start) = rest.find("Origin {") {
        out.push_str(&rest[..start]);
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_example_passes_and_round_trips_through_both_display_forms() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        seen += 1;
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = config::check(&text);
        let original = match &checked.result {
            Ok(c) => c,
            Err(e) => panic!("{}", e.render(&name)),
        };
        let curly = checked.document.display(DisplayFormat::Curly);
        let set = checked.document.display(DisplayFormat::Set);
        assert!(set.lines().all(|l| l.starts_with("set ")), "{name}");
        for shown in [&curly, &set] {
            let again = config::check(shown);
            let model = again
                .result
                .unwrap_or_else(|e| panic!("{name}: {}", e.render("display")));
            assert_eq!(
                model_without_origins(&model),
                model_without_origins(original),
                "{name}"
            );
            assert_eq!(
                again.document.display(DisplayFormat::Curly),
                curly,
                "{name}"
            );
            for (a, b) in model
                .access_profiles
                .values()
                .zip(original.access_profiles.values())
            {
                assert_eq!(
                    a.pre_shared_key.as_ref().map(|k| k.bytes().to_vec()),
                    b.pre_shared_key.as_ref().map(|k| k.bytes().to_vec())
                );
            }
        }
    }
    assert!(seen >= 5, "only {seen} examples");
}

#[test]
fn sg1_policy_based_model() {
    let c = load("sg1-policy-shared.conf");
    let views: Vec<_> = c.service_sets().collect();
    assert_eq!(views.len(), 1);
    let v = &views[0];
    assert_eq!(v.set.name, "demo-service-set");
    assert_eq!(
        v.set.kind,
        ServiceSetKind::NextHop {
            inside: UnitName::new("sp-1/2/0", 1),
            outside: UnitName::new("sp-1/2/0", 2)
        }
    );
    assert_eq!(v.set.local_gateway, Some(addr("10.1.1.1")));
    assert_eq!(v.set.anti_replay_window, 64);
    assert_eq!(v.set.df_mode, DfMode::Copy);
    let profile = v.access_profile.unwrap();
    assert_eq!(
        profile.allowed_proxy_pairs,
        [
            (prefix("172.16.2.0/24"), prefix("172.16.1.0/24")),
            (prefix("172.16.3.0/24"), prefix("172.16.1.0/24"))
        ]
    );
    assert_eq!(
        profile.pre_shared_key.as_ref().unwrap().bytes(),
        b"dyntun-demo-global-key"
    );
    let pool = v.pool.unwrap();
    assert_eq!(pool.mode, PoolMode::Shared);
    assert_eq!(pool.units, [UnitName::new("sp-1/2/0", 1)]);
    assert_eq!(v.reverse_route_table.as_deref(), Some("inet.0"));
    let routes: Vec<_> = c.static_routes_in("inet.0").collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].prefix, Prefix::any_v4());
    assert_eq!(routes[0].next_hop, NextHop::Address(addr("10.1.1.254")));
    let dp = &c.dataplane;
    assert_eq!(
        dp.devices.get("ge-0/0/0"),
        Some(&config::Device::Virtual(
            "net_af_packet0,iface=sg1-out".into()
        ))
    );
    assert_eq!(dp.pics.get("sp-1/2/0"), Some(&vec![1]));
    assert_eq!(dp.eal_options, ["--no-huge", "-m", "256"]);
    assert_eq!(dp.control_core, Some(0));
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("dyntun-demo-global-key"),
        "a key leaked into Debug"
    );
}

#[test]
fn default_proxy_pair_and_dedicated_pool() {
    let c = load("sg1-link-dedicated.conf");
    let v = c.service_set("link-service-set").unwrap();
    let profile = v.access_profile.unwrap();
    assert_eq!(
        profile.allowed_proxy_pairs,
        [(Prefix::any_v4(), Prefix::any_v4())]
    );
    assert_eq!(
        profile.pre_shared_key.as_ref().unwrap().bytes(),
        b"dyrun-link-key"
    );
    let pool = v.pool.unwrap();
    assert_eq!(pool.mode, PoolMode::Dedicated);
    assert_eq!(pool.units.len(), 4);
    assert_eq!(v.set.anti_replay_window, 128);
    assert_eq!(v.set.df_mode, DfMode::Clear);
    assert_eq!(v.set.tunnel_mtu, Some(1400));
}

#[test]
fn vrf_variant_puts_reverse_routes_in_the_vrf() {
    let c = load("sg1-vrf.set");
    let v = c.service_set("vrf-service-set").unwrap();
    assert_eq!(v.reverse_route_table.as_deref(), Some("vrf-lan.inet.0"));
    assert_eq!(
        c.routing_instance_of(&UnitName::new("ge-0/0/1", 0)),
        Some("vrf-lan")
    );
    assert_eq!(c.routing_instance_of(&UnitName::new("ge-0/0/0", 0)), None);
    assert_eq!(
        c.route_table_of(&UnitName::new("ge-0/0/0", 0), true),
        "inet.0"
    );
}

#[test]
fn two_pics_share_one_profile() {
    let c = load("sg1-two-pics.conf");
    let views: Vec<_> = c.service_sets().collect();
    assert_eq!(views.len(), 2);
    assert!(views
        .iter()
        .all(|v| v.access_profile.unwrap().name == "spread-profile"));
    assert_eq!(views[0].pool.unwrap().units.len(), 2);
    assert_eq!(c.dataplane.pics.len(), 2);
}

#[test]
fn ams_service_set() {
    let c = load("sg1-ams.conf");
    assert_eq!(c.interfaces["ams0"].members, ["mams-1/0/0", "mams-1/1/0"]);
    let v = c.service_sets().next().unwrap();
    assert!(
        matches!(&v.set.kind, ServiceSetKind::NextHop { inside, .. } if inside.interface == "ams0")
    );
}

#[test]
fn per_address_key_wins_over_the_global_key() {
    let c = load("sg1-per-peer-key.conf");
    let (key, source) = c
        .psk_for_peer("demo-service-set", addr("10.2.2.2"))
        .unwrap();
    assert_eq!(key.bytes(), b"dyntun-sg2-own-key");
    assert!(
        matches!(source, PskSource::PerAddress { ref ike_policy, .. } if ike_policy == "sg2-ike")
    );
    let (key, source) = c
        .psk_for_peer("demo-service-set", addr("10.3.3.3"))
        .unwrap();
    assert_eq!(key.bytes(), b"dyntun-demo-global-key");
    assert_eq!(
        source,
        PskSource::AccessProfile {
            profile: "demo-access-profile".into()
        }
    );
    assert!(c.psk_for_peer("no-such-set", addr("10.3.3.3")).is_none());
    let proposal = &c.ike_proposals["sg2-ike-proposal"];
    assert_eq!(proposal.cipher, Some(Cipher::AesCbc256));
    let esp = &c.ipsec_proposals["sg2-esp"];
    assert_eq!(esp.integrity, Some(Integrity::HmacSha256_128));
    assert_eq!(esp.lifetime.hard_seconds, Some(28800));
    assert_eq!(c.ipsec_policies["sg2-ipsec"].pfs, Some(config::DhGroup(14)));
    // Without the per-address rule every peer gets the global key.
    let plain = load("sg1-policy-shared.conf");
    let (key, _) = plain
        .psk_for_peer("demo-service-set", addr("10.2.2.2"))
        .unwrap();
    assert_eq!(key.bytes(), b"dyntun-demo-global-key");
}

#[test]
fn manual_sas_become_sa_specs() {
    let c = load("sg1-manual.conf");
    let set = &c.service_sets["manual-service-set"];
    let term = &c.rules["to-sg2"].terms[0];
    let config::TermAction::Manual(sas) = &term.action else {
        panic!("not manual");
    };
    let specs = sas[0].sa_specs(addr("10.1.1.1"), term.remote_gateway.unwrap(), set);
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].direction, Direction::Inbound);
    assert_eq!(specs[1].direction, Direction::Outbound);
    for s in &specs {
        assert_eq!(s.spi, 16000);
        assert_eq!(s.protocol, IpsecProtocol::Esp);
        assert_eq!(s.cipher, Cipher::AesCbc128);
        assert_eq!(s.integrity, Integrity::HmacSha1_96);
        assert_eq!(s.keys.encryption[..2], [0x00, 0x11]);
        assert_eq!(s.keys.integrity, b"dyntun-sg2-auth-key!");
        assert_eq!(s.remote, addr("10.2.2.2"));
        assert_eq!(s.replay_window, 64);
    }
    let to_pic = c
        .static_routes_in("inet.0")
        .find(|r| r.prefix == prefix("172.16.2.0/24"));
    assert_eq!(
        to_pic.map(|r| &r.next_hop),
        Some(&NextHop::Interface(UnitName::new("sp-1/2/0", 1)))
    );
}

#[test]
fn ipv6_pairs_only_when_written() {
    let text = std::fs::read_to_string(examples_dir().join("sg1-link-dedicated.conf")).unwrap();
    let with_v6 = text.replace(
        "pre-shared-key hexadecimal",
        "allowed-proxy-pair { remote ::/0 local 2001:db8:1::/48; }\n pre-shared-key hexadecimal",
    );
    let c = config::parse(&with_v6).unwrap_or_else(|e| panic!("{e}"));
    let pairs = &c.access_profiles["link-profile"].allowed_proxy_pairs;
    assert_eq!(pairs, &[(Prefix::any_v6(), prefix("2001:db8:1::/48"))]);
}

#[test]
fn inactive_statements_are_ignored() {
    let text = std::fs::read_to_string(examples_dir().join("sg1-policy-shared.conf")).unwrap();
    let with_inactive = text.replace(
        "routing-options {",
        "inactive: routing-options { frobnicate; }\nrouting-options {",
    );
    let (doc, errors) = Document::parse(&with_inactive);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(config::parse(&with_inactive).is_ok());
    assert!(!doc.display(DisplayFormat::Curly).contains("frobnicate"));
}

#[test]
fn a_profile_with_an_ike_policy_takes_the_policy_key() {
    let text = std::fs::read_to_string(examples_dir().join("sg1-per-peer-key.conf")).unwrap();
    let edited = text.replace(
        "pre-shared-key ascii-text \"dyntun-demo-global-key\"; ## SECRET-DATA",
        "ike-policy sg2-ike;",
    );
    assert_ne!(edited, text);
    let c = config::parse(&edited).unwrap_or_else(|e| panic!("{e}"));
    let (key, source) = c
        .psk_for_peer("demo-service-set", addr("10.3.3.3"))
        .unwrap();
    assert_eq!(key.bytes(), b"dyntun-sg2-own-key");
    assert_eq!(
        source,
        PskSource::AccessProfile {
            profile: "demo-access-profile".into()
        }
    );
    let view = c.service_set("demo-service-set").unwrap();
    assert_eq!(view.ike_policy.map(|p| p.name.as_str()), Some("sg2-ike"));
}

#[test]
fn dataplane_block_is_modelled() {
    let c = load("sg1-two-pics.conf");
    assert_eq!(c.dataplane.pics.len(), 2);
    assert_eq!(
        c.dataplane.devices["ge-0/0/1"].dpdk_name(),
        "net_af_packet1"
    );
    assert_eq!(c.dataplane.idle_backoff_us, Some(20));
}
