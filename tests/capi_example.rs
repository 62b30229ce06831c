//! The C API end to end: `ffi/examples/vrouter_loop.c` is compiled with the system C compiler
//! against the built `libdyntun` (through the generated `dyntun.pc`) and DPDK, and run as the
//! SG1 host of the reference topology. It owns the EAL and two net_af_packet ports (a strongSwan
//! peer cannot reach a net_ring port, so the outside is a veth into the ISP namespace), and
//! dyntun runs inside it: a dynamic tunnel from a real strongSwan peer (SG3) and a manual-SA
//! tunnel with scapy as the hand-keyed peer (SG2), traffic both ways, events through the
//! callback, `show` JSON through the API and through the operational socket.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{repo, Scenario};

const GLOBAL_KEY: &str = "dyntun-demo-global-key";

/// `<target>/<profile>`, where cargo put this test binary's libraries.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Builds libdyntun and the example. The whole workspace with all targets, as the test suite
/// builds it: `-p dyntun-capi` alone would unify features differently and rebuild shared crates.
fn build_example(work: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--workspace", "--all-targets"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(
        built.success(),
        "cargo build --workspace --all-targets failed"
    );
    let libdir = profile_dir();
    assert!(
        libdir.join("libdyntun.so").exists() && libdir.join("dyntun.pc").exists(),
        "no libdyntun.so / dyntun.pc in {}",
        libdir.display()
    );
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "dyntun"])
        .env("PKG_CONFIG_PATH", &libdir)
        .output()
        .unwrap();
    assert!(
        flags.status.success(),
        "pkg-config dyntun: {}",
        String::from_utf8_lossy(&flags.stderr)
    );
    let binary = work.join("vrouter_loop");
    let compiled = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .arg(repo().join("ffi/examples/vrouter_loop.c"))
        .args(String::from_utf8_lossy(&flags.stdout).split_whitespace())
        .output()
        .unwrap();
    assert!(
        compiled.status.success(),
        "cc vrouter_loop.c:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    binary
}

