//! strongSwan's charon (Debian package) as the reference IKEv1 responder: one instance in its
//! own namespace, accepting any peer with one pre-shared key, user-space ESP (kernel-libipsec,
//! since the kernel here has no ESP), charged for the CPU time of the whole process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{ChildGuard, Namespace};
use crate::proc_stat;

/// How charon is set up for the run.
pub struct CharonSetup<'a> {
    pub local_address: &'a str,
    pub psk: &'a str,
    /// Our side's protected network, as a traffic selector.
    pub local_ts: &'a str,
    /// Covers every peer's protected network; charon narrows it to what each peer proposes.
    pub remote_ts: &'a str,
    /// `dh_exponent_ansi_x9_42 = no`: ask for short exponents, as dyntun uses (charon's default
    /// asks for full-length ones; OpenSSL 3 may shorten them anyway for the well-known groups).
    pub short_exponents: bool,
}

pub fn strongswan_conf(dir: &Path, s: &CharonSetup) -> String {
    let dir = dir.display();
    format!(
        r#"charon {{
    load = random nonce openssl aes sha1 sha2 hmac gmp gcm pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
    # Thousands of IKE SAs: the default table (one bucket) would make every lookup a list walk.
    ikesa_table_size = 4096
    ikesa_table_segments = 16
    dh_exponent_ansi_x9_42 = {ansi}
    retransmit_tries = 3
    filelog {{
        log {{
            path = {dir}/charon.log
            default = 0
        }}
    }}
    plugins {{ vici {{ socket = unix://{dir}/charon.vici }} }}
}}
swanctl {{ socket = unix://{dir}/charon.vici }}
"#,
        ansi = if s.short_exponents { "no" } else { "yes" },
    )
}

pub fn swanctl_conf(s: &CharonSetup) -> String {
    format!(
        r#"connections {{
    dynamic-peers {{
        version = 1
        aggressive = no
        local_addrs = {local}
        proposals = aes128-sha1-modp1024,aes128-sha1-modp2048
        # The generator always speaks NAT-T and proposes UDP-encapsulated tunnels, and
        # kernel-libipsec only handles UDP-encapsulated ESP.
        encap = yes
        local {{ auth = psk }}
        remote {{ auth = psk }}
        children {{
            lan {{
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = aes128gcm16
            }}
        }}
    }}
}}
secrets {{
    ike-any {{ secret = "{psk}" }}
}}
"#,
        local = s.local_address,
        local_ts = s.local_ts,
        remote_ts = s.remote_ts,
        psk = s.psk,
    )
}

pub struct CharonResponder {
    process: ChildGuard,
    ns_name: String,
    dir: PathBuf,
}

impl CharonResponder {
    /// Writes the configuration into `dir`, starts charon in `ns` with a private `/run` (its pid
    /// file path is compiled in) and loads the connection.
    pub fn start(
        ns: &Namespace,
        dir: &Path,
        setup: &CharonSetup,
    ) -> Result<CharonResponder, String> {
        for sub in [
            "run", "x509", "x509ca", "private", "pubkey", "pkcs12", "rsa", "ecdsa",
        ] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        std::fs::write(dir.join("strongswan.conf"), strongswan_conf(dir, setup))
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("swanctl.conf"), swanctl_conf(setup)).map_err(|e| e.to_string())?;
        let out = std::fs::File::create(dir.join("stdout.log")).map_err(|e| e.to_string())?;
        let script = format!(
            "mount --bind '{}' /run && exec /usr/lib/ipsec/charon",
            dir.join("run").display()
        );
        let child = ns
            .command("sh")
            .args(["-c", &script])
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("charon: {e}"))?;
        let mut charon = CharonResponder {
            process: ChildGuard::new(child, libc::SIGTERM, Duration::from_secs(10)),
            ns_name: ns.name().to_string(),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !dir.join("charon.vici").exists() {
            if let Some(status) = charon.process.exited() {
                return Err(format!("charon exited ({status}): {}", charon.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("charon did not start: {}", charon.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let loaded = charon.swanctl(&[
            "--load-all",
            "--file",
            &dir.join("swanctl.conf").to_string_lossy(),
        ])?;
        if !loaded.contains("loaded connection 'dynamic-peers'") {
            return Err(format!("swanctl --load-all: {loaded}"));
        }
        Ok(charon)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// CPU seconds of charon, all its threads.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        proc_stat::process_cpu(self.pid())
            .map(|t| t.seconds(proc_stat::ticks_per_second()))
            .map_err(|e| e.to_string())
    }

    /// Established IKE SAs, from `swanctl --stats`.
    pub fn ike_sas(&self) -> Result<u64, String> {
        let text = self.swanctl(&["--stats"])?;
        ike_sa_total(&text).ok_or_else(|| format!("no IKE_SAs line in: {text}"))
    }

    fn swanctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns_name, "swanctl"])
            .args(args)
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .output()
            .map_err(|e| format!("swanctl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "swanctl {}: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("charon.log"))
            .or_else(|_| std::fs::read_to_string(self.dir.join("stdout.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Established IKE SAs from `swanctl --stats` ("IKE_SAs: 12 total, 3 half-open"): total minus
/// half-open.
pub fn ike_sa_total(stats: &str) -> Option<u64> {
    let line = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("IKE_SAs:"))?;
    let mut words = line.split_whitespace();
    let total: u64 = words.next()?.parse().ok()?;
    let half_open: u64 = line
        .split(',')
        .nth(1)
        .and_then(|h| h.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some(total.saturating_sub(half_open))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_ike_sas_are_total_minus_half_open() {
        let stats = "uptime: 8 seconds, since Nov 28 04:00:00 2026\n\
                     worker threads: 16 total, 11 idle, working: 4/0/1/0\n\
                     job queues: 0/0/0/0\n\
                     jobs scheduled: 3\n\
                     IKE_SAs: 1000 total, 12 half-open\n\
                     loaded plugins: charon random nonce\n";
        assert_eq!(ike_sa_total(stats), Some(988));
        assert_eq!(ike_sa_total("IKE_SAs: 7 total, 0 half-open"), Some(7));
        assert_eq!(ike_sa_total("no such line"), None);
        assert_eq!(ike_sa_total("IKE_SAs: lots total"), None);
    }

    #[test]
    fn the_exponent_choice_reaches_strongswan_conf() {
        let setup = |short| CharonSetup {
            local_address: "10.9.9.1",
            psk: "k",
            local_ts: "172.16.1.0/24",
            remote_ts: "20.0.0.0/8",
            short_exponents: short,
        };
        let dir = Path::new("/tmp/x");
        assert!(strongswan_conf(dir, &setup(true)).contains("dh_exponent_ansi_x9_42 = no"));
        assert!(strongswan_conf(dir, &setup(false)).contains("dh_exponent_ansi_x9_42 = yes"));
        assert!(swanctl_conf(&setup(true)).contains("local_addrs = 10.9.9.1"));
    }
}
