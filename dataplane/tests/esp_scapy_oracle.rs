//! dyntun's ESP/AH against an independent implementation: scapy's `SecurityAssociation`.
//!
//! For every suite, IPv4 and IPv6 outer headers, plain and UDP-encapsulated (plus ESN, AH and the
//! AH+ESP bundle), packets dyntun encrypts must decrypt in scapy to exactly the inner packet, and
//! packets scapy encrypts must decapsulate in dyntun to exactly the inner packet. All cases go
//! to one python run. Tampered, replayed and truncated scapy packets must be refused and counted.

mod esp_support;

use std::path::PathBuf;
use std::process::Command;

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{DropReason, InboundSa, OutboundSa};
use dataplane::sa::{Cipher, Encapsulation, Integrity, IpsecProtocol, SaSpec};
use esp_support::*;
use serde_json::{json, Value};

/// Removes the exchange files even when an assertion fails.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum Mode {
    Esp(SaSpec),
    Ah(SaSpec),
    Bundle(SaSpec, SaSpec),
}

struct Case {
    name: String,
    mode: Mode,
    inner: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

fn outbound(mode: &Mode) -> OutboundSa {
    match mode {
        Mode::Esp(s) | Mode::Ah(s) => OutboundSa::new(s, 0, Backend::Fastest).unwrap(),
        Mode::Bundle(e, a) => OutboundSa::new_bundle(e, a, 0, Backend::Fastest).unwrap(),
    }
}

fn inbound(mode: &Mode, backend: Backend) -> InboundSa {
    match mode {
        Mode::Esp(s) | Mode::Ah(s) => InboundSa::new(&as_inbound(s), 0, backend).unwrap(),
        Mode::Bundle(e, a) => {
            InboundSa::new_bundle(&as_inbound(e), &as_inbound(a), 0, backend).unwrap()
        }
    }
}

fn case_json(c: &Case) -> Value {
    let (esp, ah, mode) = match &c.mode {
        Mode::Esp(s) => (Some(s), None, "esp"),
        Mode::Ah(a) => (None, Some(a), "ah"),
        Mode::Bundle(e, a) => (Some(e), Some(a), "bundle"),
    };
    let main = esp.or(ah).unwrap();
    let (udp, lp, rp) = match main.encapsulation {
        Encapsulation::Udp {
            local_port,
            remote_port,
        } => (true, local_port, remote_port),
        Encapsulation::None => (false, 0, 0),
    };
    json!({
        "name": c.name,
        "mode": mode,
        "local": main.local.to_string(),
        "remote": main.remote.to_string(),
        "udp": udp,
        "local_port": lp,
        "remote_port": rp,
        "esn": main.extended_sequence_numbers,
        "spi": esp.map_or(0, |s| s.spi),
        "cipher": esp.map_or("null", |s| s.cipher.junos_name()),
        "integrity": esp.map_or("none", |s| s.integrity.junos_name()),
        "enc_key": hex(esp.map_or(&[][..], |s| &s.keys.encryption[..])),
        "auth_key": hex(esp.map_or(&[][..], |s| &s.keys.integrity[..])),
        "ah_spi": ah.map_or(0, |s| s.spi),
        "ah_integrity": ah.map_or("none", |s| s.integrity.junos_name()),
        "ah_key": hex(ah.map_or(&[][..], |s| &s.keys.integrity[..])),
        "inner_packets": c.inner.iter().map(|p| hex(p)).collect::<Vec<_>>(),
        "dyntun_packets": c.sent.iter().map(|p| hex(p)).collect::<Vec<_>>(),
    })
}

fn build_cases() -> Vec<Case> {
    let mut rng = TestRng::new(0x5eed);
    let mut modes: Vec<(String, Mode)> = Vec::new();
    let mut seed = 1;
    for &(cipher, integrity) in ESP_SUITES {
        for v6 in [false, true] {
            for udp in [false, true] {
                seed += 1;
                let name = format!(
                    "{}/{}/{}/{}",
                    cipher.junos_name(),
                    integrity.junos_name(),
                    if v6 { "v6" } else { "v4" },
                    if udp { "udp" } else { "plain" }
                );
                modes.push((name, Mode::Esp(esp_spec(cipher, integrity, v6, udp, seed))));
            }
        }
    }
    for v6 in [false, true] {
        let mut s = esp_spec(
            Cipher::AesGcm128,
            Integrity::None,
            v6,
            false,
            900 + v6 as u64,
        );
        s.extended_sequence_numbers = true;
        modes.push((format!("aes-128-gcm/esn/{v6}"), Mode::Esp(s)));
        for integrity in [Integrity::HmacSha1_96, Integrity::HmacMd5_96] {
            modes.push((
                format!("ah/{}/{v6}", integrity.junos_name()),
                Mode::Ah(ah_spec(integrity, v6, 700 + v6 as u64)),
            ));
        }
        modes.push((
            format!("bundle/{v6}"),
            Mode::Bundle(
                esp_spec(Cipher::AesCbc128, Integrity::HmacSha1_96, v6, false, 800),
                ah_spec(Integrity::HmacSha1_96, v6, 801),
            ),
        ));
    }
    modes
        .into_iter()
        .map(|(name, mode)| {
            let mut sa = outbound(&mode);
            let inner: Vec<Vec<u8>> = [
                (false, 64),
                (true, 200),
                (false, 777),
                (true, 1300),
                (false, 1400),
            ]
            .iter()
            .map(|&(v6, len)| inner_packet(v6, len, 0x28, false, &mut rng))
            .collect();
            let mut bufs: Vec<HeapBuf> = inner.iter().map(|p| HeapBuf::from_slice(p)).collect();
            let mut verdicts = vec![Ok(()); bufs.len()];
            sa.encapsulate_burst(&mut bufs, &mut verdicts, 0);
            assert!(verdicts.iter().all(|v| v.is_ok()), "{name}: {verdicts:?}");
            let sent = bufs.iter().map(|b| b.data().to_vec()).collect();
            Case {
                name,
                mode,
                inner,
                sent,
            }
        })
        .collect()
}

fn run_oracle(cases: &[Case], tag: &str) -> Vec<Value> {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let files = TempFiles(vec![
        dir.join(format!("dyntun-esp-oracle-{tag}-in-{pid}.json")),
        dir.join(format!("dyntun-esp-oracle-{tag}-out-{pid}.json")),
    ]);
    let input: Vec<Value> = cases.iter().map(case_json).collect();
    std::fs::write(&files.0[0], serde_json::to_vec(&input).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/esp_oracle.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&files.0[0])
        .arg(&files.0[1])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&std::fs::read(&files.0[1]).unwrap()).unwrap();
    parsed.as_array().unwrap().clone()
}

