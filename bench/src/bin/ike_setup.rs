//! IKEv1 tunnel set-up rate: an in-process load generator brings up N tunnels (Main Mode with a
//! pre-shared key, then Quick Mode) against dyntun's sans-IO responder, one new peer address per
//! tunnel, as remote gateways with dynamic addresses do. The initiator runs on the same thread
//! but only the responder's share is charged: its CPU time is read from the thread clock around
//! every call into the responder, so the figure is what the control thread would spend.
//!
//! `cargo run --release -p dyntun-bench --bin ike_setup [-- --quick]` prints a markdown table and
//! writes `bench/results/ike_setup.json`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::DhGroup;
use control::ike::identity::{Identity, IdentityData};
use control::ike::test_initiator::{Phase1Params, QuickParams, TestInitiator};
use control::ike::{IkeEvent, PskTable, Responder, ResponderPolicy, Secret, Transmit};
use dataplane::sa::{Cipher, Integrity};
use dyntun_bench::{thread_cpu_ns, write_json, Table};
use serde_json::json;

const PSK: &str = "bench global key";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 1);

struct Case {
    group: DhGroup,
    tunnels_full: usize,
    tunnels_quick: usize,
}

const CASES: [Case; 2] = [
    Case {
        group: DhGroup::Modp1024,
        tunnels_full: 1000,
        tunnels_quick: 200,
    },
    Case {
        group: DhGroup::Modp2048,
        tunnels_full: 400,
        tunnels_quick: 60,
    },
];

/// The responder plus the CPU time spent inside it.
struct ChargedResponder {
    responder: Responder,
    cpu_ns: u64,
}

impl ChargedResponder {
    /// Delivers one datagram and returns the replies (NAT-T marker removed), charging the
    /// responder for the delivery and for draining its transmit queue.
    fn deliver(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        let start = thread_cpu_ns();
        self.responder
            .handle_datagram(Instant::now(), local, remote, bytes);
        let mut replies = Vec::new();
        while let Some(Transmit { local, bytes, .. }) = self.responder.poll_transmit() {
            replies.push(bytes);
            let _ = local;
        }
        self.cpu_ns += thread_cpu_ns() - start;
        replies
            .into_iter()
            .map(|b| {
                if local.port() == 4500 && b.starts_with(&[0, 0, 0, 0]) {
                    b[4..].to_vec()
                } else {
                    b
                }
            })
            .collect()
    }

    fn drain_events(&mut self) -> (usize, usize, Vec<String>) {
        let start = thread_cpu_ns();
        let (mut ike_up, mut child_up, mut failures) = (0, 0, Vec::new());
        while let Some(event) = self.responder.poll_event() {
            match event {
                IkeEvent::IkeSaUp { .. } => ike_up += 1,
                IkeEvent::ChildSaUp { .. } => child_up += 1,
                IkeEvent::Failure(f) => failures.push(format!("{:?}", f.reason)),
                _ => {}
            }
        }
        self.cpu_ns += thread_cpu_ns() - start;
        (ike_up, child_up, failures)
    }
}

fn one_reply(mut replies: Vec<Vec<u8>>, step: &str) -> Result<Vec<u8>, String> {
    match replies.len() {
        1 => Ok(replies.pop().unwrap_or_default()),
        n => Err(format!("{step}: expected one reply, got {n}")),
    }
}

fn subnet(net: Ipv4Addr, mask: Ipv4Addr) -> Identity {
    Identity {
        data: IdentityData::Ipv4Subnet(net, mask),
        protocol: 0,
        port: 0,
    }
}

/// Tunnel `i`'s peer address and protected network: distinct for every tunnel.
fn peer_of(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let n = i as u32;
    (
        Ipv4Addr::from(0x1e00_0000 + n),        // 30.0.0.0 + i
        Ipv4Addr::from(0x1400_0000 + (n << 8)), // 20.0.0.0 + i·256, a /24
    )
}

