//! Behaviour of the ESP/AH engine beyond interoperability: sequence numbers and ESN, the
//! anti-replay window, lifetimes and their events, outer header fields, tunnel MTU, padding
//! checks, AH's mutable fields, and counters read from another thread.

mod esp_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::{build_esp_transform, Backend};
use dataplane::esp::fragment::fragment_ipv4;
use dataplane::esp::{DropReason, InboundSa, OutboundSa, SaEventKind, OUTER_TTL};
use dataplane::sa::{Cipher, DfMode, Integrity, Lifetime};
use dataplane::wire::{checksum, ipv4::Ipv4Packet, ipv6::Ipv6Packet, udp::UdpPacket};
use esp_support::*;

fn pair(spec: &dataplane::sa::SaSpec) -> (OutboundSa, InboundSa) {
    (
        OutboundSa::new(spec, 0, Backend::Fastest).unwrap(),
        InboundSa::new(&as_inbound(spec), 0, Backend::Fastest).unwrap(),
    )
}

fn seal(out: &mut OutboundSa, inner: &[u8]) -> HeapBuf {
    let mut b = HeapBuf::from_slice(inner);
    assert_eq!(out.encapsulate(&mut b, 0).0, Ok(()));
    b
}

#[test]
fn round_trip_over_every_suite_and_shape_in_bursts() {
    let mut rng = TestRng::new(3);
    for &(cipher, integrity) in ESP_SUITES {
        for (v6, udp) in [(false, false), (false, true), (true, false), (true, true)] {
            let spec = esp_spec(cipher, integrity, v6, udp, rng.next_u64());
            let (mut out, mut inb) = pair(&spec);
            let inner: Vec<Vec<u8>> = (0..32)
                .map(|i| inner_packet(i % 3 == 0, 48 + rng.below(1400), 0, false, &mut rng))
                .collect();
            let mut bufs: Vec<HeapBuf> = inner.iter().map(|p| HeapBuf::from_slice(p)).collect();
            let mut verdicts = vec![Ok(()); bufs.len()];
            out.encapsulate_burst(&mut bufs, &mut verdicts, 0);
            assert!(verdicts.iter().all(Result::is_ok));
            inb.decapsulate_burst(&mut bufs, &mut verdicts, 0);
            assert!(
                verdicts.iter().all(Result::is_ok),
                "{cipher:?}/{integrity:?} v6={v6} udp={udp}: {verdicts:?}"
            );
            for (b, p) in bufs.iter().zip(&inner) {
                assert_eq!(b.data(), &p[..]);
            }
        }
    }
}

#[test]
fn outer_header_follows_the_template_dscp_and_df_mode() {
    let mut rng = TestRng::new(4);
    for (mode, inner_df, expect_df) in [
        (DfMode::Copy, true, true),
        (DfMode::Copy, false, false),
        (DfMode::Clear, true, false),
        (DfMode::Set, false, true),
    ] {
        let mut spec = esp_spec(Cipher::AesGcm128, Integrity::None, false, true, 11);
        spec.df_mode = mode;
        let (mut out, _) = pair(&spec);
        let b = seal(
            &mut out,
            &inner_packet(false, 300, 0xb8, inner_df, &mut rng),
        );
        let ip = Ipv4Packet::new_checked(b.data()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.ttl(), ip.dscp_ecn(), ip.dont_fragment(), ip.protocol()),
            (OUTER_TTL, 0xb8, expect_df, 17)
        );
        assert_eq!(ip.total_len(), b.len());
        assert_eq!(
            (ip.src(), ip.dst()),
            (
                spec.local.to_string().parse().unwrap(),
                spec.remote.to_string().parse().unwrap()
            )
        );
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.checksum(), u.len()),
            (4500, 4500, 0, b.len() - 20)
        );
    }
    let spec = esp_spec(Cipher::AesGcm128, Integrity::None, true, true, 12);
    let (mut out, _) = pair(&spec);
    let b = seal(&mut out, &inner_packet(true, 300, 0x48, true, &mut rng));
    let ip = Ipv6Packet::new_checked(b.data()).unwrap();
    assert_eq!(
        (
            ip.hop_limit(),
            ip.traffic_class(),
            ip.next_header(),
            ip.total_len()
        ),
        (OUTER_TTL, 0x48, 17, b.len())
    );
    let pseudo =
        checksum::pseudo_header_sum(ip.src_bytes(), ip.dst_bytes(), 17, ip.payload_len() as u32);
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_ne!(u.checksum(), 0);
    assert!(u.verify_checksum(pseudo));
}

