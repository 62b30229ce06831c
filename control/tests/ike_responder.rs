//! The responder driven by the in-process initiator: every exchange, retransmissions, limits,
//! refusals, deletes, DPD, INITIAL-CONTACT, rekeys, lifetimes and a deterministic random-input
//! run. No sockets, no clocks: time is passed in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::DhGroup;
use control::ike::header::Header;
use control::ike::identity::{Identity, IdentityData};
use control::ike::notify::{Delete, Notify};
use control::ike::numbers::{notify_type, protocol};
use control::ike::payload::Payload;
use control::ike::test_initiator::{InitiatorChild, Phase1Params, QuickParams, TestInitiator};
use control::ike::{
    ChildId, DownReason, FailureReason, IkeEvent, PskTable, Responder, ResponderPolicy, Secret,
    Transmit,
};
use dataplane::sa::{Cipher, Encapsulation, Integrity, IpsecProtocol, SaSpec};

const PSK: &str = "unit test key";

fn gw(port: u16) -> SocketAddr {
    SocketAddr::new("10.1.1.1".parse().unwrap(), port)
}

fn peer_addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn policy() -> ResponderPolicy {
    ResponderPolicy::new(
        vec!["10.1.1.1".parse().unwrap()],
        PskTable {
            explicit: vec![("10.9.9.9".parse().unwrap(), Secret::from("explicit key"))],
            global: Some(Secret::from(PSK)),
        },
    )
}

fn phase1() -> Phase1Params {
    Phase1Params {
        cipher: IkeCipher::AesCbc { key_bits: 128 },
        hash: HashAlg::Sha1,
        group: DhGroup::Modp1024,
        lifetime_seconds: 28800,
        natt: true,
    }
}

fn subnet(net: &str, mask: &str) -> Identity {
    Identity {
        data: IdentityData::Ipv4Subnet(net.parse().unwrap(), mask.parse().unwrap()),
        protocol: 0,
        port: 0,
    }
}

fn quick() -> QuickParams {
    QuickParams {
        esp: Some((Cipher::AesCbc128, Integrity::HmacSha1_96)),
        ah: None,
        pfs: None,
        ids: Some((
            subnet("172.16.2.0", "255.255.255.0"),
            subnet("172.16.1.0", "255.255.255.0"),
        )),
        lifetime_seconds: Some(3600),
        lifetime_kilobytes: None,
        commit: false,
    }
}

/// Sends one datagram from the peer and returns what the responder answered (marker removed).
fn deliver(
    r: &mut Responder,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    r.handle_datagram(now, local, remote, bytes);
    let mut out = Vec::new();
    while let Some(Transmit {
        local: l,
        remote: to,
        bytes,
    }) = r.poll_transmit()
    {
        assert_eq!(
            (l, to),
            (local, remote),
            "replies go back where the request came from"
        );
        if l.port() == 4500 {
            assert_eq!(&bytes[..4], &[0, 0, 0, 0], "non-ESP marker");
            out.push(bytes[4..].to_vec());
        } else {
            out.push(bytes);
        }
    }
    out
}

fn only(mut v: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(v.len(), 1, "expected exactly one reply");
    v.pop().unwrap()
}

struct Session {
    init: TestInitiator,
    float: SocketAddr,
}

fn main_mode(
    r: &mut Responder,
    now: Instant,
    ip: &str,
    params: Phase1Params,
    initial_contact: bool,
) -> Session {
    let peer = peer_addr(ip, 500);
    let float = if params.natt {
        peer_addr(ip, 4500)
    } else {
        peer
    };
    let local_float = if params.natt { gw(4500) } else { gw(500) };
    let mut init = TestInitiator::new(peer, gw(500), psk_for(ip), params);
    let m1 = init.mm1();
    init.on_mm2(&only(deliver(r, now, gw(500), peer, &m1)))
        .unwrap();
    let m3 = init.mm3();
    init.on_mm4(&only(deliver(r, now, gw(500), peer, &m3)))
        .unwrap();
    let m5 = init.mm5(initial_contact);
    init.on_mm6(&only(deliver(r, now, local_float, float, &m5)))
        .unwrap();
    Session { init, float }
}

fn psk_for(ip: &str) -> &'static str {
    if ip == "10.9.9.9" {
        "explicit key"
    } else {
        PSK
    }
}

fn local_of(s: &Session) -> SocketAddr {
    if s.float.port() == 4500 {
        gw(4500)
    } else {
        gw(500)
    }
}

