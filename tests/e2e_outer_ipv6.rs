//! Dynamic peers reaching dyntun over an IPv6 outside network: real strongSwan charons initiate
//! IKEv1 Main Mode to 2001:db8:1::1 and carry IPv4 and IPv6 LAN traffic in outer IPv6. Needs
//! root, strongSwan and DPDK (scripts/setup.sh).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::Scenario;

const GLOBAL_KEY: &str = "dyntun-demo-global-key";
const GATEWAY: &str = "2001:db8:1::1";

/// Runs `ping ARGS…` in the namespace of `role`; returns its whole output.
fn ping_text(s: &Scenario, role: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &s.ns(role), "ping", "-n", "-W", "2"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn worker_counter(s: &Scenario, name: &str) -> u64 {
    s.show("dataplane statistics")["workers"][0]["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn reverse_routes(s: &Scenario, table: &str) -> Vec<String> {
    s.routes(table)
        .into_iter()
        .filter(|(_, protocol, preference, _)| protocol == "Static" && *preference == 1)
        .map(|(prefix, ..)| prefix)
        .collect()
}

/// tcpdump on the ISP router's link towards SG1, stopped by its PID when dropped.
struct Capture {
    tcpdump: Child,
    file: PathBuf,
}

impl Capture {
    fn start(s: &Scenario) -> Capture {
        let file = s.work.join("outside.pcap");
        let tcpdump = Command::new("ip")
            .args([
                "netns",
                "exec",
                &s.ns("isp"),
                "tcpdump",
                "-i",
                "isp-sg1",
                "-nn",
                "-U",
                // Without it frames wait in the capture ring and a stop loses the last ones.
                "--immediate-mode",
            ])
            .arg("-w")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts");
        // tcpdump needs a moment before it sees the link's frames.
        std::thread::sleep(Duration::from_millis(500));
        Capture { tcpdump, file }
    }

    /// Stops the capture and returns tcpdump's one-line summary of every packet.
    fn finish(mut self) -> Vec<String> {
        self.stop();
        let out = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&self.file)
            .stderr(Stdio::null())
            .output()
            .expect("tcpdump reads its capture");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn stop(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(self.tcpdump.id() as i32, libc::SIGINT) };
        let _ = self.tcpdump.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.tcpdump.try_wait() {
            let _ = self.tcpdump.kill();
            let _ = self.tcpdump.wait();
        }
    }
}

#[test]
fn ipv6_peers_carry_ipv4_and_ipv6_lans_in_outer_ipv6_and_go_on_delete() {
    let mut s = Scenario::with_topology("topology_up_v6");
    s.start_gateway("examples/sg1-outer-ipv6.conf");
    s.warm_up_lan();
    assert!(
        s.ping("lan", None, "fd00:1::1", 3, "0.2") >= 2,
        "LAN host cannot reach the gateway over IPv6: {}",
        s.gateway_log()
    );
    // Inner IPv4 over outer IPv6.
    let sg2 = s.start_peer_to_gateway(
        "sg2",
        "2001:db8:2::2",
        GATEWAY,
        "172.16.2.0/24",
        "172.16.1.0/24",
        GLOBAL_KEY,
        "aes128-sha1-modp1024",
        "aes128-sha1",
        &[],
    );
    // Inner IPv6 over outer IPv6, with another suite.
    let sg3 = s.start_peer_to_gateway(
        "sg3",
        "2001:db8:3::3",
        GATEWAY,
        "fd00:3::/64",
        "fd00:1::/64",
        GLOBAL_KEY,
        "aes256-sha256-modp2048",
        "aes128gcm16",
        &[],
    );
    let capture = Capture::start(&s);
    assert!(
        s.initiate(sg2),
        "SG2 could not bring up its tunnel over IPv6"
    );
    assert!(
        s.initiate(sg3),
        "SG3 could not bring up its tunnel over IPv6"
    );

    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.10", 4, "0.2"),
        4
    );
    assert_eq!(s.ping("lan", None, "172.16.2.1", 4, "0.2"), 4);
    assert_eq!(s.ping("sg3", Some("fd00:3::1"), "fd00:1::10", 4, "0.2"), 4);
    assert_eq!(s.ping("lan", None, "fd00:3::1", 4, "0.2"), 4);

    // Everything between SG1 and the router is IPv6: IKE on 500 then 4500, and ESP in UDP 4500
    // (Debian's strongSwan forces NAT-T even without a NAT), both ways for both peers.
    let wire = capture.finish();
    assert!(
        wire.iter().all(|line| !line.contains(" IP ")),
        "IPv4 on the outside link:\n{}",
        wire.join("\n")
    );
    let esp_in_udp = |from: &str, to: &str| {
        wire.iter()
            .filter(|line| line.contains(&format!("IP6 {from}.4500 > {to}.4500: UDP-encap: ESP")))
            .count()
    };
    for peer in ["2001:db8:2::2", "2001:db8:3::3"] {
        assert!(
            esp_in_udp(peer, GATEWAY) >= 8 && esp_in_udp(GATEWAY, peer) >= 8,
            "ESP to and from {peer}:\n{}",
            wire.join("\n")
        );
    }
    // Our NAT-D hashes over the IPv6 addresses are right: the peer finds no NAT on our side,
    // it only fakes one for itself.
    for peer in [sg2, sg3] {
        let log = s.peer_log(peer);
        assert!(log.contains("faking NAT situation"), "{log}");
        assert!(!log.contains("remote host is behind NAT"), "{log}");
        assert!(!log.contains("local host is behind NAT"), "{log}");
    }

    let ike = s.show("services ipsec-vpn ike security-associations detail");
    let ike_sas = ike["ike_security_associations"].as_array().unwrap();
    let mut remotes: Vec<&str> = ike_sas
        .iter()
        .map(|sa| sa["remote_address"].as_str().unwrap())
        .collect();
    remotes.sort();
    assert_eq!(remotes, ["2001:db8:2::2", "2001:db8:3::3"], "{ike:#?}");
    assert!(
        ike_sas
            .iter()
            .all(|sa| sa["state"] == "Matured" && sa["nat_traversal"] == true),
        "{ike:#?}"
    );

    let tunnels = s.tunnels();
    assert_eq!(tunnels.len(), 2, "{tunnels:#?}");
    for tunnel in &tunnels {
        assert_eq!(tunnel["local_gateway"], GATEWAY);
        let sas = tunnel["security_associations"].as_array().unwrap();
        assert_eq!(sas.len(), 2);
        assert!(
            sas.iter().all(|sa| sa["packets"].as_u64().unwrap() >= 4),
            "{sas:#?}"
        );
    }
    let sg3_tunnel = tunnels
        .iter()
        .find(|t| t["remote_gateway"] == "2001:db8:3::3")
        .expect("SG3's tunnel is listed by its IPv6 address");
    assert_eq!(sg3_tunnel["remote_identity"], "fd00:3::/64");

    assert_eq!(reverse_routes(&s, "inet.0"), ["172.16.2.0/24"]);
    assert_eq!(reverse_routes(&s, "inet6.0"), ["fd00:3::/64"]);

    // tunnel-mtu 1400 with the 40-byte outer IPv6 header: an inner IPv4 packet with DF that
    // would not fit gets fragmentation-needed from the gateway; without DF it is split before
    // encryption and arrives.
    let text = ping_text(
        &s,
        "lan",
        &["-c", "1", "-M", "do", "-s", "1400", "172.16.2.1"],
    );
    assert!(
        text.contains("From 172.16.1.1") && text.contains("Frag needed"),
        "no fragmentation-needed answer:\n{text}"
    );
    let text = ping_text(
        &s,
        "lan",
        &[
            "-c",
            "3",
            "-i",
            "0.2",
            "-M",
            "dont",
            "-s",
            "1400",
            "172.16.2.1",
        ],
    );
    assert!(
        text.contains("3 received"),
        "fragmented pings lost:\n{text}"
    );
    assert!(worker_counter(&s, "sent_for_fragmentation") >= 3);
    // An inner IPv6 packet too big for the tunnel gets packet-too-big; the LAN host then
    // fragments at the source and the next ones cross.
    let text = ping_text(
        &s,
        "lan",
        &["-c", "3", "-i", "0.3", "-s", "1400", "fd00:3::1"],
    );
    assert!(
        text.contains("From fd00:1::1") && text.contains("too big"),
        "no packet-too-big answer:\n{text}"
    );
    assert!(text.contains("2 received"), "{text}");
    assert!(worker_counter(&s, "icmp_too_big") >= 2);

    // SG2's delete withdraws its tunnel and its IPv4 reverse route; SG3 keeps working.
    let (ok, out) = s.swanctl(sg2, "--terminate --ike sg1 --timeout 10");
    assert!(ok, "{out}");
    s.wait_until("SG2's tunnel to go", Duration::from_secs(10), || {
        s.tunnels().len() == 1
    });
    assert!(reverse_routes(&s, "inet.0").is_empty());
    assert_eq!(s.ping("lan", None, "fd00:3::1", 2, "0.2"), 2);
    assert_eq!(s.ping("lan", None, "172.16.2.1", 2, "0.2"), 0);

    // The operator clears SG3 by its IPv6 address: the delete reaches the peer over IPv6.
    let cleared = s.show_text_verb(
        "clear",
        "services ipsec-vpn ike security-associations 2001:db8:3::3",
    );
    assert!(cleared.contains("Cleared 1 IKE"), "{cleared}");
    assert!(s.tunnels().is_empty());
    assert!(reverse_routes(&s, "inet6.0").is_empty());
    s.wait_until("SG3 to hear the delete", Duration::from_secs(10), || {
        s.peer_log(sg3).contains("received DELETE for ESP CHILD_SA")
    });
}

