//! pktgen-style gateway throughput, in process: IPv4 UDP frames are written into mbufs of a DPDK
//! mempool (EAL with `--no-huge`) and handed to a real `PicWorker` by bursts of 32, as its rx
//! loop would; what comes out is counted by disposition and a sample is checked against the
//! input (sealed frames are opened with the peer's keys, opened frames are compared with what
//! the peer sealed). Directions: encrypt (LAN → tunnel) and decrypt (ESP-in-UDP from a peer →
//! LAN). The worker's tables hold 1, 1,000 or 100,000 tunnels, each with its own SA pair, dynamic
//! rule and reverse route, installed through `TableUpdate`s; the flows spread over all tunnels.
//!
//! Every row sits next to references measured in the same run: the ESP engine alone on the same
//! inner packets (`OutboundSa`/`InboundSa` on heap buffers, no parsing, lookups or forwarding),
//! the I/O ceiling (`dpdk-testpmd --forward-mode=io` on two `net_null` ports with frames of the
//! row's length, packets per CPU-second of its forwarding lcore), and `openssl speed -evp` for
//! the suite's cipher at the same length. The gateway rows here do no port I/O (the generator
//! hands mbufs to `process_burst`); `pktgen_ports` runs the whole worker loop through ports.
//!
//! `cargo run --release -p dyntun-bench --bin pktgen [-- --quick]` prints a markdown table and
//! writes `bench/results/pktgen.json` and `bench/results/pktgen.png`. `--tunnels 100000` (a
//! comma-separated list) and `--suites 1` (the first N suites) narrow a run to the rows being
//! studied, e.g. under `perf record`.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa, Verdict};
use dataplane::pipeline::{Disposition, PicWorker};
use dataplane::sa::Direction;
use dpdk::{Eal, MbufBurst, Mempool};
use dyntun_bench::gateway_streams::{
    build_worker, inbound_spi, inner_ip_len, outbound_spi, peer_address, peer_host, peer_sealer,
    sa_spec, udp_packet, Size, Suite, Traffic, Way, BURST, FCS, GW_OUTSIDE, IMIX, IN_MEMORY_PORTS,
    LAN_HOST, SUITES,
};
use dyntun_bench::testpmd::{run_testpmd, TestpmdRun, TestpmdSpec};
use dyntun_bench::{results_dir, write_json, LinePlot, Series, Table};
use serde_json::json;

struct Settings {
    sizes: Vec<Size>,
    tunnel_counts: Vec<usize>,
    row_time: Duration,
    rounds: usize,
    testpmd_seconds: u64,
}

fn settings(quick: bool) -> Settings {
    if quick {
        Settings {
            sizes: vec![Size::Frame(64), Size::Frame(1420), Size::Imix],
            tunnel_counts: vec![1, 1000],
            row_time: Duration::from_millis(70),
            rounds: 2,
            testpmd_seconds: 2,
        }
    } else {
        Settings {
            sizes: vec![
                Size::Frame(64),
                Size::Frame(128),
                Size::Frame(512),
                Size::Frame(1420),
                Size::Frame(1518),
                Size::Imix,
            ],
            tunnel_counts: vec![1, 1000, 100_000],
            row_time: Duration::from_millis(170),
            rounds: 3,
            testpmd_seconds: 3,
        }
    }
}

struct Measured {
    packets: u64,
    wire_bytes: f64,
    seconds: f64,
    bad_disposition: u64,
    verified: u64,
    verify_errors: Vec<String>,
}

impl Measured {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.seconds
    }
    fn gbps(&self) -> f64 {
        self.wire_bytes * 8.0 / self.seconds / 1e9
    }
}