fn quick_mode(
    r: &mut Responder,
    now: Instant,
    s: &mut Session,
    q: &QuickParams,
) -> Vec<InitiatorChild> {
    let (_, q1) = s.init.qm1(q);
    let children = s
        .init
        .on_qm2(&only(deliver(r, now, local_of(s), s.float, &q1)))
        .unwrap();
    let q3 = s.init.qm3();
    assert!(deliver(r, now, local_of(s), s.float, &q3).is_empty());
    children
}

fn events(r: &mut Responder) -> Vec<IkeEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// The payloads of every protected Informational `r` has queued for the peer of `s`.
fn informationals_sent(r: &mut Responder, s: &Session) -> Vec<Vec<Payload>> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|t| s.init.open_informational(&t.bytes[4..]).unwrap())
        .collect()
}

/// (child, inbound specs, outbound specs, rekey_of) of every ChildSaUp.
type ChildUp = (ChildId, Vec<SaSpec>, Vec<SaSpec>, Option<ChildId>);

fn child_ups(ev: &[IkeEvent]) -> Vec<ChildUp> {
    ev.iter()
        .filter_map(|e| match e {
            IkeEvent::ChildSaUp {
                child,
                inbound,
                outbound,
                rekey_of,
                ..
            } => Some((*child, inbound.clone(), outbound.clone(), *rekey_of)),
            _ => None,
        })
        .collect()
}

fn failures(ev: &[IkeEvent]) -> Vec<FailureReason> {
    ev.iter()
        .filter_map(|e| match e {
            IkeEvent::Failure(f) => Some(f.reason.clone()),
            _ => None,
        })
        .collect()
}

fn assert_keys_match(spec_in: &SaSpec, spec_out: &SaSpec, child: &InitiatorChild) {
    assert_eq!(spec_in.spi, child.responder_spi);
    assert_eq!(spec_out.spi, child.initiator_spi);
    let whole = |s: &SaSpec| [s.keys.encryption.clone(), s.keys.integrity.clone()].concat();
    assert_eq!(
        whole(spec_in),
        child.outbound_keymat.expose(),
        "responder inbound = initiator outbound"
    );
    assert_eq!(
        whole(spec_out),
        child.inbound_keymat.expose(),
        "responder outbound = initiator inbound"
    );
}

#[test]
fn main_and_quick_mode_derive_the_same_keys_for_every_phase1_suite() {
    for (cipher, hash, group) in [
        (
            IkeCipher::AesCbc { key_bits: 128 },
            HashAlg::Sha1,
            DhGroup::Modp1024,
        ),
        (
            IkeCipher::AesCbc { key_bits: 256 },
            HashAlg::Sha256,
            DhGroup::Modp2048,
        ),
        (
            IkeCipher::AesCbc { key_bits: 192 },
            HashAlg::Md5,
            DhGroup::Modp1536,
        ),
        (IkeCipher::TripleDesCbc, HashAlg::Md5, DhGroup::Modp1024),
        (IkeCipher::DesCbc, HashAlg::Sha1, DhGroup::Modp768),
    ] {
        let mut r = Responder::new(policy());
        let now = Instant::now();
        let params = Phase1Params {
            cipher,
            hash,
            group,
            lifetime_seconds: 1000,
            natt: true,
        };
        let mut s = main_mode(&mut r, now, "10.2.2.2", params, false);
        let ev = events(&mut r);
        assert!(matches!(ev[0], IkeEvent::IkeSaUp { .. }), "{ev:?}");
        let view = r.ike_sas().next().unwrap();
        assert_eq!(
            view.lifetime_seconds, 1000,
            "the shorter peer lifetime wins"
        );
        assert!(view.nat_traversal);
        let children = quick_mode(&mut r, now, &mut s, &quick());
        let ups = child_ups(&events(&mut r));
        assert_eq!(ups.len(), 1, "{cipher:?}/{hash:?}");
        let (_, inbound, outbound, rekey_of) = &ups[0];
        assert_eq!(*rekey_of, None);
        assert_keys_match(&inbound[0], &outbound[0], &children[0]);
        assert_eq!(
            inbound[0].encapsulation,
            Encapsulation::Udp {
                local_port: 4500,
                remote_port: 4500
            }
        );
        assert_eq!(inbound[0].lifetime.hard_seconds, Some(3600));
    }
}