/// A static tunnel keyed by hand to a fixed IPv6 peer: strongSwan 5.9.8 always puts ESP in UDP,
/// so plain ESP (next header 50) over IPv6 is exercised by scapy with these keys. The service
/// set has no `ike-access-profile`: static rules alone are a complete service set.
const MANUAL_CONFIG: &str = r#"interfaces {
    ge-0/0/0 {
        unit 0 {
            family inet6 {
                address 2001:db8:1::1/64;
            }
        }
    }
    ge-0/0/1 {
        unit 0 {
            family inet {
                address 172.16.1.1/24;
            }
        }
    }
    sp-1/2/0 {
        unit 1 {
            family inet;
            service-domain inside;
        }
        unit 2 {
            family inet;
            service-domain outside;
        }
    }
}
services {
    service-set manual-service-set {
        next-hop-service {
            inside-service-interface sp-1/2/0.1;
            outside-service-interface sp-1/2/0.2;
        }
        ipsec-vpn-options {
            local-gateway 2001:db8:1::1;
        }
        ipsec-vpn-rules to-sg2;
    }
    ipsec-vpn {
        rule to-sg2 {
            term lan-to-lan {
                from {
                    source-address 172.16.1.0/24;
                    destination-address 172.16.2.0/24;
                }
                then {
                    remote-gateway 2001:db8:2::2;
                    manual {
                        direction bidirectional {
                            protocol esp;
                            spi 16000;
                            authentication {
                                algorithm hmac-sha1-96;
                                key ascii-text "dyntun-sg2-auth-key!";
                            }
                            encryption {
                                algorithm aes-128-cbc;
                                key hexadecimal 0x00112233445566778899aabbccddeeff;
                            }
                        }
                    }
                }
            }
            match-direction input;
        }
    }
}
routing-options {
    static {
        route ::/0 next-hop 2001:db8:1::fe;
        route 172.16.2.0/24 next-hop sp-1/2/0.1;
    }
}
dataplane {
    interface ge-0/0/0 {
        device "net_af_packet0,iface=sg1-out";
    }
    interface ge-0/0/1 {
        device "net_af_packet1,iface=sg1-in";
    }
    pic sp-1/2/0 {
        cores 1;
    }
    control-core 0;
    eal-options [ "--no-huge" "-m" "256" ];
}
"#;

