//! IKEv1 tunnel set-up rate over real UDP, dyntun against strongSwan in the same run.
//!
//! A load generator (`dyntun_bench::ike_load`) in its own namespace brings up N tunnels, each
//! from its own source address (Main Mode with the global pre-shared key, NAT-T, Quick Mode
//! with ESP AES-128-GCM, no PFS), `window` at a time, against:
//! - dyntun: the real `dyntun run` daemon on DPDK `net_af_packet` ports in its namespace,
//!   charged for the CPU time of its control thread (`/proc/PID/task/TID/stat`);
//! - charon: strongSwan's daemon (Debian package) in its namespace, with its defaults and again
//!   with `dh_exponent_ansi_x9_42 = no` (short DH exponents, as dyntun uses; OpenSSL 3 seems to
//!   pick short private keys for the well-known MODP groups anyway, the two rows come out
//!   alike), charged for the whole process (`/proc/PID/stat`, every thread).
//!
//! Each responder is started fresh for each DH group and stopped afterwards; the tunnels are
//! counted on the responder (`show … metrics`, `swanctl --stats`) before its CPU is read.
//!
//! `cargo build --release -p dyntun -p dyntun-bench && ./target/release/ike_rate [--quick]
//! [--tunnels N] [--window W] [--dyntun PATH]` prints a markdown table and writes
//! `bench/results/ike_rate.json`. As root; needs strongSwan (`scripts/setup.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use control::ike::dh::DhGroup;
use dyntun_bench::charon_responder::{CharonResponder, CharonSetup};
use dyntun_bench::dyntun_gateway::{config_text, DyntunGateway, GatewaySetup};
use dyntun_bench::ike_load::{raise_open_file_limit, run_load, LoadOutcome, LoadSpec};
use dyntun_bench::ike_rate_topology::{
    IkeRateTopology, CHARON_ADDRESS, DYNTUN_ADDRESS, DYNTUN_INSIDE_IFACE, DYNTUN_NEXT_HOP,
    DYNTUN_OUTSIDE_IFACE,
};
use dyntun_bench::{write_json, Table};
use serde_json::json;

const PSK: &str = "ike rate bench global key";
const LAN: (std::net::Ipv4Addr, u8) = (std::net::Ipv4Addr::new(172, 16, 1, 0), 24);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Dyntun,
    Charon,
    CharonShortExponents,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Dyntun => "dyntun (control thread)",
            Subject::Charon => "charon (Debian defaults)",
            Subject::CharonShortExponents => "charon (dh_exponent_ansi_x9_42 = no)",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Subject::Dyntun => "dyntun",
            Subject::Charon => "charon",
            Subject::CharonShortExponents => "charon_short_exponents",
        }
    }
}

struct Options {
    quick: bool,
    tunnels: Option<usize>,
    window: usize,
    dyntun: PathBuf,
}