#[test]
fn esp_variants_bundle_pfs_and_kilobyte_lifetimes() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    events(&mut r);
    let cases = [
        (Some((Cipher::AesGcm128, Integrity::None)), None, None),
        (
            Some((Cipher::AesGcm256, Integrity::None)),
            None,
            Some(DhGroup::Modp2048),
        ),
        (
            Some((Cipher::TripleDesCbc, Integrity::HmacMd5_96)),
            None,
            Some(DhGroup::Modp1024),
        ),
        (
            Some((Cipher::AesCbc256, Integrity::HmacSha256_128)),
            None,
            Some(DhGroup::Modp1536),
        ),
        (
            Some((Cipher::AesCbc192, Integrity::HmacSha1_96)),
            Some(Integrity::HmacSha1_96),
            None,
        ),
        (None, Some(Integrity::HmacMd5_96), Some(DhGroup::Modp768)),
    ];
    for (i, (esp, ah, pfs)) in cases.into_iter().enumerate() {
        let mut q = quick();
        q.esp = esp;
        q.ah = ah;
        q.pfs = pfs;
        q.lifetime_kilobytes = Some(50_000);
        q.ids = Some((
            subnet(&format!("172.16.{}.0", 10 + i), "255.255.255.0"),
            subnet("172.16.1.0", "255.255.255.0"),
        ));
        let children = quick_mode(&mut r, now, &mut s, &q);
        let ups = child_ups(&events(&mut r));
        assert_eq!(ups.len(), 1, "case {i}");
        let (_, inbound, outbound, _) = &ups[0];
        assert_eq!(inbound.len(), children.len());
        for (k, child) in children.iter().enumerate() {
            assert_keys_match(&inbound[k], &outbound[k], child);
            assert_eq!(inbound[k].lifetime.hard_kilobytes, Some(50_000));
        }
        if esp.is_some() && ah.is_some() {
            assert_eq!(
                (inbound[0].protocol, inbound[1].protocol),
                (IpsecProtocol::Esp, IpsecProtocol::Ah)
            );
        }
    }
}

#[test]
fn retransmissions_get_the_same_reply_and_qm_waits_for_hash3() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let peer = peer_addr("10.2.2.2", 500);
    let mut init = TestInitiator::new(peer, gw(500), PSK, phase1());
    let m1 = init.mm1();
    let a = deliver(&mut r, now, gw(500), peer, &m1);
    assert_eq!(deliver(&mut r, now, gw(500), peer, &m1), a);
    init.on_mm2(&a[0]).unwrap();
    let m3 = init.mm3();
    let b = deliver(&mut r, now, gw(500), peer, &m3);
    assert_eq!(deliver(&mut r, now, gw(500), peer, &m3), b);
    init.on_mm4(&b[0]).unwrap();
    let m5 = init.mm5(false);
    let float = peer_addr("10.2.2.2", 4500);
    let c = deliver(&mut r, now, gw(4500), float, &m5);
    assert_eq!(deliver(&mut r, now, gw(4500), float, &m5), c);
    init.on_mm6(&c[0]).unwrap();
    assert_eq!(r.ike_sas().count(), 1);
    let (_, q1) = init.qm1(&quick());
    let d = deliver(&mut r, now, gw(4500), float, &q1);
    assert_eq!(deliver(&mut r, now, gw(4500), float, &q1), d);
    assert!(
        child_ups(&events(&mut r)).is_empty(),
        "no child before HASH(3)"
    );
    init.on_qm2(&d[0]).unwrap();
    let q3 = init.qm3();
    deliver(&mut r, now, gw(4500), float, &q3);
    deliver(&mut r, now, gw(4500), float, &q3);
    assert_eq!(child_ups(&events(&mut r)).len(), 1);
    assert_eq!(r.drop_counters()["retransmit-answered"], 4);
    assert_eq!(r.drop_counters()["retransmit-ignored"], 1);
}

