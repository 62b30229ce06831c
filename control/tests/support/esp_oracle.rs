//! scapy (Debian's /usr/bin/python3) as an independent ESP implementation: decrypts an ESP
//! packet with keys our responder derived. Keys travel over a pipe, never on a command line.

use std::io::Write;
use std::process::{Command, Stdio};

use dataplane::sa::{Cipher, Integrity, SaSpec};

const SCRIPT: &str = r#"
import sys, json
from scapy.all import IP, ICMP, Raw
from scapy.layers.ipsec import SecurityAssociation, ESP
job = json.loads(sys.stdin.read())
sa = SecurityAssociation(ESP, spi=job["spi"], crypt_algo=job["crypt"], crypt_key=bytes.fromhex(job["ckey"]),
                         auth_algo=job["auth"], auth_key=bytes.fromhex(job["akey"]) if job["akey"] else None)
outer = IP(src=job["src"], dst=job["dst"], proto=50) / Raw(bytes.fromhex(job["esp"]))
outer = IP(bytes(outer))
inner = sa.decrypt(outer)
if inner.haslayer(ICMP):
    print("inner %s > %s icmp" % (inner[ICMP].underlayer.src, inner[ICMP].underlayer.dst))
else:
    print("no-icmp " + inner.summary())
"#;

fn scapy_names(spec: &SaSpec) -> (&'static str, &'static str) {
    let crypt = match spec.cipher {
        Cipher::DesCbc => "DES",
        Cipher::TripleDesCbc => "3DES",
        Cipher::AesCbc128 | Cipher::AesCbc192 | Cipher::AesCbc256 => "AES-CBC",
        Cipher::AesGcm128 | Cipher::AesGcm256 => "AES-GCM",
        Cipher::Null => "NULL",
    };
    let auth = match spec.integrity {
        Integrity::None => "NULL",
        Integrity::HmacMd5_96 => "HMAC-MD5-96",
        Integrity::HmacSha1_96 => "HMAC-SHA1-96",
        Integrity::HmacSha256_128 => "SHA2-256-128",
    };
    (crypt, auth)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decrypts `esp` (starting at the SPI) with `spec`; returns scapy's one-line verdict
/// ("inner A > B icmp" on success) or its error text.
pub fn decrypt(spec: &SaSpec, src: &str, dst: &str, esp: &[u8]) -> String {
    let (crypt, auth) = scapy_names(spec);
    let job = serde_json::json!({
        "spi": spec.spi, "crypt": crypt, "ckey": hex(&spec.keys.encryption),
        "auth": auth, "akey": hex(&spec.keys.integrity), "src": src, "dst": dst, "esp": hex(esp),
    });
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        // Only the last line: a traceback's tail names the error without echoing the job.
        let err = String::from_utf8_lossy(&out.stderr);
        return format!("error: {}", err.lines().last().unwrap_or(""));
    }
    text
}