/// The example running in SG1's namespace, stopped by PID however the test ends.
struct Host {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Host {
    fn start(s: &Scenario, binary: &Path, config: &Path) -> Host {
        let stdout = s.work.join("host.out");
        let stderr = s.work.join("host.err");
        let child = Command::new("ip")
            .args(["netns", "exec", &s.ns("sg1")])
            .arg(binary)
            .args([
                "-l",
                "0",
                "--no-huge",
                "-m",
                "256",
                "--no-pci",
                "--no-telemetry",
            ])
            .arg(format!("--file-prefix={}", s.tag))
            .arg("--vdev=net_af_packet0,iface=sg1-out")
            .arg("--vdev=net_af_packet1,iface=sg1-in")
            .arg("--log-level=lib.eal:warning")
            .arg("--")
            .arg(config)
            .arg(&s.socket)
            .args(["net_af_packet0", "net_af_packet1"])
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("vrouter_loop starts");
        Host {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn log(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.output(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    fn wait_running(&mut self, socket: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(self.output().contains("running\n") && socket.exists()) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("vrouter_loop exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "vrouter_loop did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, as an operator would; the exit status (`None` if it had to be killed).
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: a plain signal to the process we started, by its PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- vrouter_loop ---\n{}", self.log());
        }
    }
}

/// The JSON the example printed between its markers, the last time.
fn last_show_json(output: &str) -> Option<serde_json::Value> {
    let start = output.rfind("show-json-begin\n")? + "show-json-begin\n".len();
    let end = start + output[start..].find("show-json-end")?;
    serde_json::from_str(&output[start..end]).ok()
}

/// `value` without the per-SA traffic counters, which move between two answers.
fn without_counters(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(fields) => fields
            .iter()
            .filter(|(name, _)| *name != "packets" && *name != "bytes")
            .map(|(name, v)| (name.clone(), without_counters(v)))
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(without_counters).collect(),
        other => other.clone(),
    }
}

#[test]
fn the_c_example_embeds_dyntun_with_a_dynamic_and_a_manual_tunnel() {
    let mut s = Scenario::new();
    let binary = build_example(&s.work);
    let mut host = Host::start(&s, &binary, &repo().join("examples/sg1-manual.conf"));
    host.wait_running(&s.socket);
    s.warm_up_lan();

    // The dynamic peer: SG3 with strongSwan, for 172.16.3.0/24.
    let sg3 = s.start_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        GLOBAL_KEY,
        "aes128-sha1-modp1024",
        "aes128-sha1",
        &[],
    );
    assert!(s.initiate(sg3), "SG3 could not initiate:\n{}", host.log());
    assert_eq!(
        s.ping("lan", None, "172.16.3.1", 3, "0.2"),
        3,
        "LAN -> SG3 through the embedded gateway:\n{}",
        host.log()
    );
    assert_eq!(
        s.ping("sg3", Some("172.16.3.1"), "172.16.1.10", 3, "0.2"),
        3,
        "SG3 -> LAN through the embedded gateway:\n{}",
        host.log()
    );
    let output = host.output();
    assert!(
        output.contains("event tunnel-up tunnel=")
            && output.contains("peer=10.3.3.3:")
            && output.contains("remote=172.16.3.0/24"),
        "no tunnel-up event:\n{output}"
    );
    assert!(
        output.contains("event route-insert")
            && output.contains("table=inet.0 prefix=172.16.3.0/24"),
        "no route-insert event:\n{output}"
    );
    // show through the C API (printed by the example) and through the operational socket.
    s.wait_until("show JSON from the C API", Duration::from_secs(5), || {
        last_show_json(&host.output()).is_some()
    });
    let from_api = last_show_json(&host.output()).unwrap();
    let dynamic = from_api["tunnels"].as_array().unwrap();
    assert_eq!(dynamic.len(), 1, "{from_api:#}");
    assert_eq!(dynamic[0]["remote_gateway"], "10.3.3.3");
    // The API's answer was taken when the tunnel came up, before traffic: counters differ.
    let from_socket = s.show("services ipsec-vpn ipsec security-associations");
    assert_eq!(
        without_counters(&from_socket["tunnels"]),
        without_counters(&from_api["tunnels"])
    );

    // The manual-SA tunnel: scapy in SG2's namespace seals and opens with SPI 16000.
    let ns3 = s.ns("sg3");
    assert!(Command::new("ip")
        .args(["-n", &ns3, "addr", "add", "172.16.3.200/32", "dev", "lo"])
        .status()
        .unwrap()
        .success());
    let mut peer = Command::new("ip")
        .args(["netns", "exec", &s.ns("sg2"), "/usr/bin/python3"])
        .arg(repo().join("tests/support/esp_peer.py"))
        .arg("172.16.3.200")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // Static rules come first: 172.16.3.200 takes the manual tunnel to SG2, not SG3's.
    let to_shadow = s.ping("lan", None, "172.16.3.200", 3, "0.2");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = peer.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = peer.kill();
            break peer.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut report = String::new();
    peer.stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    peer.stderr
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    assert!(status.success(), "scapy peer:\n{report}\n{}", host.log());
    assert_eq!(
        to_shadow, 0,
        "172.16.3.200 went to SG3, not the static tunnel"
    );
    let stats = s.show("services ipsec-vpn ipsec statistics");
    let manual_in = stats["security_associations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sa| sa["spi"] == 16000 && sa["direction"] == "inbound")
        .cloned()
        .unwrap_or_default();
    assert!(manual_in["packets"].as_u64().unwrap_or(0) >= 1, "{stats:#}");

    // Stopping: deletes to the peer, then the withdraw and down events, then a clean exit.
    let status = host.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "vrouter_loop did not exit cleanly ({status:?}):\n{}",
        host.log()
    );
    let output = host.output();
    let withdraw = output.find("event route-withdraw").unwrap_or(usize::MAX);
    let down = output.find("event tunnel-down").unwrap_or(usize::MAX);
    assert!(
        withdraw < down && down != usize::MAX,
        "no route-withdraw before tunnel-down:\n{output}"
    );
    let counters_line = output
        .lines()
        .find_map(|l| l.strip_prefix("counters "))
        .expect("counters printed");
    let counters: serde_json::Value = serde_json::from_str(counters_line).unwrap();
    assert!(counters["encrypted"].as_u64().unwrap() >= 4, "{counters}");
    assert!(counters["decrypted"].as_u64().unwrap() >= 4, "{counters}");
    s.wait_until(
        "SG3 drops its SAs on the delete",
        Duration::from_secs(10),
        || !s.swanctl(sg3, "--list-sas").1.contains("INSTALLED"),
    );
}

#[test]
fn a_configuration_error_comes_back_as_the_commit_check_message() {
    let s = Scenario::new();
    let binary = build_example(&s.work);
    let broken = repo().join("examples/broken/bad-prefix.conf");
    let expected = Command::new(env!("CARGO_BIN_EXE_dyntun"))
        .arg("check")
        .arg(&broken)
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&expected.stdout).into_owned()
        + &String::from_utf8_lossy(&expected.stderr);
    let mut host = Host::start(&s, &binary, &broken);
    let status = host.child.as_mut().unwrap().wait().unwrap();
    host.child = None;
    assert_eq!(status.code(), Some(2), "{}", host.log());
    let stderr = std::fs::read_to_string(&host.stderr).unwrap();
    let first_error = expected
        .lines()
        .find(|l| l.contains(": error: "))
        .expect("dyntun check names an error");
    assert!(
        stderr.contains(first_error),
        "expected {first_error:?} in:\n{stderr}"
    );
}