#[test]
fn aggressive_mode_unknown_cookies_and_half_open_limits() {
    let mut p = policy();
    p.limits.half_open_per_peer = 2;
    let mut r = Responder::new(p);
    let now = Instant::now();
    let peer = peer_addr("10.2.2.2", 500);
    let mut init = TestInitiator::new(peer, gw(500), PSK, phase1());
    let mut m1 = init.mm1();
    m1[18] = 4; // exchange type: Aggressive Mode
    assert!(deliver(&mut r, now, gw(500), peer, &m1).is_empty());
    let mut m1 = init.mm1();
    m1[8] = 1; // a responder cookie nobody issued
    assert!(deliver(&mut r, now, gw(500), peer, &m1).is_empty());
    assert_eq!(
        failures(&events(&mut r)),
        vec![
            FailureReason::AggressiveModeRefused,
            FailureReason::UnknownCookies
        ]
    );
    for _ in 0..2 {
        let m1 = TestInitiator::new(peer, gw(500), PSK, phase1()).mm1();
        assert_eq!(deliver(&mut r, now, gw(500), peer, &m1).len(), 1);
    }
    let m1 = TestInitiator::new(peer, gw(500), PSK, phase1()).mm1();
    assert!(deliver(&mut r, now, gw(500), peer, &m1).is_empty());
    assert_eq!(
        failures(&events(&mut r)),
        vec![FailureReason::HalfOpenLimit]
    );
    // Another peer is not affected by this peer's limit.
    let other = peer_addr("10.3.3.3", 500);
    let m1 = TestInitiator::new(other, gw(500), PSK, phase1()).mm1();
    assert_eq!(deliver(&mut r, now, gw(500), other, &m1).len(), 1);
    // Half-open SAs time out.
    let deadline = r.poll_timeout().unwrap();
    assert!(deadline <= now + Duration::from_secs(30));
    r.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(r.ike_sas().count(), 0);
    assert_eq!(
        failures(&events(&mut r)),
        vec![FailureReason::HalfOpenTimeout; 3]
    );
    // Datagrams for another address of ours, or unknown proposals, are refused.
    let m1 = TestInitiator::new(peer, gw(500), PSK, phase1()).mm1();
    r.handle_datagram(now, peer_addr("10.1.1.2", 500), peer, &m1);
    let mut odd = phase1();
    odd.group = DhGroup::Modp768;
    let mut p = policy();
    p.ike_proposals = vec![control::ike::IkeProposal {
        groups: vec![DhGroup::Modp2048],
        hashes: vec![HashAlg::Sha256],
        ciphers: vec![IkeCipher::AesCbc { key_bits: 256 }],
        auth_methods: vec![control::ike::AuthMethod::PreSharedKey],
        lifetime_seconds: 3600,
    }];
    let mut strict = Responder::new(p);
    let reply = deliver(
        &mut strict,
        now,
        gw(500),
        peer,
        &TestInitiator::new(peer, gw(500), PSK, odd).mm1(),
    );
    let h = Header::parse(&reply[0]).unwrap();
    assert_eq!(
        h.exchange, 5,
        "NO-PROPOSAL-CHOSEN goes back as an Informational"
    );
    assert_eq!(
        failures(&events(&mut strict)),
        vec![FailureReason::NoProposalChosen]
    );
}

#[test]
fn wrong_psk_is_refused_and_changes_nothing() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let peer = peer_addr("10.2.2.2", 500);
    let mut init = TestInitiator::new(peer, gw(500), "wrong key", phase1());
    let m1 = init.mm1();
    init.on_mm2(&only(deliver(&mut r, now, gw(500), peer, &m1)))
        .unwrap();
    let m3 = init.mm3();
    init.on_mm4(&only(deliver(&mut r, now, gw(500), peer, &m3)))
        .unwrap();
    let m5 = init.mm5(false);
    assert!(deliver(&mut r, now, gw(4500), peer_addr("10.2.2.2", 4500), &m5).is_empty());
    let f = failures(&events(&mut r));
    assert!(
        f == vec![FailureReason::DecryptionFailed]
            || f == vec![FailureReason::AuthenticationFailed],
        "{f:?}"
    );
    assert_eq!(
        r.ike_sas().next().unwrap().state,
        control::ike::ike_sa::MainModeState::KeySent
    );
    // The explicit per-address key wins over the global one.
    let special = peer_addr("10.9.9.9", 500);
    // The global key is not accepted from an address that has its own key.
    let mut init = TestInitiator::new(special, gw(500), PSK, phase1());
    let m1 = init.mm1();
    init.on_mm2(&only(deliver(&mut r, now, gw(500), special, &m1)))
        .unwrap();
    let m3 = init.mm3();
    init.on_mm4(&only(deliver(&mut r, now, gw(500), special, &m3)))
        .unwrap();
    let m5 = init.mm5(false);
    assert!(deliver(&mut r, now, gw(4500), peer_addr("10.9.9.9", 4500), &m5).is_empty());
    assert_eq!(failures(&events(&mut r)).len(), 1);
    main_mode(&mut r, now, "10.9.9.9", phase1(), false);
    assert!(matches!(events(&mut r)[..], [IkeEvent::IkeSaUp { .. }]));
}