/// Runs the stream through the worker for `rounds` windows of `row_time`; the fastest window
/// counts, since interference from other tenants only ever slows a window down. Only the time
/// inside `process_burst` is charged: filling mbufs stands in for the NIC's DMA.
#[allow(clippy::too_many_arguments)]
fn run_row(
    worker: &mut PicWorker,
    pool: &Mempool,
    traffic: &Traffic,
    suite: Suite,
    size: Size,
    row_time: Duration,
    rounds: usize,
    seq: &mut u64,
) -> Measured {
    let mut best: Option<Measured> = None;
    let mut burst = MbufBurst::new();
    let mut out = [Disposition::Drop; BURST];
    let expected = traffic.expected(IN_MEMORY_PORTS);
    let (mut bad_total, mut verified, mut errors) = (0u64, 0u64, Vec::new());
    for _ in 0..rounds {
        let (mut packets, mut wire, mut inside) = (0u64, 0f64, Duration::ZERO);
        let window = Instant::now();
        let mut bursts = 0u64;
        while window.elapsed() < row_time {
            burst.clear();
            if !pool.alloc_into(&mut burst, BURST) {
                panic!("mempool exhausted");
            }
            let first = *seq;
            let mut lens = [0usize; BURST];
            for (i, m) in burst.as_mut_slice().iter_mut().enumerate() {
                traffic.fill(size, *seq, m);
                lens[i] = size.frame_len(*seq);
                *seq += 1;
            }
            let start = Instant::now();
            worker.process_burst(
                traffic.rx_port(IN_MEMORY_PORTS),
                burst.as_mut_slice(),
                &mut out,
                1,
            );
            inside += start.elapsed();
            for (i, d) in out.iter().enumerate() {
                if *d == expected {
                    packets += 1;
                    wire += lens[i] as f64;
                } else {
                    bad_total += 1;
                }
            }
            // A sample: the first packet of every 64th burst, checked end to end.
            if bursts & 63 == 0 && out[0] == expected {
                match traffic.verify(suite, size, first, burst.as_slice()[0].data()) {
                    Ok(()) => verified += 1,
                    Err(e) => errors.push(e),
                }
            }
            bursts += 1;
        }
        let m = Measured {
            packets,
            wire_bytes: wire,
            seconds: inside.as_secs_f64().max(1e-9),
            bad_disposition: 0,
            verified: 0,
            verify_errors: Vec::new(),
        };
        let faster = match &best {
            None => true,
            Some(b) => m.pps() > b.pps(),
        };
        if faster {
            best = Some(m);
        }
    }
    burst.clear();
    let mut best = best.expect("at least one round");
    best.bad_disposition = bad_total;
    best.verified = verified;
    best.verify_errors = errors;
    best
}

/// The ESP engine alone on the same inner packets: one SA, heap buffers, no parsing, lookups or
/// forwarding. Gbps counts the same LAN-side frame bytes as the gateway rows.
fn engine_ceiling(suite: Suite, size: Size, way: Way, row_time: Duration, rounds: usize) -> f64 {
    let inner_of = |seq: u64| {
        udp_packet(
            peer_host(0),
            LAN_HOST,
            inner_ip_len(size.frame_len(seq)),
            seq,
        )
    };
    let patterns: Vec<Vec<u8>> = (0..IMIX.len() as u64)
        .map(|seq| match way {
            Way::Encrypt => inner_of(seq),
            Way::Decrypt => {
                let mut b = HeapBuf::from_slice(&inner_of(seq));
                peer_sealer(suite, 0)
                    .encapsulate(&mut b, 1)
                    .0
                    .expect("seal");
                b.data().to_vec()
            }
        })
        .collect();
    let mut sealer = OutboundSa::new(
        &sa_spec(
            suite,
            outbound_spi(0),
            Direction::Outbound,
            GW_OUTSIDE,
            peer_address(0),
        ),
        0,
        Backend::Fastest,
    )
    .expect("SA");
    let mut opener = InboundSa::new(
        &sa_spec(
            suite,
            inbound_spi(0),
            Direction::Inbound,
            GW_OUTSIDE,
            peer_address(0),
        ),
        0,
        Backend::Fastest,
    )
    .expect("SA");
    let mut bufs: Vec<HeapBuf> = (0..BURST)
        .map(|_| HeapBuf::with_capacity(2048, 128))
        .collect();
    let mut verdicts: Vec<Verdict> = vec![Ok(()); BURST];
    let mut best = 0f64;
    for _ in 0..rounds {
        let (mut wire, mut inside) = (0f64, Duration::ZERO);
        let window = Instant::now();
        let mut seq = 0u64;
        while window.elapsed() < row_time {
            for b in bufs.iter_mut() {
                let p = &patterns[(seq % IMIX.len() as u64) as usize];
                b.reset(128);
                b.append(p.len()).expect("room").copy_from_slice(p);
                wire += size.frame_len(seq) as f64;
                seq += 1;
            }
            let start = Instant::now();
            match way {
                Way::Encrypt => {
                    sealer.encapsulate_burst(&mut bufs, &mut verdicts, 1);
                }
                Way::Decrypt => {
                    opener.decapsulate_burst(&mut bufs, &mut verdicts, 1);
                }
            }
            inside += start.elapsed();
            if verdicts.iter().any(|v| v.is_err()) {
                // The engine refused (e.g. a frame beyond the MTU): no ceiling for this size.
                return f64::NAN;
            }
        }
        best = best.max(wire * 8.0 / inside.as_secs_f64() / 1e9);
    }
    best
}

