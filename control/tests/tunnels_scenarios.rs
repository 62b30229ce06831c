//! Scenarios from the Junos reference text for dynamic-endpoint tunnels, driven through the
//! tunnel manager and checked both in the operational view and in the workers' tables.

#[path = "tunnels_support.rs"]
mod support;

use control::tunnels::{
    PicId, PoolError, SaDown, ServicesInterface, TunnelRefusal, TunnelTopology,
};
use dataplane::sa::Direction;
use dataplane::tables::{
    InboundLookup, NextHop, OutboundVerdict, PortId, Route, RouteOrigin, StaticRule, StaticTerm,
    TermAction, VrfId, WorkerEvent, WorkerId,
};
use support::*;

const LAN: &str = "172.16.1.0/24";

fn add_lan_routes(gateway: &mut Gateway, vrf: Option<&str>) {
    gateway
        .manager
        .add_route(
            vrf,
            Route::new(
                p(LAN),
                RouteOrigin::Direct,
                NextHop::Neighbor {
                    port: PortId(1),
                    gateway: a("172.16.1.1"),
                },
            ),
        )
        .unwrap();
    gateway.pump();
}

/// Outbound SPI chosen for a packet from `source` to `destination`, or a description of why not.
fn encrypts_with(
    gateway: &mut Gateway,
    worker: u16,
    vrf: VrfId,
    source: &str,
    destination: &str,
) -> Result<u32, String> {
    match gateway
        .worker(worker)
        .classify_outbound(vrf, a(source), a(destination))
    {
        OutboundVerdict::Encrypt { sas, .. } => Ok(sas[0].spi),
        OutboundVerdict::HandOff { owner, .. } => Err(format!("hand-off to {owner:?}")),
        OutboundVerdict::Forward(next_hop) => Err(format!("forward {next_hop:?}")),
        OutboundVerdict::Bypass(unit) => Err(format!("bypass {unit:?}")),
        OutboundVerdict::Drop => Err("drop".to_string()),
    }
}

#[test]
fn two_dynamic_peers_get_rules_and_reverse_routes_in_inet0() {
    let mut gw = Gateway::new(single_pic(None, 4));
    add_lan_routes(&mut gw, None);
    let (t2, in2, out2) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    let (t3, in3, out3) = gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    assert_ne!(t2, t3);

    let view = gw.manager.view();
    assert_eq!(view.tunnels.len(), 2);
    let first = &view.tunnels[0];
    assert_eq!(first.peer.ip(), a("10.2.2.2"));
    assert_eq!(first.pic, "ms-1/0/0");
    assert_eq!(first.inside_interface, "ms-1/0/0.10");
    assert_eq!(
        (first.rule_type, first.match_direction),
        ("dynamic", "input")
    );
    assert_eq!(first.source_address, p(LAN));
    assert_eq!(first.destination_address, p("172.16.2.0/24"));
    assert!(first.rule.starts_with("junos-dynamic-rule-"));
    assert_eq!(view.tunnels[1].inside_interface, "ms-1/0/0.11");
    assert_ne!(first.rule, view.tunnels[1].rule);

    let inet0 = view.table("inet.0").expect("inet.0 listed");
    let reverse: Vec<_> = inet0
        .routes
        .iter()
        .filter(|r| r.protocol == "Static" && r.preference == 1)
        .map(|r| (r.prefix.to_string(), r.next_hop.clone(), r.active))
        .collect();
    assert_eq!(
        reverse,
        vec![
            (
                "172.16.2.0/24".to_string(),
                "via ms-1/0/0.10".to_string(),
                true
            ),
            (
                "172.16.3.0/24".to_string(),
                "via ms-1/0/0.11".to_string(),
                true
            ),
        ]
    );
    assert!(inet0
        .routes
        .iter()
        .any(|r| r.protocol == "Direct" && r.prefix == p(LAN)));

    // The worker steers LAN traffic by route → dynamic rule → the tunnel's outbound SA.
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.2.9"),
        Ok(out2)
    );
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.3.9"),
        Ok(out3)
    );
    // Outside the local proxy: the route matches but no rule does.
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "192.168.9.9", "172.16.2.9"),
        Err("drop".to_string())
    );
    assert_eq!(gw.worker(0).counters.no_rule, 1);
    for (spi, tunnel) in [(in2, t2), (in3, t3)] {
        match gw.worker(0).inbound(spi) {
            InboundLookup::Owned(entry) => assert_eq!(entry.tunnel, tunnel),
            _ => panic!("inbound SA {spi:#x} not on its worker"),
        }
    }
    let json = serde_json::to_string(&view).unwrap();
    assert!(json.contains("junos-dynamic-rule-") && json.contains("172.16.3.0/24"));
}