#[test]
fn proxy_outside_allowed_pairs_gets_invalid_id_information() {
    let mut p = policy();
    p.allowed_proxy_pairs = vec![(
        "172.16.0.0/16".parse().unwrap(),
        "172.16.1.0/24".parse().unwrap(),
    )];
    let mut r = Responder::new(p);
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    events(&mut r);
    let mut q = quick();
    q.ids = Some((
        subnet("192.168.50.0", "255.255.255.0"),
        subnet("172.16.1.0", "255.255.255.0"),
    ));
    let (_, q1) = s.init.qm1(&q);
    let reply = only(deliver(&mut r, now, gw(4500), s.float, &q1));
    let payloads = s.init.open_informational(&reply).unwrap();
    assert!(
        matches!(&payloads[0], Payload::Notify(n) if n.message_type == notify_type::INVALID_ID_INFORMATION)
    );
    let f = failures(&events(&mut r));
    assert_eq!(
        f,
        vec![FailureReason::ProxyNotAllowed {
            remote: "192.168.50.0/255.255.255.0".into(),
            local: "172.16.1.0/255.255.255.0".into()
        }]
    );
    // Inside the allowed pair it works; IPv6 is not in the (IPv4) default.
    let children = quick_mode(&mut r, now, &mut s, &quick());
    assert_eq!(children.len(), 1);
    let mut q = quick();
    q.ids = Some((
        Identity {
            data: IdentityData::Ipv6Subnet(
                "2001:db8::".parse().unwrap(),
                "ffff:ffff:ffff:ffff::".parse().unwrap(),
            ),
            protocol: 0,
            port: 0,
        },
        Identity {
            data: IdentityData::Ipv6Subnet(
                "2001:db8:1::".parse().unwrap(),
                "ffff:ffff:ffff:ffff::".parse().unwrap(),
            ),
            protocol: 0,
            port: 0,
        },
    ));
    let (_, q1) = s.init.qm1(&q);
    only(deliver(&mut r, now, gw(4500), s.float, &q1));
    assert!(matches!(
        failures(&events(&mut r))[..],
        [FailureReason::ProxyNotAllowed { .. }]
    ));
}

#[test]
fn dpd_deletes_both_ways_and_expiry() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let c1 = quick_mode(&mut r, now, &mut s, &quick());
    let mut q = quick();
    q.ids = Some((
        subnet("172.16.3.0", "255.255.255.0"),
        subnet("172.16.1.0", "255.255.255.0"),
    ));
    q.lifetime_seconds = Some(100);
    let c2 = quick_mode(&mut r, now, &mut s, &q);
    let ups = child_ups(&events(&mut r));
    // DPD: R-U-THERE answered with the same sequence number.
    let cookies = [s.init.cookie_i, s.init.cookie_r].concat();
    let dpd = s.init.informational(vec![Payload::Notify(Notify::new(
        protocol::ISAKMP,
        notify_type::R_U_THERE,
        cookies.clone(),
        vec![0, 0, 0, 7],
    ))]);
    let ack = s
        .init
        .open_informational(&only(deliver(&mut r, now, gw(4500), s.float, &dpd)))
        .unwrap();
    assert_eq!(
        ack,
        vec![Payload::Notify(Notify::new(
            protocol::ISAKMP,
            notify_type::R_U_THERE_ACK,
            cookies,
            vec![0, 0, 0, 7]
        ))]
    );
    // Peer deletes child 1 by its own inbound SPI.
    let del = s.init.informational(vec![Payload::Delete(Delete::new(
        protocol::ESP,
        vec![c1[0].initiator_spi.to_be_bytes().to_vec()],
    ))]);
    assert!(deliver(&mut r, now, gw(4500), s.float, &del).is_empty());
    let ev = events(&mut r);
    assert!(
        matches!(ev[..], [IkeEvent::ChildSaDown { child, reason: DownReason::DeletedByPeer }] if child == ups[0].0),
        "{ev:?}"
    );
    // Child 2 expires at its hard lifetime, and the peer is told so.
    r.handle_timeout(now + Duration::from_secs(101));
    let ev = events(&mut r);
    assert!(
        matches!(ev[..], [IkeEvent::ChildSaDown { child, reason: DownReason::Expired }] if child == ups[1].0),
        "{ev:?}"
    );
    assert_eq!(c2.len(), 1);
    let t = r.poll_transmit().expect("a delete for the expired child");
    assert_eq!(
        s.init.open_informational(&t.bytes[4..]).unwrap(),
        vec![Payload::Delete(Delete::new(
            protocol::ESP,
            vec![c2[0].responder_spi.to_be_bytes().to_vec()]
        ))]
    );
    assert!(r.poll_transmit().is_none());
    // A local delete tells the peer our inbound SPI.
    let c3 = quick_mode(&mut r, now, &mut s, &quick());
    let child3 = child_ups(&events(&mut r))[0].0;
    r.delete_child(child3);
    let t = r.poll_transmit().unwrap();
    let payloads = s.init.open_informational(&t.bytes[4..]).unwrap();
    assert_eq!(
        payloads,
        vec![Payload::Delete(Delete::new(
            protocol::ESP,
            vec![c3[0].responder_spi.to_be_bytes().to_vec()]
        ))]
    );
    // The peer deletes the IKE SA: IKE SA down, no child left to drop.
    let del = s.init.informational(vec![Payload::Delete(Delete::new(
        protocol::ISAKMP,
        vec![[s.init.cookie_i, s.init.cookie_r].concat()],
    ))]);
    deliver(&mut r, now, gw(4500), s.float, &del);
    let ev = events(&mut r);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            IkeEvent::IkeSaDown {
                reason: DownReason::DeletedByPeer,
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(r.ike_sas().count(), 0);
}