/// Seals three echo requests 172.16.2.1 -> 172.16.1.10 with the manual SA, sends them as raw
/// ESP over IPv6, and exits 0 only if it opens the three echo replies dyntun sends back.
const RAW_ESP_PEER: &str = r#"import socket, sys, time
from scapy.all import AsyncSniffer, IP, IPv6, ICMP, ESP, Raw, conf
from scapy.layers.ipsec import SecurityAssociation

conf.verb = 0
PEER, GATEWAY = sys.argv[1], sys.argv[2]
sa = SecurityAssociation(
    ESP, spi=16000, crypt_algo="AES-CBC",
    crypt_key=bytes.fromhex("00112233445566778899aabbccddeeff"),
    auth_algo="HMAC-SHA1-96", auth_key=b"dyntun-sg2-auth-key!",
    tunnel_header=IPv6(src=PEER, dst=GATEWAY))
sniffer = AsyncSniffer(iface="wan0", filter=f"ip6 and src {GATEWAY} and ip6[6] == 50", store=True)
sniffer.start()
time.sleep(0.5)
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 50)
request = IP(src="172.16.2.1", dst="172.16.1.10") / ICMP(type=8, id=0x4242, seq=7) / Raw(b"outer-ipv6-raw-esp")
for _ in range(3):
    sealed = sa.encrypt(request)
    raw.sendto(bytes(sealed[IPv6].payload), (GATEWAY, 0))
    time.sleep(0.3)
