//! rx→tx forwarding on one core through the `dpdk` safe layer, next to `dpdk-testpmd` on the same
//! vdevs in the same run (two net_null ports, port 0 ⇄ port 1, burst 32).
//!
//! Modes: `io` forwards untouched (testpmd `--forward-mode=io`); `macswap` swaps the Ethernet
//! addresses of every packet (testpmd `--forward-mode=macswap`), so packet data is touched.
//!
//! Two measures per side: the median of per-second wall-clock rates, and packets per second of
//! CPU time of the forwarding thread (from /proc schedstat). The machine is shared with other
//! builds, which steal wall-clock time from either side at random; the CPU-time rate is what
//! a dedicated core would do, so it is the fairer comparison of per-packet cost.
//!
//! Usage: `cargo run --release -p dyntun-bench --bin forward -- [seconds-per-window] [rounds]`
//! (defaults 4 and 3). Windows alternate between us and testpmd. Writes
//! `bench/results/forward.json`.

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

/// What one measurement window produced.
#[derive(Default)]
struct Window {
    /// Packets per wall-clock second, one per second after warm-up.
    wall_rates: Vec<f64>,
    /// Packets forwarded while `cpu_ns` of forwarding-thread CPU time was spent.
    packets: u64,
    cpu_ns: u64,
}

#[derive(Default)]
struct Side {
    wall_rates: Vec<f64>,
    packets: u64,
    cpu_ns: u64,
    errors: Vec<String>,
}

impl Side {
    fn add(&mut self, w: Window) {
        self.wall_rates.extend(w.wall_rates);
        self.packets += w.packets;
        self.cpu_ns += w.cpu_ns;
    }
    fn wall_median_mpps(&self) -> f64 {
        median(&mut self.wall_rates.clone()) / 1e6
    }
    fn cpu_mpps(&self) -> f64 {
        if self.cpu_ns == 0 {
            return 0.0;
        }
        self.packets as f64 / (self.cpu_ns as f64 / 1e9) / 1e6
    }
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
    if samples.len() & 1 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    }
}