#[test]
fn reverse_routes_go_into_the_vrf_of_the_inside_interface() {
    let mut gw = Gateway::new(single_pic(Some("VPN-A"), 2));
    add_lan_routes(&mut gw, Some("VPN-A"));
    let (_, _, out2) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    let view = gw.manager.view();
    assert!(view.table("inet.0").is_none(), "nothing belongs in inet.0");
    let vrf_table = view.table("VPN-A.inet.0").expect("VRF table listed");
    assert!(vrf_table
        .routes
        .iter()
        .any(|r| r.prefix == p("172.16.2.0/24") && r.preference == 1 && r.protocol == "Static"));
    assert_eq!(
        view.tunnels[0]
            .reverse_route
            .as_ref()
            .map(|r| r.table.as_str()),
        Some("VPN-A.inet.0")
    );
    let vpn = gw.manager.vrf_id(Some("VPN-A")).unwrap();
    assert_eq!(
        encrypts_with(&mut gw, 0, vpn, "172.16.1.5", "172.16.2.9"),
        Ok(out2)
    );
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.2.9"),
        Err("drop".to_string())
    );
    assert_eq!(gw.worker(0).counters.no_route, 1);
}

#[test]
fn static_rules_are_matched_before_dynamic_ones() {
    let mut gw = Gateway::new(single_pic(None, 2));
    let (_, _, out2) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    assert!(gw.manager.set_static_rules(
        "dyn-sset",
        vec![StaticRule {
            name: "static-first".into(),
            terms: vec![StaticTerm {
                name: "block-host".into(),
                inside_unit: None,
                sources: vec![],
                destinations: vec![p("172.16.2.66/32")],
                action: TermAction::Discard,
            }],
        }]
    ));
    gw.pump();
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.2.66"),
        Err("drop".to_string())
    );
    assert_eq!(gw.worker(0).counters.rule_discard, 1);
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.2.67"),
        Ok(out2)
    );
    assert!(!gw.manager.set_static_rules("no-such-set", vec![]));
}

#[test]
fn an_any_any_proxy_gets_no_route_but_a_static_route_steers_into_its_unit() {
    let mut gw = Gateway::new(single_pic(None, 2));
    let (_, _, out) = gw.quick_mode("10.2.2.2", "0.0.0.0/0", "0.0.0.0/0").unwrap();
    let view = gw.manager.view();
    assert!(view.tunnels[0].reverse_route.is_none());
    assert!(
        view.route_tables.is_empty(),
        "no route for 0.0.0.0/0: {:?}",
        view.route_tables
    );
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "8.8.8.8"),
        Err("drop".to_string()),
        "without a route nothing enters the tunnel"
    );
    // Link-type use: the operator routes what should be protected into the tunnel's unit.
    let unit = gw
        .manager
        .unit_id(&view.tunnels[0].inside_interface)
        .unwrap();
    let steer = Route::new(
        p("0.0.0.0/0"),
        RouteOrigin::Static,
        NextHop::ServicesUnit(unit),
    );
    gw.manager.add_route(None, steer).unwrap();
    gw.pump();
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "8.8.8.8"),
        Ok(out)
    );
    assert!(gw.manager.remove_route(None, steer));
    gw.pump();
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "8.8.8.8"),
        Err("drop".to_string())
    );
}

