//! The reference topology with real strongSwan dynamic peers and dyntun on DPDK, asserting on
//! traffic and on `dyntun show … --json`. Needs root, strongSwan and DPDK (scripts/setup.sh).

mod support;

use std::time::Duration;

use support::Scenario;

const GLOBAL_KEY: &str = "dyntun-demo-global-key";
const IKE: &str = "aes128-sha1-modp1024";
const ESP: &str = "aes128-sha1";

/// SG2 as the reference example has it: 10.2.2.2 protecting 172.16.2.0/24, the global key.
fn start_sg2(s: &mut Scenario) -> usize {
    s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    )
}

fn reverse_routes(s: &Scenario, table: &str) -> Vec<String> {
    s.routes(table)
        .into_iter()
        .filter(|(_, protocol, preference, _)| protocol == "Static" && *preference == 1)
        .map(|(prefix, ..)| prefix)
        .collect()
}

#[test]
fn policy_based_tunnels_for_two_dynamic_peers_carry_traffic_both_ways_and_go_on_delete() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-policy-shared.conf");
    s.warm_up_lan();
    let sg2 = start_sg2(&mut s);
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        GLOBAL_KEY,
        "aes256-sha256-modp2048",
        "aes128gcm16",
        &[],
    );
    assert!(s.initiate(sg2), "SG2 could not bring up its tunnel");
    assert!(s.initiate(sg3), "SG3 could not bring up its tunnel");

    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.10", 4, "0.2"),
        4
    );
    assert_eq!(
        s.ping("sg3", Some("172.16.3.1"), "172.16.1.10", 4, "0.2"),
        4
    );
    assert_eq!(s.ping("lan", None, "172.16.2.1", 4, "0.2"), 4);
    assert_eq!(s.ping("lan", None, "172.16.3.1", 4, "0.2"), 4);
    // The gateway's own inside address answers through the tunnel the ping came from.
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.1", 3, "0.2"),
        3,
        "{}",
        s.gateway_log()
    );

    let tunnels = s.tunnels();
    assert_eq!(tunnels.len(), 2, "{tunnels:#?}");
    for tunnel in &tunnels {
        // Policy-based: every dynamic peer shares the pool's one shared unit.
        assert_eq!(tunnel["ipsec_inside_interface"], "sp-1/2/0.1");
        assert_eq!(tunnel["type"], "dynamic");
        assert_eq!(tunnel["match_direction"], "input");
        assert_eq!(tunnel["local_identity"], "172.16.1.0/24");
        let sas = tunnel["security_associations"].as_array().unwrap();
        assert_eq!(sas.len(), 2);
        assert!(
            sas.iter().all(|sa| sa["packets"].as_u64().unwrap() >= 4),
            "{sas:#?}"
        );
    }
    let sg3_tunnel = tunnels
        .iter()
        .find(|t| t["remote_gateway"] == "10.3.3.3")
        .unwrap();
    assert_eq!(
        sg3_tunnel["security_associations"][0]["encryption"],
        "aes-128-gcm"
    );

    let ike = s.show("services ipsec-vpn ike security-associations detail");
    let sas = ike["ike_security_associations"].as_array().unwrap();
    assert_eq!(sas.len(), 2, "{ike:#?}");
    let sg2_ike = sas
        .iter()
        .find(|sa| sa["remote_address"] == "10.2.2.2")
        .unwrap();
    assert_eq!(sg2_ike["state"], "Matured");
    assert_eq!(
        (
            &sg2_ike["encryption"],
            &sg2_ike["hash"],
            &sg2_ike["dh_group"]
        ),
        (&"aes-128-cbc".into(), &"sha1".into(), &"group2".into())
    );
    assert_eq!(
        sg2_ike["nat_traversal"], true,
        "Debian's strongSwan always floats to 4500"
    );

    let mut routes = reverse_routes(&s, "inet.0");
    routes.sort();
    assert_eq!(routes, ["172.16.2.0/24", "172.16.3.0/24"]);

    // A delete from SG2 withdraws its rule, SAs and reverse route; SG3 keeps working.
    let (ok, out) = s.swanctl(sg2, "--terminate --ike sg1 --timeout 10");
    assert!(ok, "{out}");
    s.wait_until("SG2's tunnel to go", Duration::from_secs(10), || {
        s.tunnels().len() == 1
    });
    assert_eq!(reverse_routes(&s, "inet.0"), ["172.16.3.0/24"]);
    assert_eq!(s.ping("lan", None, "172.16.3.1", 2, "0.2"), 2);
    assert_eq!(s.ping("lan", None, "172.16.2.1", 2, "0.2"), 0);

    // The operator clears SG3: deletes go to the peer and everything is withdrawn here.
    let cleared = s.show_text_verb(
        "clear",
        "services ipsec-vpn ike security-associations 10.3.3.3",
    );
    assert!(cleared.contains("Cleared 1 IKE"), "{cleared}");
    assert!(s.tunnels().is_empty());
    assert!(reverse_routes(&s, "inet.0").is_empty());
    s.wait_until("SG3 to hear the delete", Duration::from_secs(10), || {
        s.peer_log(sg3).contains("received DELETE for ESP CHILD_SA")
    });
}

