//! Pre-shared keys and derived keys never reach the log, on success and failure paths. Its own
//! test binary: tracing caches per-callsite interest process-wide, so a subscriber installed
//! for one test thread would miss callsites other tests registered first.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::DhGroup;
use control::ike::identity::{Identity, IdentityData};
use control::ike::test_initiator::{Phase1Params, QuickParams, TestInitiator};
use control::ike::{IkeEvent, PskTable, Responder, ResponderPolicy, Secret};
use dataplane::sa::{Cipher, Integrity};

const PSK: &str = "log test key";

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Runs one exchange step: the responder's single reply, marker removed.
fn step(r: &mut Responder, local: &str, remote: &str, bytes: &[u8]) -> Vec<u8> {
    r.handle_datagram(Instant::now(), addr(local), addr(remote), bytes);
    match r.poll_transmit() {
        Some(t) if t.local.port() == 4500 => t.bytes[4..].to_vec(),
        Some(t) => t.bytes,
        None => Vec::new(),
    }
}

#[test]
fn keys_and_psk_never_reach_the_log() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut r = Responder::new(ResponderPolicy::new(
        vec!["10.1.1.1".parse().unwrap()],
        PskTable {
            explicit: Vec::new(),
            global: Some(Secret::from(PSK)),
        },
    ));
    let params = Phase1Params {
        cipher: IkeCipher::AesCbc { key_bits: 256 },
        hash: HashAlg::Sha256,
        group: DhGroup::Modp2048,
        lifetime_seconds: 3600,
        natt: true,
    };
    let mut good = TestInitiator::new(
        addr("10.2.2.2:500"),
        addr("10.1.1.1:500"),
        PSK,
        params.clone(),
    );
    let m1 = good.mm1();
    good.on_mm2(&step(&mut r, "10.1.1.1:500", "10.2.2.2:500", &m1))
        .unwrap();
    let m3 = good.mm3();
    good.on_mm4(&step(&mut r, "10.1.1.1:500", "10.2.2.2:500", &m3))
        .unwrap();
    let m5 = good.mm5(true);
    good.on_mm6(&step(&mut r, "10.1.1.1:4500", "10.2.2.2:4500", &m5))
        .unwrap();
    let subnet = |net: &str| Identity {
        data: IdentityData::Ipv4Subnet(net.parse().unwrap(), "255.255.255.0".parse().unwrap()),
        protocol: 0,
        port: 0,
    };
    let (_, q1) = good.qm1(&QuickParams {
        esp: Some((Cipher::AesCbc256, Integrity::HmacSha256_128)),
        ah: None,
        pfs: Some(DhGroup::Modp2048),
        ids: Some((subnet("172.16.2.0"), subnet("172.16.1.0"))),
        lifetime_seconds: None,
        lifetime_kilobytes: None,
        commit: false,
    });
    good.on_qm2(&step(&mut r, "10.1.1.1:4500", "10.2.2.2:4500", &q1))
        .unwrap();
    let q3 = good.qm3();
    step(&mut r, "10.1.1.1:4500", "10.2.2.2:4500", &q3);
    // A failure path too: a wrong key.
    let mut bad = TestInitiator::new(
        addr("10.4.4.4:500"),
        addr("10.1.1.1:500"),
        "wrong key",
        params,
    );
    let m1 = bad.mm1();
    bad.on_mm2(&step(&mut r, "10.1.1.1:500", "10.4.4.4:500", &m1))
        .unwrap();
    let m3 = bad.mm3();
    bad.on_mm4(&step(&mut r, "10.1.1.1:500", "10.4.4.4:500", &m3))
        .unwrap();
    step(&mut r, "10.1.1.1:4500", "10.4.4.4:4500", &bad.mm5(false));
    let mut specs = Vec::new();
    while let Some(e) = r.poll_event() {
        // What an operator's event logger would print.
        tracing::info!("event {e:?}");
        if let IkeEvent::ChildSaUp {
            inbound, outbound, ..
        } = e
        {
            specs.extend(inbound);
            specs.extend(outbound);
        }
    }
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("child SA established") && log.contains("IKE failure"),
        "{log}"
    );
    assert!(log.contains("SaKeys { encryption: <32 bytes>"), "{log}");
    assert!(!log.contains(PSK) && !log.contains("wrong key"), "{log}");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let decimal = |b: &[u8]| format!("{:?}", &b[..4]);
    assert_eq!(specs.len(), 2);
    for spec in specs {
        for key in [&spec.keys.encryption, &spec.keys.integrity] {
            assert!(!log.contains(&hex(&key[..6])), "key material in the log");
            assert!(
                !log.contains(decimal(key).trim_matches(|c| c == '[' || c == ']')),
                "key bytes in the log"
            );
        }
    }
}