/// Rewrites IP (and UDP) lengths after shortening a packet, so only ESP sees the truncation.
fn fix_lengths(p: &mut [u8]) {
    let len = p.len();
    if p[0] >> 4 == 4 {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = dataplane::wire::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        if p[9] == 17 {
            p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
        }
    } else {
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        if p[6] == 17 {
            p[44..46].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
    }
}

#[test]
fn every_suite_interoperates_with_scapy_both_ways() {
    let cases = build_cases();
    let results = run_oracle(&cases, "interop");
    assert_eq!(results.len(), cases.len());
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(&results) {
        for (i, v) in result["decrypted"].as_array().unwrap().iter().enumerate() {
            if v != "ok" {
                failures.push(format!(
                    "scapy could not decrypt dyntun {} #{i}: {v}",
                    case.name
                ));
            }
        }
        for backend in [Backend::Fastest, Backend::Ring, Backend::PureRust] {
            let mut sa = inbound(&case.mode, backend);
            for (i, wire) in result["scapy_packets"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let mut buf = HeapBuf::from_slice(&unhex(wire.as_str().unwrap()));
                let (verdict, _) = sa.decapsulate(&mut buf, 0);
                if verdict.is_err() || buf.data() != &case.inner[i][..] {
                    failures.push(format!(
                        "dyntun ({backend:?}) could not decrypt scapy {} #{i}: {verdict:?}",
                        case.name
                    ));
                }
            }
            let c = sa.counters().snapshot();
            if c.packets as usize != case.inner.len()
                || c.bytes as usize != case.inner.iter().map(Vec::len).sum::<usize>()
            {
                failures.push(format!("{} ({backend:?}): counters {c:?}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn tampered_replayed_and_truncated_scapy_packets_are_refused_and_counted() {
    let cases = build_cases();
    let results = run_oracle(&cases, "refusals");
    for (case, result) in cases.iter().zip(&results) {
        let packets: Vec<Vec<u8>> = result["scapy_packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| unhex(w.as_str().unwrap()))
            .collect();
        let mut sa = inbound(&case.mode, Backend::Fastest);
        let is_esp_only = matches!(case.mode, Mode::Esp(_));

        // A flipped bit anywhere after the headers fails the ICV.
        let mut tampered = packets[2].clone();
        let at = tampered.len() - 20;
        tampered[at] ^= 0x10;
        let (v, _) = sa.decapsulate(&mut HeapBuf::from_slice(&tampered), 0);
        assert_eq!(v, Err(DropReason::Authentication), "{}", case.name);

        for p in &packets[..2] {
            assert_eq!(
                sa.decapsulate(&mut HeapBuf::from_slice(p), 0).0,
                Ok(()),
                "{}",
                case.name
            );
        }
        // The same packet again is a replay; so is the tampered one once the genuine one passed.
        let (v, _) = sa.decapsulate(&mut HeapBuf::from_slice(&packets[0]), 0);
        assert_eq!(v, Err(DropReason::Replay), "{}", case.name);

        // Cut into the ESP trailer (lengths fixed up so the outer header stays valid).
        let mut truncated = packets[3].clone();
        truncated.truncate(truncated.len() - 7);
        fix_lengths(&mut truncated);
        let (v, _) = sa.decapsulate(&mut HeapBuf::from_slice(&truncated), 0);
        assert!(
            matches!(
                v,
                Err(DropReason::Truncated) | Err(DropReason::Authentication)
            ),
            "{}: {v:?}",
            case.name
        );
        let mut stub = packets[4].clone();
        let keep = if stub[0] >> 4 == 4 { 20 } else { 40 }
            + if matches!(
                main_spec(&case.mode).encapsulation,
                Encapsulation::Udp { .. }
            ) {
                8
            } else {
                0
            }
            + 10;
        stub.truncate(keep);
        fix_lengths(&mut stub);
        let (v, _) = sa.decapsulate(&mut HeapBuf::from_slice(&stub), 0);
        assert_eq!(v, Err(DropReason::Truncated), "{}", case.name);

        let c = sa.counters().snapshot();
        assert_eq!(c.packets, 2, "{}", case.name);
        assert_eq!(c.replays, 1, "{}", case.name);
        assert_eq!(c.auth_failures + c.bad_header, 3, "{}: {c:?}", case.name);
        if is_esp_only
            && !main_spec(&case.mode).cipher.is_aead()
            && main_spec(&case.mode).cipher != Cipher::Null
        {
            // CBC: cutting 7 bytes breaks block alignment, caught before any crypto.
            assert_eq!(c.bad_header, 2, "{}: {c:?}", case.name);
        }
        let _ = IpsecProtocol::Esp;
    }
}

fn main_spec(mode: &Mode) -> &SaSpec {
    match mode {
        Mode::Esp(s) | Mode::Ah(s) => s,
        Mode::Bundle(e, _) => e,
    }
}