#[test]
fn rekey_make_before_break_and_new_main_mode_keeps_children() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), true);
    quick_mode(&mut r, now, &mut s, &quick());
    let first = child_ups(&events(&mut r))[0].0;
    quick_mode(&mut r, now, &mut s, &quick());
    let ups = child_ups(&events(&mut r));
    assert_eq!(
        ups[0].3,
        Some(first),
        "same proxy pair: a rekey of the first child"
    );
    assert_eq!(
        r.child_sas().count(),
        2,
        "the old SA stays until it expires or is deleted"
    );
    // A new Main Mode from the same peer (no INITIAL-CONTACT) keeps the IPsec SAs.
    let mut s2 = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let ev = events(&mut r);
    assert!(
        !ev.iter().any(|e| matches!(e, IkeEvent::ChildSaDown { .. })),
        "{ev:?}"
    );
    assert_eq!(r.child_sas().count(), 2);
    quick_mode(&mut r, now, &mut s2, &quick());
    assert!(
        child_ups(&events(&mut r))[0].3.is_some(),
        "rekey through the new IKE SA"
    );
    // INITIAL-CONTACT from the same identity: everything older goes.
    let _s3 = main_mode(&mut r, now, "10.2.2.2", phase1(), true);
    let ev = events(&mut r);
    let downs = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                IkeEvent::ChildSaDown {
                    reason: DownReason::Replaced,
                    ..
                }
            )
        })
        .count();
    assert_eq!(downs, 3, "{ev:?}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, IkeEvent::PeerReplaced { replaced, .. } if replaced.len() == 2)),
        "{ev:?}"
    );
    assert_eq!(r.ike_sas().count(), 1);
    assert_eq!(r.child_sas().count(), 0);
}

#[test]
fn commit_bit_gets_connected_after_hash3() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let mut q = quick();
    q.commit = true;
    let (_, q1) = s.init.qm1(&q);
    let children = s
        .init
        .on_qm2(&only(deliver(&mut r, now, gw(4500), s.float, &q1)))
        .unwrap();
    let q3 = s.init.qm3();
    let reply = only(deliver(&mut r, now, gw(4500), s.float, &q3));
    let payloads = s.init.open_informational(&reply).unwrap();
    assert!(
        matches!(&payloads[0], Payload::Notify(n) if n.message_type == notify_type::CONNECTED && n.spi == children[0].responder_spi.to_be_bytes())
    );
}

