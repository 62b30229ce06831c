//! End-to-end rig: the reference topology in network namespaces (scripts/lib/topology.sh),
//! dyntun on DPDK net_af_packet ports in SG1's namespace, and real strongSwan charons as the
//! dynamic peers (scripts/lib/strongswan.sh). Everything a scenario starts is stopped by PID
//! and every namespace removed when the scenario is dropped, also when an assertion failed.

#![allow(dead_code)]

pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bash(script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new("bash");
    command.arg("-c").arg(script).current_dir(repo());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("bash runs")
}

pub struct Peer {
    pub role: String,
    pub dir: PathBuf,
}

pub struct Scenario {
    pub tag: String,
    pub work: PathBuf,
    gateway: Option<Child>,
    pub socket: PathBuf,
    peers: Vec<Peer>,
    log: PathBuf,
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario::with_topology("topology_up")
    }

    /// The same roles built by another function of scripts/lib/topology.sh (e.g. `topology_up_v6`).
    pub fn with_topology(function: &str) -> Scenario {
        let tag = format!(
            "e2e{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let work = std::env::temp_dir().join(format!("dyntun-{tag}"));
        std::fs::create_dir_all(&work).unwrap();
        let scenario = Scenario {
            socket: work.join("dyntun.sock"),
            log: work.join("dyntun.log"),
            tag,
            work,
            gateway: None,
            peers: Vec::new(),
        };
        let out = bash(
            &format!(". scripts/lib/topology.sh; {function}"),
            &[("TOPO_TAG", &scenario.tag)],
        );
        assert!(
            out.status.success(),
            "topology: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        scenario
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    /// Starts dyntun on `config` (a path relative to the repository) and waits for its socket.
    pub fn start_gateway(&mut self, config: &str) {
        let config = repo().join(config);
        self.start_gateway_at(&config);
    }

    pub fn start_gateway_at(&mut self, config: &Path) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("sg1")])
            .arg(env!("CARGO_BIN_EXE_dyntun"))
            .arg("run")
            .arg(config)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--file-prefix")
            .arg(&self.tag)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env("RUST_LOG", "info")
            .spawn()
            .expect("dyntun starts");
        self.gateway = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            if let Some(Ok(Some(status))) = self.gateway.as_mut().map(|g| g.try_wait()) {
                panic!("dyntun exited ({status}): {}", self.gateway_log());
            }
            assert!(
                Instant::now() < deadline,
                "dyntun did not start: {}",
                self.gateway_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn gateway_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `dyntun show … --json` against the running gateway.
    pub fn show(&self, words: &str) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_dyntun"))
            .arg("show")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(words.split_whitespace())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "show {words}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "show {words}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn show_text(&self, words: &str) -> String {
        self.show_text_verb("show", words)
    }

    /// `dyntun show|clear WORDS` as text.
    pub fn show_text_verb(&self, verb: &str, words: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_dyntun"))
            .arg(verb)
            .arg("--socket")
            .arg(&self.socket)
            .args(words.split_whitespace())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a charon for `role` (sg2, sg3) protecting `local_ts` towards SG1's LAN.
    #[allow(clippy::too_many_arguments)]
    pub fn start_peer(
        &mut self,
        role: &str,
        local: &str,
        local_ts: &str,
        psk: &str,
        ike: &str,
        esp: &str,
        extra: &[(&str, &str)],
    ) -> usize {
        self.start_peer_towards(role, local, local_ts, "172.16.1.0/24", psk, ike, esp, extra)
    }

    /// Like `start_peer`, with the remote traffic selector given.
    #[allow(clippy::too_many_arguments)]
    pub fn start_peer_towards(
        &mut self,
        role: &str,
        local: &str,
        local_ts: &str,
        remote_ts: &str,
        psk: &str,
        ike: &str,
        esp: &str,
        extra: &[(&str, &str)],
    ) -> usize {
        self.start_peer_to_gateway(
            role, local, "10.1.1.1", local_ts, remote_ts, psk, ike, esp, extra,
        )
    }

    /// Like `start_peer_towards`, with the gateway's address given (e.g. an IPv6 outside).
    #[allow(clippy::too_many_arguments)]
    pub fn start_peer_to_gateway(
        &mut self,
        role: &str,
        local: &str,
        gateway: &str,
        local_ts: &str,
        remote_ts: &str,
        psk: &str,
        ike: &str,
        esp: &str,
        extra: &[(&str, &str)],
    ) -> usize {
        let dir = self.work.join(format!("{role}-{}", self.peers.len()));
        let script = format!(
            ". scripts/lib/strongswan.sh; charon_start {} {} {local} {gateway} {local_ts} {remote_ts} '{psk}' {ike} {esp}",
            self.ns(role),
            dir.display()
        );
        let out = bash(&script, extra);
        assert!(
            out.status.success(),
            "charon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.peers.push(Peer {
            role: role.to_string(),
            dir,
        });
        self.peers.len() - 1
    }

    pub fn swanctl(&self, peer: usize, args: &str) -> (bool, String) {
        let p = &self.peers[peer];
        let out = bash(
            &format!(
                ". scripts/lib/strongswan.sh; charon_swanctl {} {} {args}",
                self.ns(&p.role),
                p.dir.display()
            ),
            &[],
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    pub fn initiate(&self, peer: usize) -> bool {
        let p = &self.peers[peer];
        let out = bash(
            &format!(
                ". scripts/lib/strongswan.sh; charon_initiate {} {}",
                self.ns(&p.role),
                p.dir.display()
            ),
            &[],
        );
        out.status.success()
    }

    pub fn stop_peer(&self, peer: usize) {
        let p = &self.peers[peer];
        bash(
            &format!(
                ". scripts/lib/strongswan.sh; charon_stop {}",
                p.dir.display()
            ),
            &[],
        );
    }

    pub fn peer_log(&self, peer: usize) -> String {
        std::fs::read_to_string(self.peers[peer].dir.join("charon.log")).unwrap_or_default()
    }

    /// Pings from a namespace; returns how many answers came back.
    pub fn ping(
        &self,
        role: &str,
        source: Option<&str>,
        destination: &str,
        count: u32,
        interval: &str,
    ) -> u32 {
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            self.ns(role),
            "ping".into(),
            "-n".into(),
            "-q".into(),
        ];
        args.extend([
            "-c".into(),
            count.to_string(),
            "-i".into(),
            interval.into(),
            "-W".into(),
            "2".into(),
        ]);
        if let Some(source) = source {
            args.extend(["-I".into(), source.into()]);
        }
        args.push(destination.into());
        let out = Command::new("ip")
            .args(&args)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(" received")
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    /// The LAN host pings the gateway first, so the gateway learns its MAC from the ARP request.
    pub fn warm_up_lan(&self) {
        assert!(
            self.ping("lan", None, "172.16.1.1", 2, "0.2") >= 1,
            "LAN host cannot reach the gateway: {}",
            self.gateway_log()
        );
    }

    pub fn tunnels(&self) -> Vec<Value> {
        self.show("services ipsec-vpn ipsec security-associations")["tunnels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The routes of `table` as (prefix, protocol, preference, next hop).
    pub fn routes(&self, table: &str) -> Vec<(String, String, u64, String)> {
        let all = self.show("route");
        all["route_tables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["table"] == table)
            .flat_map(|t| t["routes"].as_array().unwrap().clone())
            .map(|r| {
                (
                    r["prefix"].as_str().unwrap().to_string(),
                    r["protocol"].as_str().unwrap().to_string(),
                    r["preference"].as_u64().unwrap(),
                    r["next_hop"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// SIGINT to dyntun, as an operator would: it sends deletes, stops workers, ports and DPDK.
    /// Returns its exit status (`None` if it had to be killed).
    pub fn stop_gateway(&mut self) -> Option<std::process::ExitStatus> {
        let mut gateway = self.gateway.take()?;
        unsafe { libc::kill(gateway.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match gateway.try_wait() {
                Ok(Some(status)) => return Some(status),
                _ if Instant::now() > deadline => {
                    let _ = gateway.kill();
                    let _ = gateway.wait();
                    return None;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.gateway_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        for peer in 0..self.peers.len() {
            self.stop_peer(peer);
        }
        self.stop_gateway();
        bash(
            ". scripts/lib/topology.sh; topology_down",
            &[("TOPO_TAG", &self.tag)],
        );
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.tag));
        if std::thread::panicking() {
            eprintln!("--- dyntun log ---\n{}", self.gateway_log());
            for peer in 0..self.peers.len() {
                eprintln!("--- charon {} log (tail) ---", self.peers[peer].role);
                let log = self.peer_log(peer);
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
