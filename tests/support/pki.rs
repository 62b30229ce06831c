//! Certificates for end-to-end tests, made at test time with strongSwan's `pki` tool
//! (strongswan-pki, installed by scripts/setup.sh): CAs, gateway and peer certificates with
//! RSA-2048 or ECDSA P-256 keys, and expired ones. Everything is written under one directory
//! that the scenario removes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa2048,
    EcdsaP256,
}

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub dn: String,
}

/// Validity of an issued certificate.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    Days(u32),
    /// Valid in 2020 only: long expired.
    Expired,
}

fn run(args: &[&str], stdin_from: Option<&Path>, stdout_to: &Path) {
    let mut command = Command::new("pki");
    command.args(args);
    if let Some(input) = stdin_from {
        command.stdin(std::fs::File::open(input).expect("pki input"));
    }
    let out = command
        .stdout(std::fs::File::create(stdout_to).expect("pki output"))
        .stderr(Stdio::piped())
        .output()
        .expect("strongSwan's pki tool runs (strongswan-pki)");
    assert!(
        out.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn generate_key(kind: KeyType, path: &Path) {
    let (t, size) = match kind {
        KeyType::Rsa2048 => ("rsa", "2048"),
        KeyType::EcdsaP256 => ("ecdsa", "256"),
    };
    run(
        &["--gen", "--type", t, "--size", size, "--outform", "pem"],
        None,
        path,
    );
}

pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        TestPki {
            dir: dir.to_path_buf(),
        }
    }

    /// A self-signed RSA CA named `name` (files `NAME.pem`, `NAME.key`).
    pub fn ca(&self, name: &str, dn: &str) -> Issued {
        let key = self.dir.join(format!("{name}.key"));
        let cert = self.dir.join(format!("{name}.pem"));
        generate_key(KeyType::Rsa2048, &key);
        run(
            &[
                "--self",
                "--ca",
                "--lifetime",
                "30",
                "--in",
                key.to_str().unwrap(),
                "--dn",
                dn,
                "--outform",
                "pem",
            ],
            None,
            &cert,
        );
        Issued {
            cert,
            key,
            dn: dn.to_string(),
        }
    }

    /// An end-entity certificate `NAME.pem` with a new key `NAME.key`, issued by `ca`.
    pub fn issue(
        &self,
        ca: &Issued,
        name: &str,
        kind: KeyType,
        dn: &str,
        sans: &[&str],
        validity: Validity,
    ) -> Issued {
        let key = self.dir.join(format!("{name}.key"));
        let public = self.dir.join(format!("{name}.pub"));
        let cert = self.dir.join(format!("{name}.pem"));
        generate_key(kind, &key);
        run(
            &["--pub", "--in", key.to_str().unwrap(), "--outform", "pem"],
            None,
            &public,
        );
        let mut args: Vec<String> = [
            "--issue",
            "--cacert",
            ca.cert.to_str().unwrap(),
            "--cakey",
            ca.key.to_str().unwrap(),
            "--dn",
            dn,
            "--outform",
            "pem",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for san in sans {
            args.extend(["--san".to_string(), san.to_string()]);
        }
        match validity {
            Validity::Days(days) => args.extend(["--lifetime".into(), days.to_string()]),
            Validity::Expired => args.extend([
                "--not-before".into(),
                "01.01.20 00:00:00".into(),
                "--not-after".into(),
                "31.12.20 00:00:00".into(),
            ]),
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, Some(&public), &cert);
        Issued {
            cert,
            key,
            dn: dn.to_string(),
        }
    }
}

impl super::Scenario {
    /// Starts a charon for `role` that authenticates with `peer`'s certificate and trusts
    /// `ca` for the gateway's; `extra` sets CHARON_* variables (e.g. CHARON_LOCAL_ID).
    pub fn start_cert_peer(
        &mut self,
        role: &str,
        local: &str,
        local_ts: &str,
        peer: &Issued,
        ca: &Issued,
        extra: &[(&str, &str)],
    ) -> usize {
        let dir = self.work.join(format!("{role}-{}", self.peers.len()));
        let script = format!(
            ". scripts/lib/strongswan.sh; charon_start_cert {} {} {local} 10.1.1.1 {local_ts} 172.16.1.0/24 {} {} {}",
            self.ns(role),
            dir.display(),
            peer.cert.display(),
            peer.key.display(),
            ca.cert.display(),
        );
        let out = super::bash(&script, extra);
        assert!(
            out.status.success(),
            "charon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.peers.push(super::Peer {
            role: role.to_string(),
            dir,
        });
        self.peers.len() - 1
    }
}
