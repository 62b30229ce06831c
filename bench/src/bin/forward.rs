//! rx→tx forwarding on one core through the `dpdk` safe layer, next to `dpdk-testpmd` on the same
//! vdevs in the same run (two net_null ports, port 0 ⇄ port 1, burst 32).
//!
//! Modes: `io` forwards untouched (testpmd `--forward-mode=io`); `macswap` swaps the Ethernet
//! addresses of every packet (testpmd `--forward-mode=macswap`), so packet data is touched.
//!
//! Usage: `cargo run --release -p dyntun-bench --bin forward -- [seconds-per-window] [rounds]`
//! (defaults 4 and 3). Windows alternate between us and testpmd; each window's first second is
//! warm-up; the table shows medians of the per-second rates. Writes `bench/results/forward.json`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{lcore, Eal, MbufBurst, Mempool, Port, PortConfig, RxQueue, TxQueue};
use serde_json::json;

const MBUFS: u32 = 8191;
const MBUF_CACHE: u32 = 250;
const VDEVS: [&str; 2] = ["net_null0", "net_null1"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Io,
    MacSwap,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Io => "io",
            Mode::MacSwap => "macswap",
        }
    }
}

struct Row {
    mode: Mode,
    ours_median: f64,
    theirs_median: f64,
    ours_best: f64,
    theirs_best: f64,
}

fn ratio(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        f64::NAN
    }
}

fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let mid = samples.len() / 2;
    if samples.len() % 2 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    }
}