fn bring_up(r: &mut ChargedResponder, i: usize, group: DhGroup) -> Result<(), String> {
    let (peer_ip, peer_net) = peer_of(i);
    let gw = |port| SocketAddr::new(IpAddr::V4(GATEWAY), port);
    let peer = |port| SocketAddr::new(IpAddr::V4(peer_ip), port);
    let params = Phase1Params {
        cipher: IkeCipher::AesCbc { key_bits: 128 },
        hash: HashAlg::Sha1,
        group,
        lifetime_seconds: 28800,
        natt: true,
    };
    let mut init = TestInitiator::new(peer(500), gw(500), PSK, params);
    let m1 = init.mm1();
    init.on_mm2(&one_reply(r.deliver(gw(500), peer(500), &m1), "MM2")?)?;
    let m3 = init.mm3();
    init.on_mm4(&one_reply(r.deliver(gw(500), peer(500), &m3), "MM4")?)?;
    let m5 = init.mm5(true);
    init.on_mm6(&one_reply(r.deliver(gw(4500), peer(4500), &m5), "MM6")?)?;
    let quick = QuickParams {
        esp: Some((Cipher::AesGcm128, Integrity::None)),
        ah: None,
        pfs: None,
        ids: Some((
            subnet(peer_net, Ipv4Addr::new(255, 255, 255, 0)),
            subnet(
                Ipv4Addr::new(172, 16, 1, 0),
                Ipv4Addr::new(255, 255, 255, 0),
            ),
        )),
        lifetime_seconds: Some(3600),
        lifetime_kilobytes: None,
        commit: false,
    };
    let (_, q1) = init.qm1(&quick);
    let children = init.on_qm2(&one_reply(r.deliver(gw(4500), peer(4500), &q1), "QM2")?)?;
    if children.is_empty() {
        return Err("QM2 carried no child SA".into());
    }
    let q3 = init.qm3();
    let extra = r.deliver(gw(4500), peer(4500), &q3);
    if !extra.is_empty() {
        return Err("the responder answered QM3".into());
    }
    Ok(())
}

struct Outcome {
    tunnels: usize,
    children_up: usize,
    ike_up: usize,
    failures: Vec<String>,
    responder_cpu_s: f64,
    wall_s: f64,
}

fn run_case(group: DhGroup, tunnels: usize) -> Outcome {
    let policy = ResponderPolicy::new(
        vec![IpAddr::V4(GATEWAY)],
        PskTable {
            explicit: Vec::new(),
            global: Some(Secret::from(PSK)),
        },
    );
    let mut r = ChargedResponder {
        responder: Responder::new(policy),
        cpu_ns: 0,
    };
    let (mut ike_up, mut children_up, mut failures) = (0, 0, Vec::new());
    let wall = Instant::now();
    for i in 0..tunnels {
        if let Err(e) = bring_up(&mut r, i, group) {
            failures.push(format!("tunnel {i}: {e}"));
        }
        let (ike, child, fails) = r.drain_events();
        ike_up += ike;
        children_up += child;
        failures.extend(fails);
    }
    Outcome {
        tunnels,
        children_up,
        ike_up,
        failures,
        responder_cpu_s: r.cpu_ns as f64 / 1e9,
        wall_s: wall.elapsed().as_secs_f64(),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut table = Table::new([
        "DH group",
        "tunnels",
        "IKE SAs up",
        "child SAs up",
        "responder tunnels/s (per control-thread CPU-s)",
        "control-thread CPU-s per 1,000 tunnels",
        "in-process loop tunnels/s (initiator + responder, wall)",
    ]);
    let mut rows = Vec::new();
    let mut all_up = true;
    for case in CASES {
        let tunnels = if quick {
            case.tunnels_quick
        } else {
            case.tunnels_full
        };
        let o = run_case(case.group, tunnels);
        all_up &= o.children_up == o.tunnels && o.failures.is_empty();
        let per_cpu_s = o.tunnels as f64 / o.responder_cpu_s;
        let cpu_per_1000 = o.responder_cpu_s * 1000.0 / o.tunnels as f64;
        let loop_rate = o.tunnels as f64 / o.wall_s;
        table.row([
            format!("{}", case.group as u16),
            o.tunnels.to_string(),
            o.ike_up.to_string(),
            o.children_up.to_string(),
            format!("{per_cpu_s:.0}"),
            format!("{cpu_per_1000:.3}"),
            format!("{loop_rate:.0}"),
        ]);
        for f in o.failures.iter().take(5) {
            eprintln!("group {}: {f}", case.group as u16);
        }
        rows.push(json!({
            "dh_group": case.group as u16,
            "phase1": "AES-128-CBC / SHA1 / PSK, NAT-T",
            "phase2": "ESP AES-128-GCM, no PFS",
            "tunnels": o.tunnels,
            "ike_sas_up": o.ike_up,
            "child_sas_up": o.children_up,
            "failures": o.failures.len(),
            "responder_cpu_seconds": o.responder_cpu_s,
            "responder_tunnels_per_cpu_second": per_cpu_s,
            "control_cpu_seconds_per_1000_tunnels": cpu_per_1000,
            "loop_wall_seconds": o.wall_s,
            "loop_tunnels_per_second": loop_rate,
        }));
    }
    println!("{}", table.markdown());
    let out = json!({
        "benchmark": "ike_setup",
        "mode": if quick { "quick" } else { "full" },
        "responder": "control::ike::Responder, in-process, one thread",
        "cases": rows,
    });
    match write_json("ike_setup", &out) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write results: {e}"),
    }
    if !all_up {
        eprintln!("some tunnels did not come up: the figures above do not count them");
        std::process::exit(1);
    }
}