/// SG1 from `example` with `allowed` rewritten to `hub` (the allowed-proxy-pair lines), and
/// SG2 and SG3 up, each protecting its /24 towards the whole 172.16.0.0/16: traffic from one
/// peer's network to the other's goes out of one tunnel and into the other (hub and spoke).
/// SG3 negotiates `sg3_suites` (IKE, ESP).
fn start_hub(s: &mut Scenario, example: &str, allowed: &str, hub: &str, sg3_suites: (&str, &str)) {
    let text = std::fs::read_to_string(example).unwrap();
    let rewritten = text.replace(allowed, hub);
    assert_ne!(
        rewritten, text,
        "{example}: the allowed-proxy-pair lines moved"
    );
    let config = s.work.join("hub.conf");
    std::fs::write(&config, rewritten).unwrap();
    s.start_gateway_at(&config);
    s.warm_up_lan();
    let peers = [
        ("sg2", "10.2.2.2", "172.16.2.0/24", (IKE, ESP)),
        ("sg3", "10.3.3.3", "172.16.3.0/24", sg3_suites),
    ];
    for (role, address, lan, (ike, esp)) in peers {
        let peer = s.start_peer_towards(
            role,
            address,
            lan,
            "172.16.0.0/16",
            GLOBAL_KEY,
            ike,
            esp,
            &[],
        );
        assert!(s.initiate(peer), "{role} could not bring up its tunnel");
    }
}

/// The sum of one pipeline counter over every worker.
fn all_workers(stats: &serde_json::Value, counter: &str) -> u64 {
    stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["counters"][counter].as_u64().unwrap())
        .sum()
}

#[test]
fn two_peers_whose_proxies_cover_each_other_talk_through_the_gateway() {
    let mut s = Scenario::new();
    start_hub(
        &mut s,
        "examples/sg1-policy-shared.conf",
        "remote 172.16.2.0/24 local 172.16.1.0/24;\n                    remote 172.16.3.0/24 local 172.16.1.0/24;",
        "remote 172.16.2.0/24 local 172.16.0.0/16;\n                    remote 172.16.3.0/24 local 172.16.0.0/16;",
        ("aes256-sha256-modp2048", "aes128gcm16"),
    );
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.3.1", 4, "0.2"),
        4,
        "{}",
        s.gateway_log()
    );
    assert_eq!(s.ping("sg3", Some("172.16.3.1"), "172.16.2.1", 4, "0.2"), 4);
    // The LAN still reaches both.
    assert_eq!(s.ping("lan", None, "172.16.2.1", 2, "0.2"), 2);
    let stats = s.show("dataplane statistics");
    assert!(
        all_workers(&stats, "tunnel_to_tunnel") >= 16,
        "each ping and reply crossed the hub: {stats:#?}"
    );
}