#[inline(always)]
fn swap_macs(frame: &mut [u8]) {
    if frame.len() >= 12 {
        let (dst, rest) = frame.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
}

/// One forwarding loop: each port's rx goes out of the other port's tx.
fn forward(
    mut paths: Vec<(RxQueue, TxQueue)>,
    mode: Mode,
    stop: Arc<AtomicBool>,
) -> Vec<(RxQueue, TxQueue)> {
    let mut burst = MbufBurst::new();
    while !stop.load(Ordering::Relaxed) {
        for (rx, tx) in paths.iter_mut() {
            if rx.rx(&mut burst) == 0 {
                continue;
            }
            if mode == Mode::MacSwap {
                for m in burst.as_mut_slice() {
                    swap_macs(m.data_mut());
                }
            }
            tx.tx(&mut burst);
            // What the PMD did not take is dropped, as testpmd does.
            burst.clear();
        }
    }
    paths
}

fn tx_total(ports: &[Port]) -> u64 {
    ports
        .iter()
        .map(|p| p.stats().map(|s| s.tx_packets).unwrap_or(0))
        .sum()
}

/// Per-second forwarding rates (packets per second, both directions together) of our loop.
fn run_ours(
    ports: &[Port],
    paths: Vec<(RxQueue, TxQueue)>,
    worker: u32,
    mode: Mode,
    seconds: u64,
) -> (Vec<f64>, Vec<(RxQueue, TxQueue)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx_back, rx_back) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let running = lcore::launch(worker, move || {
        let paths = forward(paths, mode, flag);
        let _ = tx_back.send(paths);
        0
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rates = Vec::new();
    let mut last = (Instant::now(), tx_total(ports));
    for second in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let now = (Instant::now(), tx_total(ports));
        if second > 0 {
            rates.push((now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64());
        }
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    running.wait();
    let paths = rx_back.recv().expect("worker hands the queues back");
    (rates, paths)
}

fn testpmd_args(mode: Mode) -> Vec<String> {
    let prefix = format!("dyntun-bench-tp-{}", std::process::id());
    let mut args: Vec<String> = [
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--file-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(VDEVS.iter().map(|v| format!("--vdev={v}")));
    args.push("--".into());
    for a in [
        format!("--forward-mode={}", mode.name()),
        "--nb-cores=1".into(),
        format!("--total-num-mbufs={}", MBUFS + 1),
        format!("--mbcache={MBUF_CACHE}"),
        "--burst=32".into(),
        "--stats-period=1".into(),
        "--no-mlockall".into(),
    ] {
        args.push(a);
    }
    args
}

/// Per-second Tx rates of dpdk-testpmd (both ports summed), from its periodic stats output.
fn run_testpmd(mode: Mode, seconds: u64) -> Result<Vec<f64>, String> {
    let args = testpmd_args(mode);
    let mut child = Command::new("dpdk-testpmd")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dpdk-testpmd (Debian package dpdk-dev): {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let mut per_port = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("Tx-pps:") {
                if let Some(v) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    per_port.push(v);
                }
            }
        }
        per_port
    });
    // testpmd spends a moment allocating memory before the first period starts, and its first
    // two periods (start-up, warm-up) are dropped below.
    std::thread::sleep(Duration::from_secs(seconds + 3));
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(format!(
        "/var/run/dpdk/dyntun-bench-tp-{}",
        std::process::id()
    ));
    let per_port = reader.join().map_err(|_| "reader thread".to_string())?;
    // Two ports per period; drop the first two periods (start-up and warm-up).
    let rates: Vec<f64> = per_port
        .chunks_exact(2)
        .map(|pair| pair[0] + pair[1])
        .skip(2)
        .collect();
    if rates.is_empty() {
        return Err(format!(
            "no throughput lines from dpdk-testpmd {}",
            args.join(" ")
        ));
    }
    Ok(rates)
}

fn main() {
    let mut cli = std::env::args().skip(1);
    let seconds: u64 = cli.next().and_then(|s| s.parse().ok()).unwrap_or(4).max(2);
    let rounds: usize = cli.next().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);

    let mut eal_args: Vec<String> = [
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eal_args.extend(VDEVS.iter().map(|v| format!("--vdev={v}")));
    let eal = Eal::init(&eal_args).unwrap_or_else(|e| panic!("{e}"));
    let worker = *lcore::workers()
        .first()
        .expect("-l 0-1 gives one worker lcore");
    let pool = Mempool::create("fwdpool", MBUFS, MBUF_CACHE, Mempool::DEFAULT_DATA_ROOM)
        .unwrap_or_else(|e| panic!("{e}"));
    let ports: Vec<Port> = VDEVS
        .iter()
        .map(|v| Port::by_name(v).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let mut queues: Vec<_> = ports
        .iter()
        .map(|p| {
            let q = p
                .configure(&PortConfig::default(), pool)
                .unwrap_or_else(|e| panic!("{e}"));
            p.start().unwrap_or_else(|e| panic!("{e}"));
            q
        })
        .collect();
    let (rx1, tx1) = (queues[1].rx.remove(0), queues[1].tx.remove(0));
    let (rx0, tx0) = (queues[0].rx.remove(0), queues[0].tx.remove(0));
    // Port 0's packets leave through port 1 and vice versa, as in testpmd's paired ports.
    let mut paths = vec![(rx0, tx1), (rx1, tx0)];

    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for mode in [Mode::Io, Mode::MacSwap] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut testpmd_error = None;
        for _ in 0..rounds {
            let (rates, back) = run_ours(&ports, paths, worker, mode, seconds);
            paths = back;
            ours.extend(rates);
            match run_testpmd(mode, seconds) {
                Ok(rates) => theirs.extend(rates),
                Err(e) => testpmd_error = Some(e),
            }
        }
        let row = Row {
            mode,
            ours_median: median(&mut ours.clone()) / 1e6,
            theirs_median: median(&mut theirs.clone()) / 1e6,
            ours_best: ours.iter().copied().fold(0.0, f64::max) / 1e6,
            theirs_best: theirs.iter().copied().fold(0.0, f64::max) / 1e6,
        };
        json_rows.push(json!({
            "mode": mode.name(),
            "dyntun_mpps_median": row.ours_median,
            "testpmd_mpps_median": row.theirs_median,
            "ratio": ratio(row.ours_median, row.theirs_median),
            "dyntun_mpps_best": row.ours_best,
            "testpmd_mpps_best": row.theirs_best,
            "best_ratio": ratio(row.ours_best, row.theirs_best),
            "dyntun_pps_samples": ours,
            "testpmd_pps_samples": theirs,
            "testpmd_error": testpmd_error,
        }));
        rows.push(row);
    }

    println!("| mode | dyntun median (Mpps) | testpmd median (Mpps) | ratio | dyntun best | testpmd best | best ratio |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.3} |",
            r.mode.name(),
            r.ours_median,
            r.theirs_median,
            ratio(r.ours_median, r.theirs_median),
            r.ours_best,
            r.theirs_best,
            ratio(r.ours_best, r.theirs_best)
        );
    }
    println!();
    println!(
        "net_null0 ⇄ net_null1, one forwarding lcore, burst 32, {MBUFS} mbufs; \
         {rounds} alternating rounds of {seconds} s; per-second rates, warm-up dropped; \
         the machine is shared, so best-of is the less noisy comparison"
    );

    let report = json!({
        "benchmark": "forward",
        "setup": {
            "vdevs": VDEVS,
            "eal_args": eal_args,
            "testpmd_args_io": testpmd_args(Mode::Io),
            "burst": dpdk::BURST_SIZE,
            "mbufs": MBUFS,
            "seconds_per_window": seconds,
            "rounds": rounds,
        },
        "results": json_rows,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir).expect("bench/results");
    std::fs::write(
        dir.join("forward.json"),
        serde_json::to_string_pretty(&report).expect("json") + "\n",
    )
    .expect("write forward.json");

    for p in &ports {
        let _ = p.stop();
    }
    drop(paths);
    let _ = eal.cleanup();
}
