//! Control-plane cost of IKE: milliseconds per MODP exponentiation per group for the chosen
//! implementation (OpenSSL BIGNUM, constant-time mod-exp, 256-bit private exponent), the same
//! with a full-length exponent, and the rejected alternative (crypto-bigint, constant time);
//! then Main Mode + Quick Mode setups per control-core second, timing only the responder while
//! the in-process test initiator plays the peer.
//!
//! `cargo run --release -p dyntun-bench --bin ike_dh` prints a markdown table and writes
//! `bench/results/ike_dh.json`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::{DhGroup, DhKeyPair};
use control::ike::identity::{Identity, IdentityData};
use control::ike::test_initiator::{Phase1Params, QuickParams, TestInitiator};
use control::ike::{IkeEvent, PskTable, Responder, ResponderPolicy, Secret};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, Random, U1024, U2048};
use dataplane::sa::{Cipher, Integrity};
use serde_json::json;

const MIN_TIME: Duration = Duration::from_millis(400);

/// Median of per-iteration milliseconds over batches lasting at least MIN_TIME in total.
fn measure(mut f: impl FnMut()) -> f64 {
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < MIN_TIME || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn openssl_ms(group: DhGroup, bits: i32) -> f64 {
    let peer = DhKeyPair::generate(group).unwrap();
    // One keypair generation plus one shared secret is two exponentiations.
    measure(|| {
        let me = DhKeyPair::generate_with_bits(group, bits).unwrap();
        black_box(me.shared_secret(peer.public()).unwrap());
    }) / 2.0
}

fn crypto_bigint_ms(group: DhGroup) -> Option<f64> {
    let prime = group.prime_bytes();
    let mut rng = rand_core_from_getrandom();
    match group {
        DhGroup::Modp1024 => {
            let params = DynResidueParams::new(&U1024::from_be_slice(&prime));
            let g = DynResidue::new(&U1024::from_u8(2), params);
            Some(measure(|| {
                let x = U1024::random(&mut rng) >> 768;
                black_box(g.pow_bounded_exp(&x, 256).retrieve().to_be_bytes());
            }))
        }
        DhGroup::Modp2048 => {
            let params = DynResidueParams::new(&U2048::from_be_slice(&prime));
            let g = DynResidue::new(&U2048::from_u8(2), params);
            Some(measure(|| {
                let x = U2048::random(&mut rng) >> 1792;
                black_box(g.pow_bounded_exp(&x, 256).retrieve().to_be_bytes());
            }))
        }
        _ => None,
    }
}

fn rand_core_from_getrandom() -> crypto_bigint::rand_core::OsRng {
    crypto_bigint::rand_core::OsRng
}

fn gw(port: u16) -> SocketAddr {
    SocketAddr::new("10.1.1.1".parse().unwrap(), port)
}

/// Full MM + QM setups; returns (setups per second of responder time, responder ms per setup).
fn setups_per_second(group: DhGroup, count: usize) -> (f64, f64) {
    let policy = ResponderPolicy::new(
        vec!["10.1.1.1".parse().unwrap()],
        PskTable {
            explicit: Vec::new(),
            global: Some(Secret::from("bench key")),
        },
    );
    let mut r = Responder::new(policy);
    let mut responder_time = Duration::ZERO;
    let now = Instant::now();
    let mut deliver =
        |r: &mut Responder, local: SocketAddr, peer: SocketAddr, bytes: &[u8]| -> Vec<u8> {
            let t = Instant::now();
            r.handle_datagram(now, local, peer, bytes);
            let out = r.poll_transmit().map(|t| t.bytes);
            responder_time += t.elapsed();
            match out {
                Some(b) if local.port() == 4500 => b[4..].to_vec(),
                Some(b) => b,
                None => Vec::new(),
            }
        };
    let subnet = |net: &str| Identity {
        data: IdentityData::Ipv4Subnet(net.parse().unwrap(), "255.255.255.0".parse().unwrap()),
        protocol: 0,
        port: 0,
    };
    for i in 0..count {
        let ip = format!("10.{}.{}.{}", 2 + i / 65536, (i / 256) % 256, i % 256);
        let peer = SocketAddr::new(ip.parse().unwrap(), 500);
        let float = SocketAddr::new(peer.ip(), 4500);
        let params = Phase1Params {
            cipher: IkeCipher::AesCbc { key_bits: 128 },
            hash: HashAlg::Sha1,
            group,
            lifetime_seconds: 28800,
            natt: true,
        };
        let mut init = TestInitiator::new(peer, gw(500), "bench key", params);
        let m1 = init.mm1();
        init.on_mm2(&deliver(&mut r, gw(500), peer, &m1)).unwrap();
        let m3 = init.mm3();
        init.on_mm4(&deliver(&mut r, gw(500), peer, &m3)).unwrap();
        let m5 = init.mm5(true);
        init.on_mm6(&deliver(&mut r, gw(4500), float, &m5)).unwrap();
        let q = QuickParams {
            esp: Some((Cipher::AesGcm128, Integrity::None)),
            ah: None,
            pfs: None,
            ids: Some((subnet("172.16.2.0"), subnet("172.16.1.0"))),
            lifetime_seconds: Some(3600),
            lifetime_kilobytes: None,
            commit: false,
        };
        let (_, q1) = init.qm1(&q);
        init.on_qm2(&deliver(&mut r, gw(4500), float, &q1)).unwrap();
        let q3 = init.qm3();
        assert!(deliver(&mut r, gw(4500), float, &q3).is_empty());
        while let Some(e) = r.poll_event() {
            if let IkeEvent::Failure(f) = e {
                panic!("setup failed: {f:?}");
            }
        }
    }
    assert_eq!(r.child_sas().count(), count);
    let per_setup = responder_time.as_secs_f64() * 1e3 / count as f64;
    (1e3 / per_setup, per_setup)
}

fn main() {
    let mut rows = Vec::new();
    println!("| group | OpenSSL ct, 256-bit exp (chosen) ms | OpenSSL ct, full exp ms | crypto-bigint ct, 256-bit exp ms |");
    println!("|---|---|---|---|");
    for group in DhGroup::all() {
        let short = openssl_ms(group, control::ike::dh::PRIVATE_EXPONENT_BITS);
        let full = openssl_ms(group, (group.byte_len() * 8 - 1) as i32);
        let alt = crypto_bigint_ms(group);
        println!(
            "| {} ({} bit) | {short:.3} | {full:.3} | {} |",
            group.number(),
            group.byte_len() * 8,
            alt.map_or("—".to_string(), |v| format!("{v:.3}"))
        );
        rows.push(json!({"group": group.number(), "openssl_ct_256bit_ms": short, "openssl_ct_full_ms": full, "crypto_bigint_ct_256bit_ms": alt}));
    }
    println!();
    println!("| MM (AES-128/SHA1) + QM (AES-GCM, no PFS) | setups per control-core second | responder ms per setup |");
    println!("|---|---|---|");
    let mut setups = Vec::new();
    for group in [DhGroup::Modp1024, DhGroup::Modp2048] {
        let (per_second, ms) = setups_per_second(group, 300);
        println!("| group {} | {per_second:.0} | {ms:.3} |", group.number());
        setups.push(json!({"group": group.number(), "setups_per_second": per_second, "responder_ms_per_setup": ms}));
    }
    let out = json!({"benchmark": "ike_dh", "dh": rows, "setups": setups});
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ike_dh.json"),
        serde_json::to_string_pretty(&out).unwrap(),
    )
    .unwrap();
}