#[test]
fn sequence_space_exhaustion_stops_the_sa_and_raises_one_event() {
    let spec = esp_spec(Cipher::AesCbc128, Integrity::HmacSha1_96, false, false, 13);
    let (mut out, _) = pair(&spec);
    out.set_next_sequence(u64::from(u32::MAX));
    let mut rng = TestRng::new(5);
    let p = inner_packet(false, 100, 0, false, &mut rng);
    let (v, e) = out.encapsulate(&mut HeapBuf::from_slice(&p), 0);
    assert_eq!(v, Ok(()));
    assert!(e.is_empty());
    let (v, e) = out.encapsulate(&mut HeapBuf::from_slice(&p), 0);
    assert_eq!(v, Err(DropReason::SequenceExhausted));
    assert!(e.contains(SaEventKind::SequenceExhausted));
    let (v, e) = out.encapsulate(&mut HeapBuf::from_slice(&p), 0);
    assert_eq!(v, Err(DropReason::Expired));
    assert!(e.is_empty(), "raised once");
    assert_eq!(out.counters().snapshot().other_drops, 2);
}

#[test]
fn extended_sequence_numbers_cross_the_32_bit_boundary() {
    for cipher in [Cipher::AesGcm256, Cipher::AesCbc256] {
        let integrity = if cipher.is_aead() {
            Integrity::None
        } else {
            Integrity::HmacSha256_128
        };
        let mut spec = esp_spec(cipher, integrity, false, false, 14);
        spec.extended_sequence_numbers = true;
        let (mut out, mut inb) = pair(&spec);
        out.set_next_sequence(u64::from(u32::MAX) - 3);
        let mut rng = TestRng::new(6);
        for _ in 0..8 {
            let p = inner_packet(false, 120, 0, false, &mut rng);
            let mut b = seal(&mut out, &p);
            assert_eq!(
                inb.decapsulate(&mut b, 0).0,
                Ok(()),
                "{cipher:?} seq {}",
                out.last_sequence()
            );
            assert_eq!(b.data(), &p[..]);
        }
        assert_eq!(inb.highest_sequence(), u64::from(u32::MAX) + 4);
        // A packet sealed with the wrong high half (a replay from 2^32 earlier) fails the ICV.
        let mut old = OutboundSa::new(&spec, 0, Backend::Fastest).unwrap();
        old.set_next_sequence(100);
        let mut b = seal(&mut old, &inner_packet(false, 120, 0, false, &mut rng));
        assert_eq!(
            inb.decapsulate(&mut b, 0).0,
            Err(DropReason::Authentication)
        );
    }
}

#[test]
fn replay_window_of_4096_accepts_reordering_and_refuses_old_and_duplicate() {
    let mut spec = esp_spec(Cipher::AesGcm128, Integrity::None, false, false, 15);
    spec.replay_window = 4096;
    let (mut out, mut inb) = pair(&spec);
    let mut rng = TestRng::new(7);
    let sealed: Vec<HeapBuf> = (0..5000)
        .map(|_| seal(&mut out, &inner_packet(false, 64, 0, false, &mut rng)))
        .collect();
    // Deliver 5000 first, then everything from 904 upward in reverse: all inside the window.
    assert_eq!(inb.decapsulate(&mut sealed[4999].clone(), 0).0, Ok(()));
    for i in (904..4999).rev() {
        assert_eq!(
            inb.decapsulate(&mut sealed[i].clone(), 0).0,
            Ok(()),
            "seq {}",
            i + 1
        );
    }
    assert_eq!(
        inb.decapsulate(&mut sealed[903].clone(), 0).0,
        Err(DropReason::Replay),
        "left of the window"
    );
    assert_eq!(
        inb.decapsulate(&mut sealed[2000].clone(), 0).0,
        Err(DropReason::Replay),
        "duplicate"
    );
    // A forged packet with a fresh number must not move the window.
    let mut forged = sealed[10].clone();
    forged.data_mut()[24..28].copy_from_slice(&6000u32.to_be_bytes());
    assert_eq!(
        inb.decapsulate(&mut forged, 0).0,
        Err(DropReason::Authentication)
    );
    assert_eq!(inb.highest_sequence(), 5000);
    let c = inb.counters().snapshot();
    assert_eq!((c.packets, c.replays, c.auth_failures), (4096, 2, 1));
}