time.sleep(1.5)
sniffer.stop()
replies = 0
for packet in sniffer.results or []:
    try:
        inner = sa.decrypt(IPv6(bytes(packet[IPv6])))
    except Exception as error:
        print(f"undecryptable ESP: {error}")
        continue
    if inner.haslayer(ICMP) and inner[ICMP].type == 0 and inner[IP].src == "172.16.1.10" \
            and bytes(inner[Raw].load) == b"outer-ipv6-raw-esp":
        replies += 1
print(f"esp packets seen: {len(sniffer.results or [])}, echo replies opened: {replies}")
sys.exit(0 if replies == 3 else 1)
"#;

#[test]
fn a_manual_sa_exchanges_raw_esp_in_outer_ipv6_with_scapy() {
    let mut s = Scenario::with_topology("topology_up_v6");
    let config = s.work.join("manual-outer-ipv6.conf");
    std::fs::write(&config, MANUAL_CONFIG).unwrap();
    s.start_gateway_at(&config);
    s.warm_up_lan();
    let capture = Capture::start(&s);
    let peer = Command::new("ip")
        .args(["netns", "exec", &s.ns("sg2"), "/usr/bin/python3", "-c"])
        .args([RAW_ESP_PEER, "2001:db8:2::2", GATEWAY])
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&peer.stdout).into_owned() + &String::from_utf8_lossy(&peer.stderr);
    let wire = capture.finish();
    assert!(
        peer.status.success(),
        "scapy peer:\n{report}\nwire:\n{}\n{}",
        wire.join("\n"),
        s.gateway_log()
    );
    let raw_esp = |from: &str| {
        wire.iter()
            .filter(|line| {
                line.contains(&format!("IP6 {from} > ")) && line.contains(": ESP(spi=0x00003e80")
            })
            .count()
    };
    assert_eq!(raw_esp("2001:db8:2::2"), 3, "{wire:#?}");
    assert_eq!(raw_esp(GATEWAY), 3, "{wire:#?}");
}