#[test]
fn two_peers_on_different_pics_talk_through_the_gateway() {
    let mut s = Scenario::new();
    start_hub(
        &mut s,
        "examples/sg1-two-pics.conf",
        "remote 172.16.0.0/16 local 172.16.1.0/24;",
        "remote 172.16.0.0/16 local 172.16.0.0/16;",
        (IKE, ESP),
    );
    let mut pics: Vec<String> = s
        .tunnels()
        .iter()
        .map(|t| t["pic"].as_str().unwrap().to_string())
        .collect();
    pics.sort();
    pics.dedup();
    assert_eq!(pics.len(), 2, "one peer per PIC");
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.3.1", 4, "0.2"),
        4,
        "{:#?}",
        s.show("dataplane statistics")
    );
    assert_eq!(s.ping("sg3", Some("172.16.3.1"), "172.16.2.1", 4, "0.2"), 4);
    // Each crossing is opened by one PIC's worker and sealed by the other's: handed over.
    let stats = s.show("dataplane statistics");
    assert!(all_workers(&stats, "tunnel_to_tunnel") >= 16, "{stats:#?}");
    assert!(all_workers(&stats, "handed_off") >= 16, "{stats:#?}");
}

#[test]
fn link_type_tunnels_take_dedicated_units_from_the_pool() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-link-dedicated.conf");
    s.warm_up_lan();
    let sg2 = s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        "dyrun-link-key",
        IKE,
        "3des-md5",
        &[],
    );
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        "dyrun-link-key",
        "3des-md5-modp1024",
        "aes256-sha1",
        &[],
    );
    assert!(s.initiate(sg2));
    assert!(s.initiate(sg3));
    assert_eq!(s.ping("lan", None, "172.16.2.1", 3, "0.2"), 3);
    assert_eq!(
        s.ping("sg3", Some("172.16.3.1"), "172.16.1.10", 3, "0.2"),
        3
    );

    let tunnels = s.tunnels();
    let mut units: Vec<String> = tunnels
        .iter()
        .map(|t| t["ipsec_inside_interface"].as_str().unwrap().to_string())
        .collect();
    units.sort();
    units.dedup();
    assert_eq!(
        units.len(),
        2,
        "each link-type tunnel has its own unit: {units:?}"
    );
    let pool = s.show("interfaces sp-1/2/0");
    let held: Vec<_> = pool["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !u["tunnels"].as_array().unwrap().is_empty())
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    let mut held_sorted = held.clone();
    held_sorted.sort();
    assert_eq!(held_sorted, units);
    // tunnel-mtu 1400: a LAN packet with DF that would not fit is answered with ICMP
    // fragmentation-needed from the gateway, carrying the inner MTU that does fit.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("lan"),
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1400",
            "172.16.2.1",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("From 172.16.1.1") && text.contains("Frag needed"),
        "no fragmentation-needed answer:\n{text}"
    );
    assert!(
        s.show("dataplane statistics")["workers"][0]["counters"]["icmp_too_big"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Without DF the same packet is split before encryption and arrives whole.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("lan"),
            "ping",
            "-n",
            "-c",
            "2",
            "-W",
            "2",
            "-M",
            "dont",
            "-s",
            "1400",
            "172.16.2.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 received"),
        "fragmented pings lost:\n{text}"
    );
    assert!(
        s.show("dataplane statistics")["workers"][0]["counters"]["sent_for_fragmentation"]
            .as_u64()
            .unwrap()
            >= 2
    );
    // A datagram the LAN host fragments itself (three fragments). net_af_packet joins the
    // kernel's fanout with PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles the fragments
    // before dyntun sees them; dyntun gives af_packet 4 KiB ring frames so that the whole
    // datagram fits (the default 2 KiB frame cut it). The gateway splits it for the tunnel again.
    let before = s.show("dataplane statistics")["workers"][0]["counters"].clone();
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("lan"),
            "ping",
            "-n",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            "-s",
            "3200",
            "172.16.2.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let after = s.show("dataplane statistics")["workers"][0]["counters"].clone();
    assert!(
        text.contains("2 received"),
        "pings fragmented by the sender lost:\n{text}\n{after}"
    );
    let grew = |name: &str| after[name].as_u64().unwrap() - before[name].as_u64().unwrap();
    assert!(grew("sent_for_fragmentation") >= 2, "{after}");
    assert_eq!(grew("drop_truncated") + grew("drop_bad_l3"), 0, "{after}");
    // The reverse routes point at each tunnel's own unit.
    for (prefix, _, _, next_hop) in s.routes("inet.0").into_iter().filter(|r| r.2 == 1) {
        let tunnel = tunnels
            .iter()
            .find(|t| t["remote_identity"] == prefix.as_str())
            .unwrap();
        assert!(
            next_hop.contains(tunnel["ipsec_inside_interface"].as_str().unwrap()),
            "{next_hop}"
        );
    }
}

