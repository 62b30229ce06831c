//! `dpdk-testpmd` as the I/O reference: started as its own process on given vdevs with one
//! forwarding lcore, run for a while, and read back as packets forwarded per CPU-second of that
//! lcore's thread (from /proc schedstat) and per wall-clock second (its own per-second stats).
//! The CPU figure is what a dedicated core would do; wall-clock figures on a shared machine
//! include other tenants' time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::netns::ChildGuard;

/// One testpmd run.
#[derive(Clone, Debug)]
pub struct TestpmdSpec {
    /// `--vdev` arguments, e.g. `net_null0,size=64`.
    pub vdevs: Vec<String>,
    /// `io`, `macswap`, …
    pub forward_mode: String,
    /// Measured seconds, after testpmd's first stats period.
    pub seconds: u64,
    /// Send a first burst from every port: needed on ports that produce nothing by themselves
    /// (net_ring), harmless elsewhere.
    pub tx_first: bool,
    pub mbufs: u32,
}

#[derive(Clone, Debug, Default)]
pub struct TestpmdRun {
    /// Packets testpmd transmitted over the whole run (its accumulated statistics).
    pub packets: u64,
    /// CPU time of the forwarding lcore's thread over the whole run.
    pub cpu_ns: u64,
    /// Per-second transmit rates (all ports), start-up period left out.
    pub wall_pps: Vec<f64>,
}

impl TestpmdRun {
    pub fn mpps_per_cpu_second(&self) -> f64 {
        if self.cpu_ns == 0 {
            return f64::NAN;
        }
        self.packets as f64 / (self.cpu_ns as f64 / 1e9) / 1e6
    }

    pub fn wall_median_mpps(&self) -> f64 {
        let mut v = self.wall_pps.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let mid = v.len() / 2;
        let median = if v.len() & 1 == 0 {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        };
        median / 1e6
    }
}

impl TestpmdSpec {
    /// The EAL arguments, with the runtime directory name `file_prefix`.
    pub fn args(&self, file_prefix: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-telemetry",
            "--file-prefix",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(file_prefix.to_string());
        args.extend(self.vdevs.iter().map(|v| format!("--vdev={v}")));
        args.push("--".into());
        args.extend([
            format!("--forward-mode={}", self.forward_mode),
            "--nb-cores=1".into(),
            format!("--total-num-mbufs={}", self.mbufs),
            "--burst=32".into(),
            "--stats-period=1".into(),
            "--no-mlockall".into(),
        ]);
        if self.tx_first {
            args.push("--tx-first".into());
        }
        args
    }
}