fn options() -> Options {
    let mut o = Options {
        quick: false,
        tunnels: None,
        window: 32,
        dyntun: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/dyntun"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--tunnels" => o.tunnels = args.next().and_then(|v| v.parse().ok()),
            "--window" => o.window = args.next().and_then(|v| v.parse().ok()).unwrap_or(32),
            "--dyntun" => o.dyntun = args.next().map(PathBuf::from).unwrap_or(o.dyntun),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

/// The tunnel count per group: group 14 costs ~4× group 2 per exponentiation.
fn tunnels_for(group: DhGroup, o: &Options) -> usize {
    if let Some(n) = o.tunnels {
        return n;
    }
    match (group, o.quick) {
        (DhGroup::Modp1024, true) => 400,
        (_, true) => 150,
        (DhGroup::Modp1024, false) => 2000,
        (_, false) => 1000,
    }
}

/// One responder measured under one load.
struct Measured {
    subject: Subject,
    group: DhGroup,
    load: LoadOutcome,
    responder_tunnels: u64,
    cpu_seconds: f64,
    idle_cpu_per_second: f64,
}

impl Measured {
    fn tunnels_per_cpu_second(&self) -> f64 {
        self.load.completed as f64 / self.cpu_seconds.max(1e-9)
    }
    fn cpu_per_1000(&self) -> f64 {
        self.cpu_seconds * 1000.0 / self.load.completed.max(1) as f64
    }
}

/// A responder under test, whatever it is.
trait Responder {
    fn cpu_seconds(&self) -> Result<f64, String>;
    fn tunnels(&self) -> Result<u64, String>;
    fn log_tail(&self) -> String;
}

impl Responder for DyntunGateway {
    fn cpu_seconds(&self) -> Result<f64, String> {
        self.control_cpu_seconds()
    }
    fn tunnels(&self) -> Result<u64, String> {
        DyntunGateway::tunnels(self)
    }
    fn log_tail(&self) -> String {
        DyntunGateway::log_tail(self)
    }
}

impl Responder for CharonResponder {
    fn cpu_seconds(&self) -> Result<f64, String> {
        CharonResponder::cpu_seconds(self)
    }
    fn tunnels(&self) -> Result<u64, String> {
        self.ike_sas()
    }
    fn log_tail(&self) -> String {
        CharonResponder::log_tail(self)
    }
}

fn start(
    subject: Subject,
    topology: &IkeRateTopology,
    work: &std::path::Path,
    o: &Options,
    run: usize,
) -> Result<Box<dyn Responder>, String> {
    match subject {
        Subject::Dyntun => {
            let config = config_text(&GatewaySetup {
                outside_iface: DYNTUN_OUTSIDE_IFACE,
                inside_iface: DYNTUN_INSIDE_IFACE,
                outside_address: DYNTUN_ADDRESS,
                next_hop: DYNTUN_NEXT_HOP,
                psk: PSK,
            });
            let prefix = format!("ikerate{}x{run}", std::process::id());
            let gw = DyntunGateway::start(
                &o.dyntun,
                &topology.dyntun,
                &work.join(format!("dyntun{run}")),
                &config,
                &prefix,
            )?;
            Ok(Box::new(gw))
        }
        Subject::Charon | Subject::CharonShortExponents => {
            let charon = CharonResponder::start(
                &topology.charon,
                &work.join(format!("charon{run}")),
                &CharonSetup {
                    local_address: CHARON_ADDRESS,
                    psk: PSK,
                    local_ts: "172.16.1.0/24",
                    remote_ts: "20.0.0.0/8",
                    short_exponents: subject == Subject::CharonShortExponents,
                },
            )?;
            Ok(Box::new(charon))
        }
    }
}

fn measure(
    subject: Subject,
    group: DhGroup,
    topology: &IkeRateTopology,
    work: &std::path::Path,
    o: &Options,
    run: usize,
) -> Result<Measured, String> {
    let responder = start(subject, topology, work, o, run)?;
    // A responder that has just started may still be settling (dyntun resolves its next hop);
    // its idle cost is measured and reported, not subtracted.
    std::thread::sleep(Duration::from_millis(500));
    let idle_start = (Instant::now(), responder.cpu_seconds()?);
    std::thread::sleep(Duration::from_secs(1));
    let idle_cpu_per_second =
        (responder.cpu_seconds()? - idle_start.1) / idle_start.0.elapsed().as_secs_f64();

    let address = match subject {
        Subject::Dyntun => DYNTUN_ADDRESS,
        _ => CHARON_ADDRESS,
    };
    let spec = LoadSpec {
        responder: address.parse().expect("address"),
        psk: PSK.into(),
        group,
        tunnels: tunnels_for(group, o),
        window: o.window,
        retransmit_after: Duration::from_secs(2),
        tries: 4,
        responder_network: LAN,
    };
    let cpu_before = responder.cpu_seconds()?;
    let load = std::thread::scope(|s| {
        s.spawn(|| {
            topology
                .load
                .enter_on_this_thread()
                .map_err(|e| format!("setns: {e}"))?;
            Ok::<_, String>(run_load(&spec))
        })
        .join()
        .map_err(|_| "load generator panicked".to_string())?
    })?;
    // The responder installs a tunnel on QM3, which the generator sent last: wait until it
    // counts them all (or stops changing) before reading its CPU time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut responder_tunnels = responder.tunnels()?;
    while responder_tunnels < load.completed as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        responder_tunnels = responder.tunnels()?;
    }
    let cpu_seconds = responder.cpu_seconds()? - cpu_before;
    if responder_tunnels < load.completed as u64 {
        eprintln!(
            "{}: the responder counts {responder_tunnels} of {} tunnels; its log:\n{}",
            subject.name(),
            load.completed,
            responder.log_tail()
        );
    }
    Ok(Measured {
        subject,
        group,
        load,
        responder_tunnels,
        cpu_seconds,
        idle_cpu_per_second,
    })
}

fn main() {
    let o = options();
    if !o.dyntun.exists() {
        eprintln!(
            "{} not found: build it with `cargo build --release -p dyntun`, or pass --dyntun PATH",
            o.dyntun.display()
        );
        std::process::exit(2);
    }
    let started = Instant::now();
    let groups = [DhGroup::Modp1024, DhGroup::Modp2048];
    let subjects: &[Subject] = if o.quick {
        &[Subject::Dyntun, Subject::Charon]
    } else {
        &[
            Subject::Dyntun,
            Subject::Charon,
            Subject::CharonShortExponents,
        ]
    };
    let peers = groups
        .iter()
        .map(|g| tunnels_for(*g, &o))
        .max()
        .unwrap_or(0);
    let open_files = raise_open_file_limit();
    if (open_files as usize) < 2 * peers + 64 {
        eprintln!("open-file limit {open_files} is too low for {peers} tunnels (two sockets each)");
        std::process::exit(2);
    }
    let tag = format!("ikr{}", std::process::id());
    let work = std::env::temp_dir().join(format!("dyntun-{tag}"));
    let mut measured = Vec::new();
    let mut errors = Vec::new();
    {
        let topology = IkeRateTopology::build(&tag, peers).unwrap_or_else(|e| {
            eprintln!("topology: {e}");
            std::process::exit(2)
        });
        let mut run = 0;
        for group in groups {
            for &subject in subjects {
                run += 1;
                match measure(subject, group, &topology, &work, &o, run) {
                    Ok(m) => measured.push(m),
                    Err(e) => {
                        eprintln!("{} group {}: {e}", subject.name(), group as u16);
                        errors.push(format!("{} group {}: {e}", subject.key(), group as u16));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    let dyntun_rate = |group: DhGroup| {
        measured
            .iter()
            .find(|m| m.group == group && m.subject == Subject::Dyntun)
            .map(Measured::tunnels_per_cpu_second)
    };
    let mut table = Table::new([
        "DH group",
        "responder",
        "tunnels up (generator / responder)",
        "tunnels/s (wall)",
        "responder CPU-s per 1,000 tunnels",
        "tunnels per responder CPU-s",
        "dyntun ÷ this",
        "retransmissions",
    ]);
    let mut rows = Vec::new();
    let mut all_up = errors.is_empty();
    for m in &measured {
        let ratio = dyntun_rate(m.group)
            .filter(|_| m.subject != Subject::Dyntun)
            .map(|d| d / m.tunnels_per_cpu_second());
        all_up &=
            m.load.completed == m.load.attempted && m.responder_tunnels >= m.load.completed as u64;
        table.row([
            (m.group as u16).to_string(),
            m.subject.name().to_string(),
            format!(
                "{} / {} of {}",
                m.load.completed, m.responder_tunnels, m.load.attempted
            ),
            format!("{:.0}", m.load.tunnels_per_second()),
            format!("{:.3}", m.cpu_per_1000()),
            format!("{:.0}", m.tunnels_per_cpu_second()),
            ratio.map_or("-".into(), |r| format!("{r:.2}")),
            m.load.retransmissions.to_string(),
        ]);
        for f in m.load.failures.iter().take(3) {
            eprintln!("{} group {}: {f}", m.subject.key(), m.group as u16);
        }
        rows.push(json!({
            "dh_group": m.group as u16,
            "responder": m.subject.key(),
            "description": m.subject.name(),
            "tunnels_attempted": m.load.attempted,
            "tunnels_completed": m.load.completed,
            "tunnels_counted_by_responder": m.responder_tunnels,
            "failures": m.load.failures.len(),
            "first_failures": m.load.failures.iter().take(5).collect::<Vec<_>>(),
            "retransmissions": m.load.retransmissions,
            "wall_seconds": m.load.wall.as_secs_f64(),
            "tunnels_per_second_wall": m.load.tunnels_per_second(),
            "responder_cpu_seconds": m.cpu_seconds,
            "responder_cpu_seconds_per_1000_tunnels": m.cpu_per_1000(),
            "tunnels_per_responder_cpu_second": m.tunnels_per_cpu_second(),
            "responder_idle_cpu_per_second": m.idle_cpu_per_second,
            "generator_cpu_seconds": m.load.generator_cpu.as_secs_f64(),
            "dyntun_over_this": dyntun_rate(m.group).map(|d| d / m.tunnels_per_cpu_second()),
        }));
    }
    println!("{}", table.markdown());
    println!(
        "IKEv1 MM (AES-128-CBC/SHA1/PSK, NAT-T) + QM (ESP AES-128-GCM, no PFS), one source \
         address per tunnel, {} in flight; responders idle at {}",
        o.window,
        measured
            .iter()
            .map(|m| format!("{} {:.3}", m.subject.key(), m.idle_cpu_per_second))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = json!({
        "benchmark": "ike_rate",
        "mode": if o.quick { "quick" } else { "full" },
        "window": o.window,
        "phase1": "AES-128-CBC / SHA1 / PSK (global key), NAT-T (RFC 3947), INITIAL-CONTACT",
        "phase2": "ESP AES-128-GCM-16, no PFS, one /24 per peer",
        "dyntun": "dyntun run on net_af_packet, control thread CPU from /proc/PID/task/TID/stat",
        "charon": "strongSwan charon (Debian), kernel-libipsec, whole-process CPU from /proc/PID/stat",
        "rows": rows,
        "errors": errors,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    match write_json("ike_rate", &out) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write results: {e}"),
    }
    if !all_up {
        eprintln!("not every tunnel came up on every responder: see above");
        std::process::exit(1);
    }
}