/// xorshift64*: a fixed seed makes every run feed the same inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_and_mutated_input_never_panics_or_changes_an_established_sa() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    quick_mode(&mut r, now, &mut s, &quick());
    events(&mut r);
    // Valid messages of every kind, to mutate.
    let mut fresh = TestInitiator::new(peer_addr("10.5.5.5", 500), gw(500), PSK, phase1());
    let (_, q1) = s.init.qm1(&quick());
    let info = s.init.informational(vec![Payload::Notify(Notify::new(
        protocol::ISAKMP,
        notify_type::R_U_THERE,
        [s.init.cookie_i, s.init.cookie_r].concat(),
        vec![0, 0, 0, 1],
    ))]);
    let seeds: Vec<Vec<u8>> = vec![fresh.mm1(), q1, info, s.init.mm5(false)];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut replies = 0;
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            let len = rng.below(400);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 if !b.is_empty() => {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                    1 if !b.is_empty() => b.truncate(rng.below(b.len())),
                    2 => b.push(rng.next() as u8),
                    _ if b.len() > 28 => {
                        // Keep the header length field consistent so the payload walk is reached.
                        let len = b.len() as u32;
                        b[24..28].copy_from_slice(&len.to_be_bytes());
                        let i = 28 + rng.below(b.len() - 28);
                        b[i] = rng.next() as u8;
                    }
                    _ => {}
                }
            }
            b
        };
        r.handle_datagram(now, gw(4500), s.float, &bytes);
        while r.poll_transmit().is_some() {
            replies += 1;
        }
    }
    let ev = events(&mut r);
    assert!(!ev.iter().any(|e| matches!(
        e,
        IkeEvent::IkeSaDown { .. } | IkeEvent::ChildSaDown { .. } | IkeEvent::ChildSaUp { .. }
    )));
    assert!(
        r.drop_counters().values().sum::<u64>() > 10_000,
        "{:?}",
        r.drop_counters()
    );
    assert!(
        replies < 2_000,
        "mutations are mostly dropped silently: {replies}"
    );
    // The established SA still works.
    let mut q = quick();
    q.ids = Some((
        subnet("172.16.9.0", "255.255.255.0"),
        subnet("172.16.1.0", "255.255.255.0"),
    ));
    quick_mode(&mut r, now, &mut s, &q);
    assert_eq!(child_ups(&events(&mut r)).len(), 1);
}

#[test]
fn nat_t_draft_peer_gets_draft_payloads_and_mode_61443() {
    use control::ike::numbers::{p2, vendor_id};
    use control::ike::payload::Chain;
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let peer = peer_addr("10.2.2.2", 500);
    let float = peer_addr("10.2.2.2", 4500);
    let mut init = TestInitiator::new(peer, gw(500), PSK, phase1());
    init.use_natt_draft();
    let parse = |b: &[u8]| {
        Chain::parse(
            Header::parse(b).unwrap().next_payload,
            b[28..].to_vec(),
            false,
        )
        .unwrap()
    };
    let m1 = init.mm1();
    let m2 = only(deliver(&mut r, now, gw(500), peer, &m1));
    assert!(parse(&m2)
        .iter()
        .any(|p| *p == Payload::VendorId(vendor_id::NAT_T_DRAFT_02_NL.to_vec())));
    init.on_mm2(&m2).unwrap();
    let m3 = init.mm3();
    let m4 = only(deliver(&mut r, now, gw(500), peer, &m3));
    let nat_d: Vec<bool> = parse(&m4)
        .iter()
        .filter_map(|p| match p {
            Payload::NatDiscovery { draft, .. } => Some(*draft),
            _ => None,
        })
        .collect();
    assert_eq!(nat_d, vec![true, true]);
    init.on_mm4(&m4).unwrap();
    let m5 = init.mm5(false);
    init.on_mm6(&only(deliver(&mut r, now, gw(4500), float, &m5)))
        .unwrap();
    let mut s = Session { init, float };
    let children = quick_mode(&mut r, now, &mut s, &quick());
    assert_eq!(
        children[0].encapsulation_mode,
        Some(p2::ENCAP_UDP_TUNNEL_DRAFT)
    );
    let ups = child_ups(&events(&mut r));
    assert_eq!(
        ups[0].1[0].encapsulation,
        Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500
        }
    );
    // NAT keepalives on 4500 are ignored without a failure.
    r.handle_datagram(now, gw(4500), float, &[0xff]);
    assert!(r.poll_transmit().is_none());
    assert!(failures(&events(&mut r)).is_empty());
    assert_eq!(r.drop_counters()["natt-keepalive"], 1);
}

#[test]
fn delete_peer_clears_children_then_ike_sas_and_tells_the_peer() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let c = quick_mode(&mut r, now, &mut s, &quick());
    let _other = main_mode(&mut r, now, "10.3.3.3", phase1(), false);
    events(&mut r);
    r.delete_peer("10.2.2.2".parse().unwrap());
    let sent = informationals_sent(&mut r, &s);
    assert_eq!(
        sent,
        vec![
            vec![Payload::Delete(Delete::new(
                protocol::ESP,
                vec![c[0].responder_spi.to_be_bytes().to_vec()]
            ))],
            vec![Payload::Delete(Delete::new(
                protocol::ISAKMP,
                vec![[s.init.cookie_i, s.init.cookie_r].concat()]
            ))],
        ]
    );
    let ev = events(&mut r);
    assert!(
        matches!(
            ev[..],
            [
                IkeEvent::ChildSaDown {
                    reason: DownReason::DeletedLocally,
                    ..
                },
                IkeEvent::IkeSaDown {
                    reason: DownReason::DeletedLocally,
                    ..
                }
            ]
        ),
        "{ev:?}"
    );
    assert_eq!(r.ike_sas().count(), 1, "the other peer stays");
}