#[test]
fn a_dedicated_pool_of_two_refuses_the_third_tunnel_until_one_goes_down() {
    let mut gw = Gateway::new(single_pic(None, 2));
    let (_, first_spi, _) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    let refused = gw.quick_mode("10.4.4.4", LAN, "172.16.4.0/24");
    assert!(
        matches!(
            refused,
            Err(TunnelRefusal::Pool(PoolError::Exhausted { .. }))
        ),
        "{refused:?}"
    );
    // Refused means nothing: no route, no rule, no SA, no SPI, no placement hold.
    let view = gw.manager.view();
    assert_eq!(view.tunnels.len(), 2);
    assert!(!view
        .route_tables
        .iter()
        .flat_map(|t| t.routes.iter())
        .any(|r| r.prefix == p("172.16.4.0/24")));
    assert_eq!(gw.manager.allocated_spi_count(), 2);
    assert_eq!(gw.manager.reserved_spi_count(), 0);
    assert_eq!(gw.manager.placed_peer_count(), 2);
    assert_eq!(gw.worker(0).rules.dynamic_count(), 2);
    assert_eq!(gw.worker(0).sas.inbound_count(), 2);

    assert_eq!(
        gw.manager.child_sa_down(first_spi),
        SaDown::TunnelRemoved(dataplane::tables::TunnelId(0))
    );
    gw.pump();
    let (_, _, out4) = gw.quick_mode("10.4.4.4", LAN, "172.16.4.0/24").unwrap();
    let view = gw.manager.view();
    let third = view
        .tunnels
        .iter()
        .find(|t| t.peer.ip() == a("10.4.4.4"))
        .unwrap();
    assert_eq!(
        third.inside_interface, "ms-1/0/0.10",
        "the freed unit is reused"
    );
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.4.1"),
        Ok(out4)
    );
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "172.16.1.5", "172.16.2.1"),
        Err("drop".to_string()),
        "the removed tunnel's route is gone"
    );
}

fn two_pics() -> TunnelTopology {
    let mut units = dedicated_units("ms-1/0/0", 10..20);
    units.extend(dedicated_units("ms-2/0/0", 10..20));
    TunnelTopology {
        pics: vec![pic(0, "ms-1/0/0", &[0]), pic(1, "ms-2/0/0", &[1])],
        service_sets: vec![
            service_set("sset-pic0", 0, "ms-1/0/0", None),
            service_set("sset-pic1", 1, "ms-2/0/0", None),
        ],
        pools: vec![pool(units)],
    }
}