#[test]
fn vrf_service_set_puts_reverse_routes_in_the_vrf_table() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-vrf.set");
    s.warm_up_lan();
    let sg2 = start_sg2(&mut s);
    assert!(s.initiate(sg2));
    assert_eq!(reverse_routes(&s, "vrf-lan.inet.0"), ["172.16.2.0/24"]);
    assert!(reverse_routes(&s, "inet.0").is_empty());
    assert_eq!(s.ping("lan", None, "172.16.2.1", 3, "0.2"), 3);
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.10", 3, "0.2"),
        3
    );

    // An orderly stop tells the peer: its IPsec and IKE SAs are deleted, dyntun exits cleanly.
    let status = s.stop_gateway().expect("dyntun stops on SIGINT");
    assert!(status.success(), "{status}\n{}", s.gateway_log());
    s.wait_until("SG2 to hear the deletes", Duration::from_secs(10), || {
        let log = s.peer_log(sg2);
        log.contains("received DELETE for ESP CHILD_SA")
            && log.contains("received DELETE for IKE_SA")
    });
}

#[test]
fn a_peer_with_its_own_key_and_a_peer_with_the_global_key_both_authenticate() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-per-peer-key.conf");
    // SG2 holding only the global key is refused: its address has a key of its own.
    let wrong = start_sg2(&mut s);
    assert!(
        !s.initiate(wrong),
        "SG2 must not get in with the global key"
    );
    assert!(s.tunnels().is_empty());
    s.stop_peer(wrong);
    let sg2 = s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        "dyntun-sg2-own-key",
        IKE,
        ESP,
        &[],
    );
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    );
    assert!(s.initiate(sg2), "SG2 with its own key");
    assert!(s.initiate(sg3), "SG3 with the global key");
    assert_eq!(s.tunnels().len(), 2);
}

#[test]
fn a_proxy_pair_outside_allowed_proxy_pair_is_refused_and_nothing_is_installed() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-policy-shared.conf");
    let sg2 = s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.9.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    );
    // swanctl's exit code does not reflect a refused Quick Mode in IKEv1; its SA list does.
    s.initiate(sg2);
    s.wait_until(
        "the refusal naming the peer and its pair",
        Duration::from_secs(15),
        || {
            s.gateway_log().lines().any(|l| {
                l.contains("peer=10.2.2.2")
                    && l.contains("remote 172.16.9.0/255.255.255.0")
                    && l.contains("not in allowed-proxy-pair")
            })
        },
    );
    let (_, sas) = s.swanctl(sg2, "--list-sas");
    assert!(
        !sas.contains("INSTALLED"),
        "no child SA may be installed:\n{sas}"
    );
    assert!(s.tunnels().is_empty());
    assert!(reverse_routes(&s, "inet.0").is_empty());
}

#[test]
fn a_peer_that_comes_back_from_a_new_address_replaces_its_old_tunnel() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-policy-shared.conf");
    s.warm_up_lan();
    // A dynamic peer keeps its identity when its address changes; INITIAL-CONTACT is per identity.
    let identity = [("CHARON_LOCAL_ID", "sg2.example.net")];
    let first = s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &identity,
    );
    assert!(s.initiate(first));
    assert_eq!(s.ping("lan", None, "172.16.2.1", 2, "0.2"), 2);
    // The peer "reboots" behind a new ISP address, forgetting its SAs (no delete sent).
    let pid = std::fs::read_to_string(s.work.join("sg2-0/charon.pid")).unwrap();
    unsafe { libc::kill(pid.trim().parse().unwrap(), libc::SIGKILL) };
    let ns = s.ns("sg2");
    for cmd in [
        // Deleting a primary address takes its secondaries along: old one first.
        vec!["-n", &ns, "addr", "del", "10.2.2.2/24", "dev", "wan0"],
        vec!["-n", &ns, "addr", "add", "10.2.2.20/24", "dev", "wan0"],
        vec![
            "-n",
            &ns,
            "route",
            "replace",
            "default",
            "via",
            "10.2.2.254",
        ],
    ] {
        assert!(std::process::Command::new("ip")
            .args(&cmd)
            .status()
            .unwrap()
            .success());
    }
    let second = s.start_peer(
        "sg2",
        "10.2.2.20",
        "172.16.2.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &identity,
    );
    assert!(s.initiate(second));
    s.wait_until(
        "only the new tunnel to remain",
        Duration::from_secs(10),
        || {
            let tunnels = s.tunnels();
            tunnels.len() == 1 && tunnels[0]["remote_gateway"] == "10.2.2.20"
        },
    );
    assert_eq!(reverse_routes(&s, "inet.0"), ["172.16.2.0/24"]);
    assert_eq!(s.ping("lan", None, "172.16.2.1", 3, "0.2"), 3);
}