/// CPU time a thread has been on a CPU, in nanoseconds (first field of schedstat).
pub fn thread_schedstat_ns(pid: u32, tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// testpmd's forwarding lcore (EAL names it `lcore-worker-1`, newer releases `rte-worker-1`).
fn forwarding_thread(pid: u32) -> Option<u32> {
    crate::proc_stat::threads(pid)
        .into_iter()
        .find(|(_, name)| matches!(name.as_str(), "lcore-worker-1" | "rte-worker-1"))
        .map(|(tid, _)| tid)
}

/// Per-period transmit rates from testpmd's periodic statistics: one `Tx-pps:` line per port
/// per period, summed per period; the first period (start-up) is left out.
pub fn periodic_tx_pps(lines: &[String], ports: usize) -> Vec<f64> {
    let per_port: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Tx-pps:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    per_port
        .chunks_exact(ports.max(1))
        .map(|period| period.iter().sum())
        .skip(1)
        .collect()
}

/// `TX-packets` of the "Accumulated forward statistics for all ports" block printed at exit.
pub fn accumulated_tx_packets(lines: &[String]) -> Option<u64> {
    let at = lines
        .iter()
        .position(|l| l.contains("Accumulated forward statistics"))?;
    lines[at..]
        .iter()
        .find_map(|l| l.trim().strip_prefix("TX-packets:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Distinguishes the runtime directories of runs started by one process.
static RUNS: AtomicU32 = AtomicU32::new(0);

pub fn run_testpmd(spec: &TestpmdSpec) -> Result<TestpmdRun, String> {
    let file_prefix = format!(
        "dyntun-bench-testpmd-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let args = spec.args(&file_prefix);
    let mut child = Command::new("dpdk-testpmd")
        .args(&args)
        // testpmd quits when its stdin reaches end of file ("Press enter to exit"), so it gets
        // a pipe that stays open until it is stopped.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dpdk-testpmd (Debian package dpdk-dev): {e}"))?;
    let stdout = child.stdout.take().ok_or("testpmd: no stdout")?;
    let stdin = child.stdin.take();
    let mut process = ChildGuard::new(child, libc::SIGINT, Duration::from_secs(10));
    let pid = process.pid();
    let (line_out, line_in) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_out.send(line).is_err() {
                break;
            }
        }
    });
    // The window starts at testpmd's first stats period: its start-up takes a variable while on
    // a busy machine.
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
    std::thread::sleep(Duration::from_secs(spec.seconds));
    let cpu_ns = forwarding_thread(pid).and_then(|tid| thread_schedstat_ns(pid, tid));
    process.stop();
    drop(stdin);
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{file_prefix}"));
    lines.extend(line_in.try_iter());

    let wall_pps = periodic_tx_pps(&lines, spec.vdevs.len());
    match (accumulated_tx_packets(&lines), cpu_ns) {
        // Per-second figures may be missing when the machine starved testpmd's main thread;
        // the CPU-time figure does not need them.
        (Some(packets), Some(cpu_ns)) => Ok(TestpmdRun {
            packets,
            cpu_ns,
            wall_pps,
        }),
        (packets, cpu_ns) => Err(format!(
            "could not read the throughput of dpdk-testpmd {} (accumulated packets {packets:?}, \
             forwarding thread CPU {cpu_ns:?}, {} periods)",
            args.join(" "),
            wall_pps.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn periodic_rates_sum_the_ports_and_drop_the_start_up_period() {
        let out = lines(
            "  Tx-pps:            5          Tx-bps: 0\n  Tx-pps:            7          Tx-bps: 0\n\
             noise\n  Tx-pps:     10000000          Tx-bps: 0\n  Tx-pps:     11000000\n\
               Tx-pps:     12000000\n  Tx-pps:     13000000\n  Tx-pps:  99\n",
        );
        assert_eq!(periodic_tx_pps(&out, 2), vec![21e6, 25e6]);
    }

    #[test]
    fn accumulated_packets_come_from_the_final_block_only() {
        let out = lines(
            "  TX-packets: 5  TX-dropped: 0\n\
             +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n\
               RX-packets: 250        RX-dropped: 0             RX-total: 250\n\
               TX-packets: 249        TX-dropped: 1             TX-total: 250\n",
        );
        assert_eq!(accumulated_tx_packets(&out), Some(249));
        assert_eq!(accumulated_tx_packets(&lines("  TX-packets: 5\n")), None);
    }

    #[test]
    fn rates_are_per_cpu_second_and_median_of_wall_periods() {
        let run = TestpmdRun {
            packets: 30_000_000,
            cpu_ns: 2_000_000_000,
            wall_pps: vec![9e6, 20e6, 10e6, 11e6],
        };
        assert!((run.mpps_per_cpu_second() - 15.0).abs() < 1e-9);
        assert!((run.wall_median_mpps() - 10.5).abs() < 1e-9);
        assert!(TestpmdRun::default().mpps_per_cpu_second().is_nan());
    }
}

#[cfg(test)]
mod real_testpmd {
    use super::*;

    /// The real dpdk-testpmd on two net_null ports: it forwards, and its figures are read back.
    #[test]
    fn testpmd_io_on_net_null_reports_packets_and_cpu_time() {
        let run = run_testpmd(&TestpmdSpec {
            vdevs: vec!["net_null0,size=60".into(), "net_null1,size=60".into()],
            forward_mode: "io".into(),
            seconds: 2,
            tx_first: false,
            mbufs: 8192,
        })
        .expect("testpmd runs");
        assert!(run.packets > 0);
        assert!(run.cpu_ns > 0);
        assert!(run.mpps_per_cpu_second() > 0.0);
    }

    /// net_ring ports produce nothing by themselves: `--tx-first` starts the loop.
    #[test]
    fn testpmd_io_on_net_ring_with_tx_first_forwards() {
        let run = run_testpmd(&TestpmdSpec {
            vdevs: vec!["net_ring0".into(), "net_ring1".into()],
            forward_mode: "io".into(),
            seconds: 2,
            tx_first: true,
            mbufs: 8192,
        })
        .expect("testpmd runs");
        assert!(run.packets > 0 && run.cpu_ns > 0);
    }
}