#[test]
fn two_pics_share_the_load_and_each_owns_its_sas() {
    let mut gw = Gateway::new(two_pics());
    let mut tunnels = Vec::new();
    for n in 2..6 {
        let peer = format!("10.{n}.{n}.{n}");
        let remote = format!("172.16.{n}.0/24");
        let (_, inbound, outbound) = gw.quick_mode(&peer, LAN, &remote).unwrap();
        tunnels.push((n, inbound, outbound));
    }
    assert_eq!(gw.manager.pic_load(PicId(0)), 2);
    assert_eq!(gw.manager.pic_load(PicId(1)), 2);
    let view = gw.manager.view();
    for (n, inbound, outbound) in &tunnels {
        let tunnel = view
            .tunnels
            .iter()
            .find(|t| t.inbound_spis == vec![*inbound])
            .unwrap();
        let owner = tunnel.worker;
        let other = WorkerId(1 - owner.0);
        assert_eq!(
            tunnel.pic,
            if owner.0 == 0 { "ms-1/0/0" } else { "ms-2/0/0" }
        );
        assert!(tunnel.inside_interface.starts_with(&tunnel.pic));
        let destination = format!("172.16.{n}.9");
        assert_eq!(
            encrypts_with(&mut gw, owner.0, VrfId::DEFAULT, "172.16.1.5", &destination),
            Ok(*outbound)
        );
        assert_eq!(
            encrypts_with(&mut gw, other.0, VrfId::DEFAULT, "172.16.1.5", &destination),
            Err(format!("hand-off to {owner:?}"))
        );
        assert!(matches!(
            gw.worker(owner.0).inbound(*inbound),
            InboundLookup::Owned(_)
        ));
        assert!(matches!(
            gw.worker(other.0).inbound(*inbound),
            InboundLookup::HandOff(w) if w == owner
        ));
        assert_eq!(
            gw.worker(other.0).sas.inbound_count(),
            2,
            "only its own two tunnels"
        );
    }
    // A second proxy pair from an existing peer stays on that peer's PIC, whatever the load.
    let first_pic = view
        .tunnels
        .iter()
        .find(|t| t.peer.ip() == a("10.2.2.2"))
        .unwrap()
        .pic
        .clone();
    gw.quick_mode("10.2.2.2", LAN, "172.16.102.0/24").unwrap();
    gw.quick_mode("10.2.2.2", LAN, "172.16.103.0/24").unwrap();
    let view = gw.manager.view();
    assert!(view
        .tunnels
        .iter()
        .filter(|t| t.peer.ip() == a("10.2.2.2"))
        .all(|t| t.pic == first_pic));

    // A PIC added later attracts new peers; existing peers keep theirs.
    let mut new_set = service_set("sset-pic2", 2, "ms-3/0/0", None);
    new_set.pool_id = Some("1".into());
    let added = gw
        .manager
        .add_service_set(pic(2, "ms-3/0/0", &[2]), new_set);
    assert!(
        matches!(
            added,
            Err(control::tunnels::TopologyError::PoolNotOnInterface { .. })
        ),
        "the pool has no unit on the new PIC yet"
    );
    let mut new_set = service_set("sset-pic2", 2, "ms-3/0/0", None);
    new_set.pool_id = None;
    let queues = gw
        .manager
        .add_service_set(pic(2, "ms-3/0/0", &[2]), new_set)
        .unwrap();
    gw.adopt_queues(queues);
    gw.quick_mode("10.3.3.3", LAN, "172.16.113.0/24").unwrap();
    let (_, _, new_out) = gw.quick_mode("10.9.9.9", LAN, "172.16.9.0/24").unwrap();
    let view = gw.manager.view();
    let peer3_pics: Vec<&str> = view
        .tunnels
        .iter()
        .filter(|t| t.peer.ip() == a("10.3.3.3"))
        .map(|t| t.pic.as_str())
        .collect();
    assert_eq!(peer3_pics.len(), 2);
    assert_eq!(peer3_pics[0], peer3_pics[1]);
    let newcomer = view
        .tunnels
        .iter()
        .find(|t| t.peer.ip() == a("10.9.9.9"))
        .unwrap();
    assert_eq!(newcomer.pic, "ms-3/0/0");
    assert_eq!(
        newcomer.inside_interface, "ms-3/0/0.1",
        "no pool: the inside unit, shared"
    );
    // The new worker received the existing state and its own tunnel.
    assert_eq!(
        encrypts_with(&mut gw, 2, VrfId::DEFAULT, "172.16.1.5", "172.16.9.1"),
        Ok(new_out)
    );
    assert!(gw.worker(2).rules.dynamic_count() >= 7);
}

#[test]
fn an_ams_interface_spreads_tunnels_over_its_member_pics() {
    let mut set = service_set("ams-sset", 0, "ams0", None);
    set.interface = ServicesInterface::Ams {
        name: "ams0".into(),
        members: vec![PicId(0), PicId(1)],
    };
    let topology = TunnelTopology {
        pics: vec![pic(0, "mams-1/0/0", &[0, 1]), pic(1, "mams-2/0/0", &[2, 3])],
        service_sets: vec![set],
        pools: vec![pool(dedicated_units("ams0", 10..18))],
    };
    let mut gw = Gateway::new(topology);
    for n in 2..10 {
        gw.quick_mode(&format!("10.{n}.{n}.{n}"), LAN, &format!("172.16.{n}.0/24"))
            .unwrap();
    }
    assert_eq!(gw.manager.pic_load(PicId(0)), 4);
    assert_eq!(gw.manager.pic_load(PicId(1)), 4);
    let view = gw.manager.view();
    for worker in 0..4u16 {
        let owned = view
            .tunnels
            .iter()
            .filter(|t| t.worker == WorkerId(worker))
            .count();
        assert_eq!(owned, 2, "worker {worker} owns two tunnels");
        assert_eq!(gw.worker(worker).sas.inbound_count(), 2);
    }
}