#[test]
fn dpd_is_answered_and_a_rekey_under_traffic_loses_nothing() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-policy-shared.conf");
    s.warm_up_lan();
    let sg2 = s.start_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[
            ("CHARON_DPD_DELAY", "2s"),
            (
                "CHARON_CHILD_EXTRA",
                "rekey_time = 6s\n                life_time = 30s\n                rand_time = 0s",
            ),
        ],
    );
    assert!(s.initiate(sg2));
    let first_spis: Vec<u64> = s.tunnels()[0]["security_associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sa| sa["spi"].as_u64().unwrap())
        .collect();
    // 60 pings over 12 s span at least one rekey; none may be lost.
    let received = s.ping("lan", None, "172.16.2.1", 60, "0.2");
    assert_eq!(received, 60, "pings lost across the rekey");
    assert!(s.gateway_log().contains("rekey=true"), "no rekey happened");
    let spis_now: Vec<u64> = s.tunnels()[0]["security_associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sa| sa["spi"].as_u64().unwrap())
        .collect();
    assert_ne!(first_spis, spis_now, "the rekeyed SAs are in place");
    // strongSwan only probes a peer it has not heard from for dpd_delay.
    std::thread::sleep(Duration::from_secs(7));
    let log = s.peer_log(sg2);
    assert!(
        log.contains("sending DPD request"),
        "no DPD was sent:\n{log}"
    );
    assert!(
        log.contains("received DPD") || log.contains("R_U_THERE_ACK"),
        "DPD not answered:\n{log}"
    );
    assert!(!log.contains("DPD check timed out"));
}

#[test]
fn manual_sas_exchange_raw_esp_with_scapy_and_a_static_rule_shadows_the_dynamic_one() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-manual.conf");
    s.warm_up_lan();
    // SG3 is a dynamic peer for 172.16.3.0/24; SG2 is scapy with hand-keyed SAs.
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    );
    assert!(s.initiate(sg3));
    // 172.16.3.200 stands behind SG3 too, so its traffic would match SG3's dynamic rule.
    let ns3 = s.ns("sg3");
    assert!(std::process::Command::new("ip")
        .args(["-n", &ns3, "addr", "add", "172.16.3.200/32", "dev", "lo"])
        .status()
        .unwrap()
        .success());
    assert_eq!(
        s.ping("lan", None, "172.16.3.1", 3, "0.2"),
        3,
        "dynamic rule for 172.16.3.1"
    );

    let script = support::repo().join("tests/support/esp_peer.py");
    let peer = std::process::Command::new("ip")
        .args(["netns", "exec", &s.ns("sg2"), "/usr/bin/python3"])
        .arg(&script)
        .arg("172.16.3.200")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While scapy listens, LAN traffic to 172.16.3.200 must take the static (shadow) term.
    std::thread::sleep(Duration::from_millis(800));
    let to_shadow = s.ping("lan", None, "172.16.3.200", 3, "0.2");
    assert_eq!(
        to_shadow, 0,
        "172.16.3.200 went to SG3 instead of the static tunnel"
    );
    let out = peer.wait_with_output().unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scapy peer:\n{report}\n{}",
        s.gateway_log()
    );

    let sas = s.show("services ipsec-vpn ipsec security-associations");
    let manual = sas["static_tunnels"].as_array().unwrap();
    assert_eq!(manual.len(), 2, "{sas:#?}");
    assert_eq!(manual[0]["security_associations"][0]["spi"], 16000);
    let stats = s.show("services ipsec-vpn ipsec statistics");
    let inbound = stats["security_associations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sa| sa["spi"] == 16000 && sa["direction"] == "inbound")
        .cloned()
        .unwrap();
    assert!(inbound["packets"].as_u64().unwrap() >= 3, "{stats:#?}");
}

