//! The real `dyntun run` daemon as a benchmark subject: started inside a namespace on
//! `net_af_packet` ports, asked for its tunnel count over the operational socket, charged for the
//! CPU time of its control thread (the EAL main lcore, where IKE runs), and stopped with SIGINT
//! as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{ChildGuard, Namespace};
use crate::proc_stat;

/// Where the gateway's ports and addresses are; the names are interfaces inside its namespace.
pub struct GatewaySetup<'a> {
    pub outside_iface: &'a str,
    pub inside_iface: &'a str,
    pub outside_address: &'a str,
    pub next_hop: &'a str,
    pub psk: &'a str,
}

/// A configuration in the reference example's shape (one shared services unit, the access
/// profile's global key, the implicit proposals and any-to-any proxy pairs), one PIC with one
/// worker on CPU 1, the control thread on CPU 0.
pub fn config_text(s: &GatewaySetup) -> String {
    format!(
        r#"interfaces {{
    ge-0/0/0 {{ unit 0 {{ family inet {{ address {outside}/24; }} }} }}
    ge-0/0/1 {{ unit 0 {{ family inet {{ address 172.16.1.1/24; }} }} }}
    sp-1/2/0 {{
        unit 0 {{ family inet; }}
        unit 1 {{
            family inet;
            service-domain inside;
            dial-options {{ ipsec-interface-id bench-ids; shared; }}
        }}
        unit 2 {{ family inet; service-domain outside; }}
    }}
}}
access {{
    profile bench-profile {{
        client * {{
            ike {{
                pre-shared-key ascii-text "{psk}";
                interface-id bench-ids;
            }}
        }}
    }}
}}
services {{
    service-set bench-set {{
        next-hop-service {{
            inside-service-interface sp-1/2/0.1;
            outside-service-interface sp-1/2/0.2;
        }}
        ipsec-vpn-options {{
            local-gateway {outside};
            ike-access-profile bench-profile;
        }}
    }}
}}
routing-options {{
    static {{ route 0.0.0.0/0 next-hop {next_hop}; }}
}}
dataplane {{
    interface ge-0/0/0 {{ device "net_af_packet0,iface={out_if}"; }}
    interface ge-0/0/1 {{ device "net_af_packet1,iface={in_if}"; }}
    pic sp-1/2/0 {{ cores 1; }}
    control-core 0;
    eal-options [ "--no-huge" "-m" "256" ];
    idle-backoff-us 50;
}}
"#,
        outside = s.outside_address,
        next_hop = s.next_hop,
        psk = s.psk,
        out_if = s.outside_iface,
        in_if = s.inside_iface,
    )
}

pub struct DyntunGateway {
    process: ChildGuard,
    binary: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    runtime_dir: PathBuf,
}

impl DyntunGateway {
    /// Writes `config` into `work`, starts `binary run` inside `ns` and waits for its socket.
    pub fn start(
        binary: &Path,
        ns: &Namespace,
        work: &Path,
        config: &str,
        file_prefix: &str,
    ) -> Result<DyntunGateway, String> {
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        let config_path = work.join("dyntun.conf");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let socket = work.join("dyntun.sock");
        let log = work.join("dyntun.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = ns
            .command(&binary.to_string_lossy())
            .arg("run")
            .arg(&config_path)
            .arg("--socket")
            .arg(&socket)
            .arg("--file-prefix")
            .arg(file_prefix)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut gateway = DyntunGateway {
            process: ChildGuard::new(child, libc::SIGINT, Duration::from_secs(15)),
            binary: binary.to_path_buf(),
            socket,
            log,
            runtime_dir: PathBuf::from(format!("/var/run/dpdk/{file_prefix}")),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gateway.socket.exists() {
            if let Some(status) = gateway.process.exited() {
                return Err(format!("dyntun exited ({status}): {}", gateway.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("dyntun did not start: {}", gateway.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(gateway)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The control thread: one named `dyntun-control` if the daemon names it, else the main
    /// thread, which is the EAL main lcore that runs the control loop.
    pub fn control_thread(&self) -> u32 {
        let pid = self.pid();
        proc_stat::threads(pid)
            .into_iter()
            .find(|(_, name)| name == "dyntun-control")
            .map_or(pid, |(tid, _)| tid)
    }

    /// CPU seconds the control thread has used so far.
    pub fn control_cpu_seconds(&self) -> Result<f64, String> {
        proc_stat::thread_cpu(self.pid(), self.control_thread())
            .map(|t| t.seconds(proc_stat::ticks_per_second()))
            .map_err(|e| e.to_string())
    }

    /// CPU seconds of the whole process (workers included).
    pub fn process_cpu_seconds(&self) -> Result<f64, String> {
        proc_stat::process_cpu(self.pid())
            .map(|t| t.seconds(proc_stat::ticks_per_second()))
            .map_err(|e| e.to_string())
    }

    /// `dyntun_tunnels` from `dyntun show metrics`.
    pub fn tunnels(&self) -> Result<u64, String> {
        let out = Command::new(&self.binary)
            .args(["show", "--socket"])
            .arg(&self.socket)
            .arg("metrics")
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        metric(&text, "dyntun_tunnels").ok_or_else(|| format!("no dyntun_tunnels in: {text}"))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for DyntunGateway {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

/// The value of an unlabelled Prometheus sample `name value`.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_the_exact_sample_only() {
        let text = "dyntun_worker_rx{pic=\"sp-1/2/0\",worker=\"0\"} 9\n\
                    dyntun_tunnels_refused 2\ndyntun_tunnels 1000\n";
        assert_eq!(metric(text, "dyntun_tunnels"), Some(1000));
        assert_eq!(metric(text, "dyntun_tunnels_refused"), Some(2));
        assert_eq!(metric(text, "dyntun_missing"), None);
        assert_eq!(metric("dyntun_tunnels many\n", "dyntun_tunnels"), None);
    }

    #[test]
    fn the_generated_configuration_passes_dyntuns_commit_check() {
        let text = config_text(&GatewaySetup {
            outside_iface: "out0",
            inside_iface: "in0",
            outside_address: "10.1.1.1",
            next_hop: "10.1.1.254",
            psk: "bench key",
        });
        if let Err(errors) = control::config::parse(&text) {
            panic!("{}", errors.render("bench.conf"));
        }
    }
}