#[test]
fn delete_expiry_rekey_and_peer_replacement_leave_nothing_behind() {
    let mut gw = Gateway::new(two_pics());
    add_lan_routes(&mut gw, None);
    let (_, spi2, _) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    let (t3, spi3_old, _) = gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    gw.quick_mode("10.4.4.4", LAN, "172.16.4.0/24").unwrap();
    gw.quick_mode("10.4.4.4", LAN, "172.16.44.0/24").unwrap();

    // Rekey of 10.3.3.3: the same tunnel gets a second generation.
    let (t3_again, spi3_new, out3_new) = gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    assert_eq!(t3_again, t3);
    let owner3 = gw
        .manager
        .view()
        .tunnels
        .iter()
        .find(|t| t.id == t3)
        .unwrap()
        .worker;
    assert_eq!(
        encrypts_with(
            &mut gw,
            owner3.0,
            VrfId::DEFAULT,
            "172.16.1.5",
            "172.16.3.3"
        ),
        Ok(out3_new),
        "outbound moves to the new SA at once"
    );
    assert_eq!(
        gw.manager.child_sa_down(spi3_old),
        SaDown::GenerationRemoved(t3)
    );
    gw.pump();
    assert!(matches!(
        gw.worker(owner3.0).inbound(spi3_old),
        InboundLookup::Unknown
    ));
    assert!(matches!(
        gw.worker(owner3.0).inbound(spi3_new),
        InboundLookup::Owned(_)
    ));

    // Peer deletes its SA; the worker reports a hard lifetime; the peer's IKE SA is replaced.
    assert!(matches!(
        gw.manager.child_sa_down(spi2),
        SaDown::TunnelRemoved(_)
    ));
    let expired = WorkerEvent::HardLifetime {
        worker: owner3,
        spi: spi3_new,
        direction: Direction::Inbound,
    };
    assert_eq!(
        gw.manager.on_worker_event(&expired),
        SaDown::TunnelRemoved(t3)
    );
    assert_eq!(gw.manager.peer_down(PROFILE, a("10.4.4.4")).len(), 2);
    assert_eq!(
        gw.manager.child_sa_down(spi2),
        SaDown::Unknown,
        "already gone"
    );
    gw.pump();
    gw.assert_no_tunnel_state();
    // Configured routes are untouched.
    let view = gw.manager.view();
    assert_eq!(view.table("inet.0").unwrap().routes.len(), 1);
}