/// CPU time a thread has run, in nanoseconds.
fn thread_cpu_ns(pid: u32, tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
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

fn run_ours(
    ports: &[Port],
    paths: Vec<(RxQueue, TxQueue)>,
    worker: u32,
    mode: Mode,
    seconds: u64,
) -> (Window, Vec<(RxQueue, TxQueue)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (paths_back, paths_home) = std::sync::mpsc::channel();
    let (tid_out, tid_in) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let running = lcore::launch(worker, move || {
        let _ = tid_out.send(current_tid());
        let paths = forward(paths, mode, flag);
        let _ = paths_back.send(paths);
        0
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let pid = std::process::id();
    let tid = tid_in.recv().expect("worker reports its thread id");
    let start = (tx_total(ports), thread_cpu_ns(pid, tid).unwrap_or(0));
    let mut window = Window::default();
    let mut last = (Instant::now(), start.0);
    for second in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let now = (Instant::now(), tx_total(ports));
        if second > 0 {
            window
                .wall_rates
                .push((now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64());
        }
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    running.wait();
    window.packets = tx_total(ports) - start.0;
    window.cpu_ns = thread_cpu_ns(pid, tid).unwrap_or(0) - start.1;
    let paths = paths_home.recv().expect("worker hands the queues back");
    (window, paths)
}

fn testpmd_prefix() -> String {
    format!("dyntun-bench-tp-{}", std::process::id())
}

fn testpmd_args(mode: Mode) -> Vec<String> {
    let mut args: Vec<String> = [
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--file-prefix",
        &testpmd_prefix(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(VDEVS.iter().map(|v| format!("--vdev={v}")));
    args.push("--".into());
    args.extend([
        format!("--forward-mode={}", mode.name()),
        "--nb-cores=1".into(),
        format!("--total-num-mbufs={}", MBUFS + 1),
        format!("--mbcache={MBUF_CACHE}"),
        "--burst=32".into(),
        "--stats-period=1".into(),
        "--no-mlockall".into(),
    ]);
    args
}

/// testpmd's forwarding lcore thread (EAL names it `lcore-worker-<id>`, newer stable releases
/// `rte-worker-<id>`).
fn testpmd_worker_tid(pid: u32) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .map(|c| matches!(c.trim(), "lcore-worker-1" | "rte-worker-1"))
                .unwrap_or(false)
        })
        .and_then(|task| task.file_name().to_str()?.parse().ok())
}

fn run_testpmd(mode: Mode, seconds: u64) -> Result<Window, String> {
    let args = testpmd_args(mode);
    let mut child = Command::new("dpdk-testpmd")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dpdk-testpmd (Debian package dpdk-dev): {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let pid = child.id();
    let (line_out, line_in) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_out.send(line).is_err() {
                break;
            }
        }
    });
    // Time the window from testpmd's first stats period, since its start-up (memory, ports)
    // takes a variable while on a busy machine; that first period is dropped below.
    let mut lines = Vec::new();
    let started = Instant::now();
    while !lines.iter().any(|l: &String| l.contains("Tx-pps:")) {
        match line_in.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                if started.elapsed() < Duration::from_secs(60) => {}
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu_ns = testpmd_worker_tid(pid).and_then(|tid| thread_cpu_ns(pid, tid));
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
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", testpmd_prefix()));
    lines.extend(line_in.iter());

    let per_port: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Tx-pps:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    // Two ports per period; the first period includes start-up.
    let wall_rates: Vec<f64> = per_port
        .chunks_exact(2)
        .map(|pair| pair[0] + pair[1])
        .skip(1)
        .collect();
    let accumulated = lines
        .iter()
        .position(|l| l.contains("Accumulated forward statistics"))
        .and_then(|at| {
            lines[at..]
                .iter()
                .find_map(|l| l.trim().strip_prefix("TX-packets:"))
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    match (accumulated, cpu_ns, wall_rates.is_empty()) {
        (Some(packets), Some(cpu_ns), false) => Ok(Window {
            wall_rates,
            packets,
            cpu_ns,
        }),
        _ => Err(format!(
            "could not read throughput of dpdk-testpmd {}",
            args.join(" ")
        )),
    }
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
    for mode in [Mode::Io, Mode::MacSwap] {
        let mut ours = Side::default();
        let mut theirs = Side::default();
        for _ in 0..rounds {
            let (window, back) = run_ours(&ports, paths, worker, mode, seconds);
            paths = back;
            ours.add(window);
            match run_testpmd(mode, seconds) {
                Ok(window) => theirs.add(window),
                Err(e) => theirs.errors.push(e),
            }
        }
        rows.push((mode, ours, theirs));
    }

    println!(
        "| mode | dyntun Mpps per CPU-s | testpmd Mpps per CPU-s | ratio | dyntun wall median | testpmd wall median | wall ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (mode, ours, theirs) in &rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.3} |",
            mode.name(),
            ours.cpu_mpps(),
            theirs.cpu_mpps(),
            ratio(ours.cpu_mpps(), theirs.cpu_mpps()),
            ours.wall_median_mpps(),
            theirs.wall_median_mpps(),
            ratio(ours.wall_median_mpps(), theirs.wall_median_mpps()),
        );
    }
    println!();
    println!(
        "net_null0 ⇄ net_null1, one forwarding lcore, burst 32, {MBUFS} mbufs; {rounds} \
         alternating rounds of {seconds} s; TSC {:.2} GHz",
        lcore::tsc_hz() as f64 / 1e9
    );
    for (mode, _, theirs) in &rows {
        for e in &theirs.errors {
            println!("testpmd {}: {e}", mode.name());
        }
    }

    let results: Vec<_> = rows
        .iter()
        .map(|(mode, ours, theirs)| {
            json!({
                "mode": mode.name(),
                "dyntun_mpps_per_cpu_second": ours.cpu_mpps(),
                "testpmd_mpps_per_cpu_second": theirs.cpu_mpps(),
                "cpu_ratio": ratio(ours.cpu_mpps(), theirs.cpu_mpps()),
                "dyntun_wall_median_mpps": ours.wall_median_mpps(),
                "testpmd_wall_median_mpps": theirs.wall_median_mpps(),
                "wall_ratio": ratio(ours.wall_median_mpps(), theirs.wall_median_mpps()),
                "dyntun": { "packets": ours.packets, "cpu_ns": ours.cpu_ns, "wall_pps": ours.wall_rates },
                "testpmd": {
                    "packets": theirs.packets,
                    "cpu_ns": theirs.cpu_ns,
                    "wall_pps": theirs.wall_rates,
                    "errors": theirs.errors,
                },
            })
        })
        .collect();
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
            "tsc_hz": lcore::tsc_hz(),
        },
        "results": results,
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