#[test]
fn lifetimes_raise_soft_then_hard_events_and_hard_limits_stop_traffic() {
    let mut spec = esp_spec(Cipher::AesGcm128, Integrity::None, false, false, 16);
    spec.lifetime = Lifetime {
        soft_seconds: Some(100),
        hard_seconds: Some(200),
        soft_kilobytes: Some(4),
        hard_kilobytes: Some(8),
    };
    let mut out = OutboundSa::new(&spec, 1000, Backend::Fastest).unwrap();
    let mut rng = TestRng::new(8);
    let p = inner_packet(false, 1000, 0, false, &mut rng);
    let mut events = Vec::new();
    for i in 0..10u64 {
        let (v, e) = out.encapsulate(&mut HeapBuf::from_slice(&p), 1000 + i);
        events.extend(e.iter().map(|k| (i, k, v)));
    }
    // 4 KiB soft after the 5th packet (4096 bytes < 5000), 8 KiB hard refuses the 9th.
    assert_eq!(
        events,
        vec![
            (4, SaEventKind::SoftKilobytes, Ok(())),
            (8, SaEventKind::HardKilobytes, Err(DropReason::Expired))
        ]
    );

    let mut spec = esp_spec(Cipher::AesGcm128, Integrity::None, false, false, 17);
    spec.lifetime = Lifetime {
        soft_seconds: Some(100),
        hard_seconds: Some(200),
        ..Lifetime::default()
    };
    let (_, mut inb) = pair(&spec);
    let mut bufs: Vec<HeapBuf> = vec![];
    let mut verdicts: Vec<dataplane::esp::Verdict> = vec![];
    assert!(inb
        .decapsulate_burst(&mut bufs, &mut verdicts, 99)
        .is_empty());
    assert_eq!(
        inb.decapsulate_burst(&mut bufs, &mut verdicts, 100)
            .iter()
            .collect::<Vec<_>>(),
        vec![SaEventKind::SoftSeconds]
    );
    assert!(inb
        .decapsulate_burst(&mut bufs, &mut verdicts, 150)
        .is_empty());
    assert_eq!(
        inb.decapsulate_burst(&mut bufs, &mut verdicts, 200)
            .iter()
            .collect::<Vec<_>>(),
        vec![SaEventKind::HardSeconds]
    );
    let (mut out, _) = pair(&spec);
    let mut b = seal(&mut out, &p);
    assert_eq!(inb.decapsulate(&mut b, 201).0, Err(DropReason::Expired));
}

#[test]
fn tunnel_mtu_refuses_or_fragments_and_the_reported_mtu_is_exact() {
    let mut spec = esp_spec(Cipher::AesCbc128, Integrity::HmacSha1_96, false, true, 18);
    spec.tunnel_mtu = Some(1000);
    let (mut out, mut inb) = pair(&spec);
    let mut rng = TestRng::new(9);
    let (v, _) = out.encapsulate(
        &mut HeapBuf::from_slice(&inner_packet(false, 1200, 0, true, &mut rng)),
        0,
    );
    let Err(DropReason::TooBig {
        mtu,
        may_fragment: false,
    }) = v
    else {
        panic!("{v:?}")
    };
    let (v6, _) = out.encapsulate(
        &mut HeapBuf::from_slice(&inner_packet(true, 1200, 0, true, &mut rng)),
        0,
    );
    assert_eq!(
        v6,
        Err(DropReason::TooBig {
            mtu,
            may_fragment: false
        })
    );
    // The reported MTU is the largest inner packet that still fits.
    let fits = seal(
        &mut out,
        &inner_packet(false, usize::from(mtu), 0, true, &mut rng),
    );
    assert!(fits.len() <= 1000, "{}", fits.len());
    let (v, _) = out.encapsulate(
        &mut HeapBuf::from_slice(&inner_packet(
            false,
            usize::from(mtu) + 1,
            0,
            true,
            &mut rng,
        )),
        0,
    );
    assert!(matches!(v, Err(DropReason::TooBig { .. })));

    // Without DF the pipeline fragments the inner packet to `mtu` and sends each piece.
    let big = inner_packet(false, 2000, 0, false, &mut rng);
    let (v, _) = out.encapsulate(&mut HeapBuf::from_slice(&big), 0);
    let Err(DropReason::TooBig {
        mtu,
        may_fragment: true,
    }) = v
    else {
        panic!("{v:?}")
    };
    let mut pieces: Vec<HeapBuf> = (0..4).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
    let n = fragment_ipv4(&big, usize::from(mtu), &mut pieces).unwrap();
    pieces.truncate(n);
    let mut verdicts = vec![Ok(()); n];
    out.encapsulate_burst(&mut pieces, &mut verdicts, 0);
    assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
    assert!(pieces.iter().all(|p| p.len() <= 1000));
    inb.decapsulate_burst(&mut pieces, &mut verdicts, 0);
    assert!(verdicts.iter().all(Result::is_ok));
    let mut payload = Vec::new();
    for p in &pieces {
        payload.extend_from_slice(Ipv4Packet::new_checked(p.data()).unwrap().payload());
    }
    assert_eq!(payload, &big[20..]);
}