#[test]
fn an_ipv6_lan_reaches_a_dynamic_peer_through_ipv6_proxy_pairs() {
    let mut s = Scenario::new();
    let (lan, sg2) = (s.ns("lan"), s.ns("sg2"));
    for args in [
        vec![
            "-n",
            lan.as_str(),
            "-6",
            "addr",
            "add",
            "fd00:1::10/64",
            "dev",
            "lan0",
            "nodad",
        ],
        vec![
            "-n",
            lan.as_str(),
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:1::1",
        ],
        vec![
            "-n",
            sg2.as_str(),
            "-6",
            "addr",
            "add",
            "fd00:2::1/128",
            "dev",
            "lo",
        ],
    ] {
        assert!(
            std::process::Command::new("ip")
                .args(&args)
                .status()
                .unwrap()
                .success(),
            "{args:?}"
        );
    }
    s.start_gateway("examples/sg1-dual-stack.conf");
    // The LAN host resolves the gateway by neighbor discovery and pings it.
    assert!(
        s.ping("lan", None, "fd00:1::1", 3, "0.2") >= 2,
        "{}",
        s.gateway_log()
    );
    let peer = s.start_peer_towards(
        "sg2",
        "10.2.2.2",
        "fd00:2::/64",
        "fd00:1::/64",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    );
    assert!(s.initiate(peer));
    assert_eq!(s.ping("sg2", Some("fd00:2::1"), "fd00:1::10", 4, "0.2"), 4);
    assert_eq!(s.ping("lan", None, "fd00:2::1", 4, "0.2"), 4);
    assert_eq!(s.ping("sg2", Some("fd00:2::1"), "fd00:1::1", 3, "0.2"), 3);
    let tunnels = s.tunnels();
    assert_eq!(tunnels.len(), 1);
    assert_eq!(tunnels[0]["remote_identity"], "fd00:2::/64");
    assert_eq!(reverse_routes(&s, "inet6.0"), ["fd00:2::/64"]);
    assert!(reverse_routes(&s, "inet.0").is_empty());
}

#[test]
fn tunnels_are_spread_over_two_service_pics_and_carry_traffic() {
    let mut s = Scenario::new();
    s.start_gateway("examples/sg1-two-pics.conf");
    s.warm_up_lan();
    let sg2 = start_sg2(&mut s);
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        GLOBAL_KEY,
        IKE,
        ESP,
        &[],
    );
    assert!(s.initiate(sg2));
    assert!(s.initiate(sg3));
    let tunnels = s.tunnels();
    assert_eq!(tunnels.len(), 2);
    let mut pics: Vec<&str> = tunnels.iter().map(|t| t["pic"].as_str().unwrap()).collect();
    pics.sort();
    pics.dedup();
    assert_eq!(
        pics.len(),
        2,
        "least loaded placement puts the second peer on the other PIC: {tunnels:#?}"
    );
    // af_packet spreads frames over both workers' queues; a packet for an SA owned by the
    // other worker is handed over, so every ping must come back whichever queue it hit.
    assert_eq!(s.ping("lan", None, "172.16.2.1", 6, "0.2"), 6);
    assert_eq!(s.ping("lan", None, "172.16.3.1", 6, "0.2"), 6);
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.10", 6, "0.2"),
        6
    );
    assert_eq!(
        s.ping("sg3", Some("172.16.3.1"), "172.16.1.10", 6, "0.2"),
        6
    );
    let stats = s.show("dataplane statistics");
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let encrypted: Vec<u64> = workers
        .iter()
        .map(|w| w["counters"]["encrypted"].as_u64().unwrap())
        .collect();
    assert!(
        encrypted.iter().all(|e| *e > 0),
        "both PICs encrypt their own tunnels: {encrypted:?}"
    );
}
