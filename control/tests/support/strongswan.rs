//! A real strongSwan charon (IKEv1 initiator, kernel-libipsec, NAT-T forced) in a namespace:
//! its strongswan.conf and swanctl.conf are written to a private folder, the daemon is started
//! by PID and killed by PID when the guard drops.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child as Process, Command, Output};
use std::time::{Duration, Instant};

use super::netns::Netns;
use super::unique;

#[derive(Clone, Debug)]
pub struct ChildConfig {
    pub name: String,
    pub local_ts: String,
    pub remote_ts: String,
    pub esp_proposals: String,
    /// Seconds; `None` keeps strongSwan's defaults.
    pub rekey_time: Option<u32>,
    pub life_time: Option<u32>,
}

impl ChildConfig {
    pub fn new(name: &str, local_ts: &str, remote_ts: &str, esp_proposals: &str) -> Self {
        ChildConfig {
            name: name.into(),
            local_ts: local_ts.into(),
            remote_ts: remote_ts.into(),
            esp_proposals: esp_proposals.into(),
            rekey_time: None,
            life_time: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub name: String,
    pub ike_proposals: String,
    pub dpd_delay: Option<u32>,
    pub children: Vec<ChildConfig>,
}

#[derive(Clone, Debug)]
pub struct CharonConfig {
    pub local_addr: String,
    pub remote_addr: String,
    pub psk: String,
    pub connections: Vec<ConnectionConfig>,
}

pub struct Charon {
    pub ns_name: String,
    pub dir: PathBuf,
    process: Option<Process>,
}

impl Charon {
    /// Writes the configuration, starts charon in `ns` and loads the connections.
    pub fn start(ns: &Netns, config: &CharonConfig) -> Charon {
        let dir = std::env::temp_dir().join(unique("dyntun-charon-"));
        for sub in [
            "run", "x509", "x509ca", "private", "pkcs12", "rsa", "ecdsa", "pubkey", "x509aa",
            "x509ocsp", "x509crl", "x509ac", "pkcs8", "bliss", "conf.d",
        ] {
            std::fs::create_dir_all(dir.join(sub)).expect("charon folder");
        }
        std::fs::write(dir.join("strongswan.conf"), strongswan_conf(&dir))
            .expect("strongswan.conf");
        std::fs::write(dir.join("swanctl.conf"), swanctl_conf(config)).expect("swanctl.conf");
        let script = format!(
            "mount --bind {}/run /run && exec /usr/lib/ipsec/charon",
            dir.display()
        );
        let process = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sh", "-c", &script])
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start charon");
        let charon = Charon {
            ns_name: ns.name.clone(),
            dir,
            process: Some(process),
        };
        let socket = charon.dir.join("charon.vici");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "charon did not open its vici socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let file = charon.dir.join("swanctl.conf");
        let out = charon.swanctl(&["--load-all", "--noprompt", "--file", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "swanctl --load-all: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        charon
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.id())
    }

    pub fn swanctl(&self, args: &[&str]) -> Output {
        Command::new("swanctl")
            .args(args)
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .output()
            .expect("run swanctl")
    }

    /// Initiates one child (and its IKE SA if needed); true when strongSwan reports success.
    pub fn initiate(&self, ike: &str, child: &str) -> bool {
        self.swanctl(&[
            "--initiate",
            "--ike",
            ike,
            "--child",
            child,
            "--timeout",
            "20",
        ])
        .status
        .success()
    }

    pub fn list_sas(&self) -> String {
        String::from_utf8_lossy(&self.swanctl(&["--list-sas", "--raw"]).stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    /// Runs a command in charon's namespace (e.g. ping from a protected address).
    pub fn exec_in_ns(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.ns_name];
        all.extend_from_slice(args);
        Command::new("ip")
            .args(all)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let pid = p.id() as i32;
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match p.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = p.kill();
                        let _ = p.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        if std::env::var_os("DYNTUN_KEEP_CHARON_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn strongswan_conf(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        r#"charon {{
  load = random nonce openssl aes md5 sha1 sha2 hmac gmp gcm pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  retransmit_tries = 2
  retransmit_timeout = 1.0
  retransmit_base = 1.4
  install_virtual_ip = no
  plugins {{
    vici {{
      socket = unix://{d}/charon.vici
    }}
  }}
  filelog {{
    main {{
      path = {d}/charon.log
      default = 1
      ike = 2
      time_format = %T
      flush_line = yes
    }}
  }}
}}
swanctl {{
  socket = unix://{d}/charon.vici
}}
"#
    )
}

fn swanctl_conf(c: &CharonConfig) -> String {
    let mut s = String::from("connections {\n");
    for conn in &c.connections {
        let _ = writeln!(s, "  {} {{", conn.name);
        let _ = writeln!(s, "    version = 1\n    aggressive = no");
        let _ = writeln!(
            s,
            "    local_addrs = {}\n    remote_addrs = {}",
            c.local_addr, c.remote_addr
        );
        let _ = writeln!(s, "    proposals = {}", conn.ike_proposals);
        if let Some(d) = conn.dpd_delay {
            let _ = writeln!(s, "    dpd_delay = {d}s");
        }
        let _ = writeln!(
            s,
            "    local {{\n      auth = psk\n      id = {}\n    }}",
            c.local_addr
        );
        let _ = writeln!(
            s,
            "    remote {{\n      auth = psk\n      id = {}\n    }}",
            c.remote_addr
        );
        s.push_str("    children {\n");
        for child in &conn.children {
            let _ = writeln!(s, "      {} {{", child.name);
            let _ = writeln!(
                s,
                "        local_ts = {}\n        remote_ts = {}",
                child.local_ts, child.remote_ts
            );
            let _ = writeln!(
                s,
                "        esp_proposals = {}\n        mode = tunnel",
                child.esp_proposals
            );
            if let Some(r) = child.rekey_time {
                let _ = writeln!(s, "        rekey_time = {r}s\n        rand_time = 0s");
            }
            if let Some(l) = child.life_time {
                let _ = writeln!(s, "        life_time = {l}s");
            }
            s.push_str("      }\n");
        }
        s.push_str("    }\n  }\n");
    }
    s.push_str("}\nsecrets {\n  ike-gw {\n");
    let _ = writeln!(s, "    id = {}\n    secret = \"{}\"", c.remote_addr, c.psk);
    s.push_str("  }\n}\n");
    s
}