#[test]
fn deleting_a_peer_in_two_halves_sends_the_child_deletes_before_the_ike_sa_goes() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let c = quick_mode(&mut r, now, &mut s, &quick());
    events(&mut r);
    let peer = "10.2.2.2".parse().unwrap();

    r.delete_peer_children(peer);
    let sent = informationals_sent(&mut r, &s);
    assert_eq!(
        sent,
        vec![vec![Payload::Delete(Delete::new(
            protocol::ESP,
            vec![c[0].responder_spi.to_be_bytes().to_vec()]
        ))]]
    );
    assert_eq!(
        r.ike_sas().count(),
        1,
        "the IKE SA waits for the second half"
    );
    assert!(matches!(events(&mut r)[..], [IkeEvent::ChildSaDown { .. }]));

    r.delete_peer_ike_sas(peer);
    let sent = informationals_sent(&mut r, &s);
    assert_eq!(
        sent,
        vec![vec![Payload::Delete(Delete::new(
            protocol::ISAKMP,
            vec![[s.init.cookie_i, s.init.cookie_r].concat()]
        ))]]
    );
    assert_eq!(r.ike_sas().count(), 0);
}

#[test]
fn ipv6_ranges_and_ports_are_proxy_identities_when_allowed() {
    let mut p = policy();
    p.allowed_proxy_pairs.push((
        dataplane::prefix::Prefix::any_v6(),
        dataplane::prefix::Prefix::any_v6(),
    ));
    let mut r = Responder::new(p);
    let now = Instant::now();
    let mut s = main_mode(&mut r, now, "10.2.2.2", phase1(), false);
    let mut q = quick();
    q.ids = Some((
        Identity {
            data: IdentityData::Ipv6Range(
                "2001:db8::".parse().unwrap(),
                "2001:db8::ff".parse().unwrap(),
            ),
            protocol: 6,
            port: 0,
        },
        Identity {
            data: IdentityData::Ipv6(("2001:db8:1::80").parse().unwrap()),
            protocol: 6,
            port: 443,
        },
    ));
    quick_mode(&mut r, now, &mut s, &q);
    let ev = events(&mut r);
    let proxy = ev
        .iter()
        .find_map(|e| match e {
            IkeEvent::ChildSaUp { proxy, .. } => Some(*proxy),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{ev:?}"));
    assert_eq!(proxy.remote.to_string(), "2001:db8::/120");
    assert_eq!(proxy.local.to_string(), "2001:db8:1::80/128");
    assert_eq!(
        (proxy.protocol, proxy.local_port, proxy.remote_port),
        (6, 443, 0)
    );
}

#[test]
fn an_expiring_ike_sa_tells_the_peer_and_keeps_its_children() {
    let mut r = Responder::new(policy());
    let now = Instant::now();
    let params = Phase1Params {
        lifetime_seconds: 1000,
        ..phase1()
    };
    let mut s = main_mode(&mut r, now, "10.2.2.2", params, false);
    quick_mode(&mut r, now, &mut s, &quick());
    events(&mut r);
    while r.poll_transmit().is_some() {}

    r.handle_timeout(now + Duration::from_secs(999));
    assert!(r.poll_transmit().is_none(), "nothing before the lifetime");
    assert_eq!(r.ike_sas().count(), 1);

    r.handle_timeout(now + Duration::from_secs(1001));
    let t = r.poll_transmit().expect("a delete for the expired IKE SA");
    assert_eq!(
        s.init.open_informational(&t.bytes[4..]).unwrap(),
        vec![Payload::Delete(Delete::new(
            protocol::ISAKMP,
            vec![[s.init.cookie_i, s.init.cookie_r].concat()]
        ))]
    );
    let ev = events(&mut r);
    assert!(
        matches!(
            ev[..],
            [IkeEvent::IkeSaDown {
                reason: DownReason::Expired,
                ..
            }]
        ),
        "only the IKE SA goes (IKEv1: children outlive it): {ev:?}"
    );
    assert_eq!(r.ike_sas().count(), 0);
}