#[test]
fn a_refused_quick_mode_leaves_no_trace() {
    let mut gw = Gateway::new(single_pic(None, 2));
    // Bad key material is refused before anything is taken.
    let spi = gw
        .manager
        .allocate_inbound_spi(PROFILE, a("10.2.2.2"))
        .unwrap();
    let mut bad = sa(spi, Direction::Inbound);
    bad.keys.encryption.truncate(3);
    let up = control::tunnels::ChildSaUp {
        access_profile: PROFILE.into(),
        peer: dataplane::sa::PeerEndpoint {
            local: "10.1.1.1:500".parse().unwrap(),
            remote: "10.2.2.2:500".parse().unwrap(),
        },
        proxy: dataplane::sa::ProxyPair {
            local: p(LAN),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        inbound: vec![bad],
        outbound: vec![sa(7, Direction::Outbound)],
    };
    assert!(matches!(
        gw.manager.child_sa_up(up.clone()),
        Err(TunnelRefusal::SaBuild { .. })
    ));
    // An SPI nobody reserved, and a proxy pair mixing families.
    let mut unreserved = up.clone();
    unreserved.inbound = vec![sa(0x0100_0001, Direction::Inbound)];
    assert!(matches!(
        gw.manager.child_sa_up(unreserved),
        Err(TunnelRefusal::SpiNotReserved { .. })
    ));
    let spi = gw
        .manager
        .allocate_inbound_spi(PROFILE, a("10.2.2.2"))
        .unwrap();
    let mut mixed = up.clone();
    mixed.inbound = vec![sa(spi, Direction::Inbound)];
    mixed.proxy.remote = p("2001:db8::/32");
    assert!(matches!(
        gw.manager.child_sa_up(mixed),
        Err(TunnelRefusal::MixedFamilies { .. })
    ));
    // An access profile no service set uses.
    assert!(matches!(
        gw.manager
            .allocate_inbound_spi("other-profile", a("10.2.2.2")),
        Err(TunnelRefusal::Placement(_))
    ));
    // A reservation given back by the IKE side after a failed exchange.
    let spi = gw
        .manager
        .allocate_inbound_spi(PROFILE, a("10.5.5.5"))
        .unwrap();
    assert!(gw.manager.release_inbound_spi(spi));
    assert!(!gw.manager.release_inbound_spi(spi));
    gw.pump();
    gw.assert_no_tunnel_state();
}

#[test]
fn ipv6_proxies_get_reverse_routes_in_inet6() {
    let mut gw = Gateway::new(single_pic(None, 2));
    let (_, _, out) = gw
        .quick_mode("10.2.2.2", "2001:db8:1::/48", "2001:db8:2::/48")
        .unwrap();
    let view = gw.manager.view();
    let inet6 = view.table("inet6.0").expect("inet6.0 listed");
    assert_eq!(inet6.routes[0].prefix, p("2001:db8:2::/48"));
    assert_eq!(inet6.routes[0].preference, 1);
    assert_eq!(
        encrypts_with(&mut gw, 0, VrfId::DEFAULT, "2001:db8:1::5", "2001:db8:2::7"),
        Ok(out)
    );
    gw.quick_mode("10.3.3.3", "::/0", "::/0").unwrap();
    assert_eq!(
        gw.manager.view().table("inet6.0").unwrap().routes.len(),
        1,
        "none for ::/0"
    );
}

#[test]
fn an_ah_esp_bundle_installs_both_sas_on_the_owner() {
    let mut gw = Gateway::new(single_pic(None, 2));
    let esp_in = gw
        .manager
        .allocate_inbound_spi(PROFILE, a("10.2.2.2"))
        .unwrap();
    let ah_in = gw
        .manager
        .allocate_inbound_spi(PROFILE, a("10.2.2.2"))
        .unwrap();
    let mut ah_inbound = sa(ah_in, Direction::Inbound);
    ah_inbound.protocol = dataplane::sa::IpsecProtocol::Ah;
    ah_inbound.cipher = dataplane::sa::Cipher::Null;
    ah_inbound.keys.encryption.clear();
    let mut ah_outbound = ah_inbound.clone();
    ah_outbound.spi = 0x600;
    ah_outbound.direction = Direction::Outbound;
    let up = control::tunnels::ChildSaUp {
        access_profile: PROFILE.into(),
        peer: dataplane::sa::PeerEndpoint {
            local: "10.1.1.1:500".parse().unwrap(),
            remote: "10.2.2.2:500".parse().unwrap(),
        },
        proxy: dataplane::sa::ProxyPair {
            local: p(LAN),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        inbound: vec![sa(esp_in, Direction::Inbound), ah_inbound],
        outbound: vec![sa(0x500, Direction::Outbound), ah_outbound],
    };
    let tunnel = gw.manager.child_sa_up(up).unwrap();
    gw.pump();
    match gw
        .worker(0)
        .classify_outbound(VrfId::DEFAULT, a("172.16.1.1"), a("172.16.2.1"))
    {
        OutboundVerdict::Encrypt { sas, .. } => {
            assert_eq!(
                sas.iter().map(|s| s.spi).collect::<Vec<_>>(),
                vec![0x500, 0x600]
            )
        }
        _ => panic!("bundle not used"),
    }
    for spi in [esp_in, ah_in] {
        assert!(matches!(gw.worker(0).inbound(spi), InboundLookup::Owned(e) if e.tunnel == tunnel));
    }
    // Either SA of the bundle going down takes the whole tunnel down.
    assert_eq!(
        gw.manager.child_sa_down(ah_in),
        SaDown::TunnelRemoved(tunnel)
    );
    gw.pump();
    gw.assert_no_tunnel_state();
}

#[test]
fn the_ike_side_reserves_spis_through_a_broker_keyed_by_local_gateway() {
    fn must_be_send<T: Send + 'static>(_: &T) {}
    let mut gw = Gateway::new(two_pics());
    let broker = gw.manager.spi_broker();
    must_be_send(&broker);
    let endpoint = dataplane::sa::PeerEndpoint {
        local: "10.1.1.1:4500".parse().unwrap(),
        remote: "10.7.7.7:4500".parse().unwrap(),
    };
    let spi = broker
        .allocate(&endpoint)
        .expect("a service set terminates at 10.1.1.1");
    let elsewhere = dataplane::sa::PeerEndpoint {
        local: "10.99.1.1:4500".parse().unwrap(),
        ..endpoint
    };
    assert_eq!(broker.allocate(&elsewhere), None);
    let up = control::tunnels::ChildSaUp {
        access_profile: PROFILE.into(),
        peer: endpoint,
        proxy: dataplane::sa::ProxyPair {
            local: p(LAN),
            remote: p("172.16.7.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        inbound: vec![sa(spi, Direction::Inbound)],
        outbound: vec![sa(0x777, Direction::Outbound)],
    };
    let tunnel = gw.manager.child_sa_up(up).unwrap();
    gw.pump();
    let owner = gw.manager.view().tunnels[0].worker;
    assert_eq!(dataplane::tables::spi_owner(spi), owner);
    assert!(
        matches!(gw.worker(owner.0).inbound(spi), InboundLookup::Owned(e) if e.tunnel == tunnel)
    );
    assert!(
        !broker.release(spi),
        "a used SPI is the tunnel's, not a reservation"
    );
    let unused = broker.allocate(&endpoint).unwrap();
    assert!(broker.release(unused));
    gw.manager.tear_down(tunnel);
    gw.pump();
    gw.assert_no_tunnel_state();
}

#[test]
fn the_tunnel_change_count_moves_whenever_the_tunnel_view_does_and_only_then() {
    let mut gw = Gateway::new(two_pics());
    add_lan_routes(&mut gw, None);
    let mut seen = (gw.manager.tunnel_changes(), gw.manager.view().tunnels);
    let mut expect = |gw: &Gateway, changed: bool, step: &str| {
        let now = (gw.manager.tunnel_changes(), gw.manager.view().tunnels);
        assert_eq!(now.0 != seen.0, changed, "count after {step}");
        assert_eq!(now.1 != seen.1, changed, "view after {step}");
        seen = now;
    };
    let (_, spi2, _) = gw.quick_mode("10.2.2.2", LAN, "172.16.2.0/24").unwrap();
    expect(&gw, true, "a tunnel up");
    let (t3, spi3_old, _) = gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    expect(&gw, true, "a second tunnel up");
    gw.quick_mode("10.3.3.3", LAN, "172.16.3.0/24").unwrap();
    expect(&gw, true, "a rekey");
    assert_eq!(
        gw.manager.child_sa_down(spi3_old),
        SaDown::GenerationRemoved(t3)
    );
    expect(&gw, true, "the old generation down");
    assert_eq!(gw.manager.child_sa_down(0x00ab_cdef), SaDown::Unknown);
    gw.manager
        .allocate_inbound_spi(PROFILE, a("10.9.9.9"))
        .unwrap();
    gw.pump();
    expect(&gw, false, "an unknown SA down and an SPI reserved");
    assert!(matches!(
        gw.manager.child_sa_down(spi2),
        SaDown::TunnelRemoved(_)
    ));
    expect(&gw, true, "a tunnel down");
}