/// `dpdk-testpmd --forward-mode=io` on two `net_null` ports whose frames have the row's length
/// (without FCS; IMIX at its mean): what a core does with I/O alone, measured in this run.
fn io_ceiling(size: Size, seconds: u64) -> Result<TestpmdRun, String> {
    let bytes = size.mean_frame_len().round() as usize - FCS;
    run_testpmd(&TestpmdSpec {
        vdevs: vec![
            format!("net_null0,size={bytes}"),
            format!("net_null1,size={bytes}"),
        ],
        forward_mode: "io".into(),
        seconds,
        tx_first: false,
        mbufs: 8192,
    })
}

/// `openssl speed -evp CIPHER -bytes N` in bytes per second, or None if openssl refuses.
fn openssl_speed(cipher: &str, bytes: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-mr",
            "-seconds",
            "1",
            "-bytes",
            &bytes.to_string(),
            "-evp",
            cipher,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("+F:"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

fn eal_args() -> Vec<String> {
    [
        "-l",
        "0",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
        // No --file-prefix: `Eal::init` then picks one per process and removes its runtime
        // directory at cleanup.
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The value after `flag` on the command line, if any.
fn flag_value(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut s = settings(quick);
    if let Some(list) = flag_value("--tunnels") {
        s.tunnel_counts = list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("--tunnels takes numbers, e.g. 1,100000")
            })
            .collect();
    }
    let suite_count = flag_value("--suites").map_or(SUITES.len(), |n| {
        n.parse().expect("--suites takes a number of suites")
    });
    let started = Instant::now();
    let eal = Eal::init(eal_args()).unwrap_or_else(|e| {
        eprintln!("EAL: {e}");
        std::process::exit(2)
    });
    let pool = Mempool::create("pktgen", 4095, 64, Mempool::DEFAULT_DATA_ROOM).expect("mempool");

    // openssl first, one figure per suite and length, shared by both directions.
    let suites: Vec<Suite> = SUITES.iter().copied().take(suite_count).collect();
    let mut openssl: HashMap<(&str, Size), Option<f64>> = HashMap::new();
    for suite in &suites {
        for size in &s.sizes {
            let bytes = inner_ip_len(size.mean_frame_len().round() as usize);
            // openssl's CBC ciphers want whole blocks.
            let bytes = bytes.div_ceil(16) * 16;
            openssl.insert((suite.openssl, *size), openssl_speed(suite.openssl, bytes));
        }
    }

    // The I/O ceiling: testpmd io on two net_null ports with frames of the row's length.
    let io_ceilings: HashMap<Size, Result<TestpmdRun, String>> = s
        .sizes
        .iter()
        .map(|size| (*size, io_ceiling(*size, s.testpmd_seconds)))
        .collect();
    for (size, run) in &io_ceilings {
        if let Err(e) = run {
            eprintln!("testpmd ceiling for {}: {e}", size.label());
        }
    }

    let mut table = Table::new([
        "suite",
        "direction",
        "tunnels",
        "frame B",
        "Mpps/core",
        "Gbps/core",
        "engine-only Gbps",
        "gateway/engine",
        "testpmd io Mpps",
        "gateway/testpmd",
        "openssl Gbps",
        "verified",
        "not forwarded",
    ]);
    let mut rows = Vec::new();
    let mut plot_points: HashMap<(&str, Size), f64> = HashMap::new();
    // The plot shows the middle of the sweep: enough tunnels to leave the caches of one SA,
    // few enough that every SA is touched often.
    let plot_tunnels = if s.tunnel_counts.contains(&1000) {
        1000
    } else {
        *s.tunnel_counts.last().unwrap_or(&1)
    };
    let mut failures = 0usize;
    for suite in &suites {
        let ceilings: HashMap<(Size, &str), f64> = s
            .sizes
            .iter()
            .flat_map(|size| [Way::Encrypt, Way::Decrypt].map(|w| (*size, w)))
            .map(|(size, way)| {
                let rounds = s.rounds;
                (
                    (size, way.name()),
                    engine_ceiling(*suite, size, way, s.row_time / 2, rounds),
                )
            })
            .collect();
        for &tunnels in &s.tunnel_counts {
            let setup = Instant::now();
            let (mut worker, counters) = build_worker(*suite, tunnels, IN_MEMORY_PORTS);
            let setup_s = setup.elapsed().as_secs_f64();
            let mut seq = 0u64;
            for &size in &s.sizes {
                for way in [Way::Encrypt, Way::Decrypt] {
                    let traffic = match way {
                        Way::Encrypt => Traffic::encrypt(size, tunnels),
                        Way::Decrypt => Traffic::decrypt(*suite, size, tunnels),
                    };
                    let before = counters.snapshot();
                    let m = run_row(
                        &mut worker,
                        &pool,
                        &traffic,
                        *suite,
                        size,
                        s.row_time,
                        s.rounds,
                        &mut seq,
                    );
                    let after = counters.snapshot();
                    let ceiling = ceilings[&(size, way.name())];
                    let ossl = openssl[&(suite.openssl, size)];
                    let io_mpps = io_ceilings[&size]
                        .as_ref()
                        .ok()
                        .map(TestpmdRun::mpps_per_cpu_second);
                    let ossl_gbps = ossl.map(|b| b * 8.0 / 1e9);
                    if !m.verify_errors.is_empty() || m.verified == 0 && m.packets > 0 {
                        failures += 1;
                        for e in m.verify_errors.iter().take(3) {
                            eprintln!("{} {} {}: {e}", suite.name, way.name(), size.label());
                        }
                    }
                    let drops: Vec<(&str, u64)> = after
                        .fields()
                        .into_iter()
                        .zip(before.fields())
                        .filter(|((name, _), _)| name.starts_with("drop_"))
                        .map(|((name, a), (_, b))| (name, a - b))
                        .filter(|(_, n)| *n > 0)
                        .collect();
                    if way == Way::Encrypt && tunnels == plot_tunnels {
                        plot_points.insert((suite.name, size), m.gbps());
                    }
                    table.row([
                        suite.name.to_string(),
                        way.name().to_string(),
                        tunnels.to_string(),
                        size.label(),
                        format!("{:.3}", m.pps() / 1e6),
                        format!("{:.2}", m.gbps()),
                        format!("{ceiling:.2}"),
                        format!("{:.2}", m.gbps() / ceiling),
                        io_mpps.map_or("-".into(), |t| format!("{t:.1}")),
                        io_mpps.map_or("-".into(), |t| format!("{:.3}", m.pps() / 1e6 / t)),
                        ossl_gbps.map_or("-".into(), |g| format!("{g:.2}")),
                        format!(
                            "{}/{}",
                            m.verified,
                            m.verified + m.verify_errors.len() as u64
                        ),
                        if m.bad_disposition == 0 {
                            "0".into()
                        } else {
                            format!(
                                "{} ({})",
                                m.bad_disposition,
                                drops
                                    .iter()
                                    .map(|(n, c)| format!("{n}={c}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            )
                        },
                    ]);
                    rows.push(json!({
                        "suite": suite.name,
                        "direction": way.name(),
                        "tunnels": tunnels,
                        "frame_bytes": size.label(),
                        "mean_frame_bytes": size.mean_frame_len(),
                        "packets_per_second_per_core": m.pps(),
                        "gbps_per_core": m.gbps(),
                        "packets_counted": m.packets,
                        "seconds_in_worker": m.seconds,
                        "engine_only_gbps": if ceiling.is_finite() { json!(ceiling) } else { json!(null) },
                        "testpmd_io_mpps_per_cpu_second": io_mpps,
                        "gateway_over_testpmd": io_mpps.map(|t| m.pps() / 1e6 / t),
                        "openssl_speed_gbps": ossl_gbps,
                        "openssl_cipher": suite.openssl,
                        "sample_verified": m.verified,
                        "sample_mismatches": m.verify_errors.len(),
                        "not_forwarded": m.bad_disposition,
                        "drops": drops.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
                        "table_setup_seconds": setup_s,
                    }));
                }
            }
        }
    }
    println!("{}", table.markdown());
    let plot = LinePlot {
        title: format!("dyntun encrypt, one worker core, {plot_tunnels} tunnels"),
        x_label: "frame bytes".into(),
        y_label: "Gbps per core".into(),
        categories: s.sizes.iter().map(|z| z.label()).collect(),
        series: suites
            .iter()
            .map(|suite| Series {
                name: suite.name.into(),
                values: s
                    .sizes
                    .iter()
                    .map(|z| plot_points.get(&(suite.name, *z)).copied())
                    .collect(),
            })
            .collect(),
    };
    let png = results_dir().join("pktgen.png");
    if let Err(e) = plot.write_png(&png) {
        eprintln!("could not write {}: {e}", png.display());
    }
    let out = json!({
        "benchmark": "pktgen",
        "mode": if quick { "quick" } else { "full" },
        "worker": "dataplane::pipeline::PicWorker::process_burst on DPDK mbufs (--no-huge mempool), bursts of 32, one core",
        "frame_bytes_note": "frame sizes include the 4-byte FCS; Gbps counts LAN-side frame bytes (no preamble/IFG)",
        "decrypt_pool_per_size": "one pre-sealed frame per tunnel",
        "anti_replay": "off (the decrypt pool is replayed)",
        "backend": "Backend::Fastest",
        "io_ceiling": {
            "what": "dpdk-testpmd --forward-mode=io, two net_null ports (size = frame without FCS), one forwarding lcore, same run",
            "per_size": io_ceilings.iter().map(|(size, run)| json!({
                "frame_bytes": size.label(),
                "mpps_per_cpu_second": run.as_ref().ok().map(TestpmdRun::mpps_per_cpu_second),
                "wall_median_mpps": run.as_ref().ok().map(TestpmdRun::wall_median_mpps),
                "error": run.as_ref().err(),
            })).collect::<Vec<_>>(),
        },
        "rows": rows,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    match write_json("pktgen", &out) {
        Ok(path) => println!("wrote {} and {}", path.display(), png.display()),
        Err(e) => eprintln!("could not write results: {e}"),
    }
    let _ = eal.cleanup();
    if failures > 0 {
        eprintln!("{failures} rows failed verification");
        std::process::exit(1);
    }
}