#[test]
fn bad_padding_wrong_spi_and_missing_headroom_are_named() {
    let spec = esp_spec(Cipher::AesCbc128, Integrity::HmacSha1_96, false, false, 19);
    let (_, mut inb) = pair(&spec);
    // Hand-build an ESP packet whose padding is 1,2,9 instead of 1,2,3, sealed with the SA's keys.
    let t = build_esp_transform(
        spec.cipher,
        spec.integrity,
        &spec.keys.encryption,
        &spec.keys.integrity,
        Backend::Fastest,
    )
    .unwrap();
    let mut rng = TestRng::new(10);
    let inner = inner_packet(false, 59, 0, false, &mut rng);
    let mut esp = spec.spi.to_be_bytes().to_vec();
    esp.extend_from_slice(&1u32.to_be_bytes());
    esp.extend_from_slice(&[0u8; 16]);
    esp.extend_from_slice(&inner);
    esp.extend_from_slice(&[1, 2, 9, 3, 4]);
    esp.extend_from_slice(&[0u8; 12]);
    t.seal(&mut esp, None);
    let mut packet = vec![0u8; 20];
    let (src, dst) = match (spec.remote, spec.local) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => (s, d),
        _ => unreachable!(),
    };
    dataplane::wire::ipv4::write_header(
        &mut packet,
        0,
        (20 + esp.len()) as u16,
        1,
        0,
        64,
        50,
        src,
        dst,
    );
    packet.extend_from_slice(&esp);
    assert_eq!(
        inb.decapsulate(&mut HeapBuf::from_slice(&packet), 0).0,
        Err(DropReason::BadPadding)
    );

    let mut other = spec.clone();
    other.spi += 1;
    let (mut out_other, _) = pair(&other);
    let mut b = seal(&mut out_other, &inner);
    assert_eq!(inb.decapsulate(&mut b, 0).0, Err(DropReason::WrongSpi));
    let c = inb.counters().snapshot();
    assert_eq!((c.bad_padding, c.other_drops, c.packets), (1, 1, 0));

    let (mut out, _) = pair(&spec);
    let mut tight = HeapBuf::with_capacity(2048, 20);
    tight.append(inner.len()).unwrap().copy_from_slice(&inner);
    assert_eq!(out.encapsulate(&mut tight, 0).0, Err(DropReason::NoRoom));
}

#[test]
fn ah_ignores_mutable_fields_and_protects_the_rest() {
    for v6 in [false, true] {
        let spec = ah_spec(Integrity::HmacSha1_96, v6, 20);
        let (mut out, mut inb) = pair(&spec);
        let mut rng = TestRng::new(11);
        let inner = inner_packet(!v6, 300, 0x20, false, &mut rng);
        let mut b = seal(&mut out, &inner);
        // Routers may change TTL/hop limit and DSCP on the way.
        {
            let d = b.data_mut();
            if v6 {
                d[7] = 3;
                d[1] ^= 0x30;
            } else {
                d[8] = 3;
                d[1] = 0x68;
                d[10..12].fill(0);
                let c = checksum::checksum(&d[..20]);
                d[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        assert_eq!(inb.decapsulate(&mut b, 0).0, Ok(()), "v6={v6}");
        assert_eq!(b.data(), &inner[..]);
        let mut b = seal(&mut out, &inner);
        let last = b.len() - 1;
        b.data_mut()[last] ^= 1;
        assert_eq!(
            inb.decapsulate(&mut b, 0).0,
            Err(DropReason::Authentication)
        );
    }
}

#[test]
fn counters_are_readable_from_another_thread_while_the_worker_runs() {
    let spec = esp_spec(Cipher::AesGcm128, Integrity::None, false, false, 21);
    let (mut out, _) = pair(&spec);
    let counters = out.counters();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut last = 0;
            loop {
                // Once `done` is seen, the worker's last counter stores are visible too.
                let finished = done.load(Ordering::Acquire);
                let now = counters.snapshot();
                assert!(now.packets >= last, "counters went backwards");
                last = now.packets;
                if finished {
                    return now;
                }
                std::thread::yield_now();
            }
        })
    };
    let mut rng = TestRng::new(12);
    let inner = inner_packet(false, 200, 0, false, &mut rng);
    let mut bufs: Vec<HeapBuf> = (0..32).map(|_| HeapBuf::from_slice(&inner)).collect();
    let mut verdicts = vec![Ok(()); 32];
    for _ in 0..500 {
        for b in bufs.iter_mut() {
            b.reset(HeapBuf::DEFAULT_HEADROOM);
            b.append(inner.len()).unwrap().copy_from_slice(&inner);
        }
        out.encapsulate_burst(&mut bufs, &mut verdicts, 0);
    }
    done.store(true, Ordering::Release);
    let seen_by_reader = reader.join().unwrap();
    assert_eq!(
        (seen_by_reader.packets, seen_by_reader.bytes),
        (16_000, 16_000 * 200)
    );
    assert_eq!(out.counters().snapshot(), seen_by_reader);
}
