//! Interop with real strongSwan 5.9 charons (IKEv1 Main Mode, PSK, kernel-libipsec, NAT-T
//! forced) initiating at the dyntun responder in another namespace. Needs root.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use control::ike::{
    ChildId, DownReason, FailureReason, IkeEvent, PskTable, ResponderPolicy, Secret,
};
use dataplane::sa::{Encapsulation, SaSpec};

use support::esp_oracle;
use support::gateway::Gateway;
use support::netns::{link, Netns};
use support::strongswan::{Charon, CharonConfig, ChildConfig, ConnectionConfig};

const GW: &str = "10.1.1.1";
const PSK: &str = "dyntun interop key";

fn policy() -> ResponderPolicy {
    ResponderPolicy::new(
        vec![GW.parse().unwrap()],
        PskTable {
            explicit: Vec::new(),
            global: Some(Secret::from(PSK)),
        },
    )
}

fn peer_config(local: &str, psk: &str, connections: Vec<ConnectionConfig>) -> CharonConfig {
    CharonConfig {
        local_addr: local.into(),
        remote_addr: GW.into(),
        psk: psk.into(),
        connections,
    }
}

fn conn(name: &str, ike: &str, children: Vec<ChildConfig>) -> ConnectionConfig {
    ConnectionConfig {
        name: name.into(),
        ike_proposals: ike.into(),
        dpd_delay: None,
        children,
    }
}

/// The ChildSaUp whose remote proxy is `remote`, newest first when `rekey` asks for a rekey.
fn child_up(
    gw: &Gateway,
    remote: &str,
    rekey: bool,
    wait: Duration,
) -> Option<(Vec<SaSpec>, Vec<SaSpec>)> {
    let remote: dataplane::prefix::Prefix = remote.parse().unwrap();
    gw.wait_for(wait, |e| {
        matches!(e, IkeEvent::ChildSaUp { proxy, rekey_of, .. } if proxy.remote == remote && rekey_of.is_some() == rekey)
    })
    .map(|e| match e {
        IkeEvent::ChildSaUp { inbound, outbound, .. } => (inbound, outbound),
        _ => unreachable!(),
    })
}

fn failure(
    gw: &Gateway,
    wait: Duration,
    mut pred: impl FnMut(&FailureReason) -> bool,
) -> Option<FailureReason> {
    gw.wait_for(
        wait,
        |e| matches!(e, IkeEvent::Failure(f) if pred(&f.reason)),
    )
    .map(|e| match e {
        IkeEvent::Failure(f) => f.reason,
        _ => unreachable!(),
    })
}

#[test]
fn strongswan_proposals_keys_and_esp_decrypt() {
    let gw_ns = Netns::new("dtg");
    let peer_ns = Netns::new("dtp");
    link(&gw_ns, GW, &peer_ns, "10.2.2.2");
    let gw = Gateway::start(&gw_ns, GW.parse::<IpAddr>().unwrap(), policy());

    let esp_cases = [
        ("aes128", "aes128-sha1"),
        ("aes256", "aes256-sha1"),
        ("tdes", "3des-md5"),
        ("gcm", "aes128gcm16"),
        ("aes128pfs", "aes128-sha1-modp1024"),
        ("aes256pfs", "aes256-sha1-modp2048"),
        ("tdespfs", "3des-md5-modp1024"),
        ("gcmpfs", "aes128gcm16-modp2048"),
    ];
    let mut children = Vec::new();
    for (i, (name, esp)) in esp_cases.iter().enumerate() {
        let addr = format!("172.16.2.{}", i + 1);
        peer_ns.exec(&["ip", "addr", "add", &format!("{addr}/32"), "dev", "lo"]);
        children.push(ChildConfig::new(
            name,
            &format!("{addr}/32"),
            "172.16.1.0/24",
            esp,
        ));
    }
    for addr in ["172.16.2.20", "172.16.2.21"] {
        peer_ns.exec(&["ip", "addr", "add", &format!("{addr}/32"), "dev", "lo"]);
    }
    let config = peer_config(
        "10.2.2.2",
        PSK,
        vec![
            conn("ikeaes128", "aes128-sha1-modp1024", children),
            conn(
                "ikeaes256",
                "aes256-sha256-modp2048",
                vec![ChildConfig::new(
                    "c",
                    "172.16.2.20/32",
                    "172.16.1.0/24",
                    "aes128-sha1",
                )],
            ),
            conn(
                "iketdes",
                "3des-md5-modp1024",
                vec![ChildConfig::new(
                    "c",
                    "172.16.2.21/32",
                    "172.16.1.0/24",
                    "aes128-sha1",
                )],
            ),
        ],
    );
    let charon = Charon::start(&peer_ns, &config);

    let mut cases: Vec<(String, String, String)> = esp_cases
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            (
                "ikeaes128".to_string(),
                name.to_string(),
                format!("172.16.2.{}", i + 1),
            )
        })
        .collect();
    cases.push(("ikeaes256".into(), "c".into(), "172.16.2.20".into()));
    cases.push(("iketdes".into(), "c".into(), "172.16.2.21".into()));

    for (ike, child, addr) in &cases {
        assert!(
            charon.initiate(ike, child),
            "initiate {ike}/{child} failed; charon log:\n{}",
            charon.log()
        );
        let (inbound, outbound) =
            child_up(&gw, &format!("{addr}/32"), false, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("no ChildSaUp for {addr}"));
        assert!(matches!(
            inbound[0].encapsulation,
            Encapsulation::Udp {
                local_port: 4500,
                ..
            }
        ));
        // strongSwan's inbound SPI is our outbound one and the other way round.
        let sas = charon.list_sas();
        let want_in = format!("spi-in={:08x}", outbound[0].spi);
        let want_out = format!("spi-out={:08x}", inbound[0].spi);
        assert!(
            sas.contains(&want_in) && sas.contains(&want_out),
            "{ike}/{child}: SPIs not in\n{sas}"
        );
        // An ESP packet strongSwan encrypted decrypts with the keys we derived.
        let _ = charon.exec_in_ns(&["ping", "-c", "1", "-W", "1", "-I", addr, "172.16.1.1"]);
        let (_, from, esp) = gw
            .next_esp(inbound[0].spi, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{ike}/{child}: no ESP with SPI {:08x}", inbound[0].spi));
        let verdict = esp_oracle::decrypt(&inbound[0], &from.ip().to_string(), GW, &esp);
        assert_eq!(
            verdict,
            format!("inner {addr} > 172.16.1.1 icmp"),
            "{ike}/{child}"
        );
        // The oracle is not fooled by a key that is off by one bit.
        let mut wrong = inbound[0].clone();
        wrong.keys.encryption[0] ^= 0x80; // not a DES parity bit
        let verdict = esp_oracle::decrypt(&wrong, &from.ip().to_string(), GW, &esp);
        assert!(
            !verdict.starts_with("inner"),
            "{ike}/{child}: decrypted with a wrong key"
        );
    }
    assert_eq!(gw.count(|e| matches!(e, IkeEvent::IkeSaUp { .. })), 3);
    assert_eq!(gw.count(|e| matches!(e, IkeEvent::ChildSaDown { .. })), 0);
}

#[test]
fn strongswan_wrong_psk_and_disallowed_proxy_are_refused() {
    let gw_ns = Netns::new("dtg");
    let bad_key_ns = Netns::new("dtp");
    let bad_proxy_ns = Netns::new("dtq");
    link(&gw_ns, GW, &bad_key_ns, "10.2.2.2");
    link(&gw_ns, GW, &bad_proxy_ns, "10.3.3.3");
    let mut p = policy();
    p.allowed_proxy_pairs = vec![(
        "172.16.0.0/16".parse().unwrap(),
        "172.16.1.0/24".parse().unwrap(),
    )];
    let gw = Gateway::start(&gw_ns, GW.parse::<IpAddr>().unwrap(), p);

    let child = ChildConfig::new("c", "172.16.3.0/24", "172.16.1.0/24", "aes128-sha1");
    let wrong = Charon::start(
        &bad_key_ns,
        &peer_config(
            "10.2.2.2",
            "not the key",
            vec![conn("ike", "aes128-sha1-modp2048", vec![child])],
        ),
    );
    let outside = ChildConfig::new("c", "192.168.50.0/24", "172.16.1.0/24", "aes128-sha1");
    let proxy = Charon::start(
        &bad_proxy_ns,
        &peer_config(
            "10.3.3.3",
            PSK,
            vec![conn("ike", "aes128-sha1-modp2048", vec![outside])],
        ),
    );

    assert!(!wrong.initiate("ike", "c"), "a wrong PSK must not come up");
    assert!(failure(&gw, Duration::from_secs(5), |r| *r
        == FailureReason::DecryptionFailed)
    .is_some());
    assert!(
        !proxy.initiate("ike", "c"),
        "a proxy outside allowed-proxy-pair must be refused"
    );
    let refused = failure(&gw, Duration::from_secs(5), |r| {
        matches!(r, FailureReason::ProxyNotAllowed { .. })
    });
    match refused {
        Some(FailureReason::ProxyNotAllowed { remote, local }) => {
            assert_eq!(remote, "192.168.50.0/255.255.255.0");
            assert_eq!(local, "172.16.1.0/255.255.255.0");
        }
        other => panic!("expected ProxyNotAllowed, got {other:?}"),
    }
    assert!(
        proxy.log().contains("INVALID_ID_INFORMATION"),
        "peer should see INVALID-ID-INFORMATION:\n{}",
        proxy.log()
    );
    assert_eq!(gw.count(|e| matches!(e, IkeEvent::ChildSaUp { .. })), 0);
    assert!(gw.drop_count("decryption-failed") >= 1);
}

#[test]
fn strongswan_two_peers_dpd_rekey_and_deletes_both_ways() {
    let gw_ns = Netns::new("dtg");
    let a_ns = Netns::new("dtp");
    let b_ns = Netns::new("dtq");
    link(&gw_ns, GW, &a_ns, "10.2.2.2");
    link(&gw_ns, GW, &b_ns, "10.3.3.3");
    a_ns.exec(&["ip", "addr", "add", "172.16.2.1/32", "dev", "lo"]);
    b_ns.exec(&["ip", "addr", "add", "172.16.3.1/32", "dev", "lo"]);
    let gw = Gateway::start(&gw_ns, GW.parse::<IpAddr>().unwrap(), policy());

    let mut rekeying = ChildConfig::new("c", "172.16.2.0/24", "172.16.1.0/24", "aes128gcm16");
    rekeying.rekey_time = Some(5);
    rekeying.life_time = Some(30);
    let mut a_conn = conn("ike", "aes128-sha1-modp2048", vec![rekeying]);
    a_conn.dpd_delay = Some(2);
    let a = Charon::start(&a_ns, &peer_config("10.2.2.2", PSK, vec![a_conn]));
    let b = Charon::start(
        &b_ns,
        &peer_config(
            "10.3.3.3",
            PSK,
            vec![conn(
                "ike",
                "aes256-sha256-modp2048",
                vec![ChildConfig::new(
                    "c",
                    "172.16.3.0/24",
                    "172.16.1.0/24",
                    "aes256-sha1",
                )],
            )],
        ),
    );
    assert!(a.initiate("ike", "c"), "peer A: {}", a.log());
    assert!(b.initiate("ike", "c"), "peer B: {}", b.log());
    assert!(child_up(&gw, "172.16.2.0/24", false, Duration::from_secs(5)).is_some());
    assert!(child_up(&gw, "172.16.3.0/24", false, Duration::from_secs(5)).is_some());
    assert_eq!(
        gw.responder
            .lock()
            .unwrap()
            .ike_sas()
            .filter(|s| s.children == 1)
            .count(),
        2
    );

    let (new_in, _) = child_up(&gw, "172.16.2.0/24", true, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no rekey of peer A's child; log:\n{}", a.log()));
    let sas = a.list_sas();
    assert!(
        sas.contains(&format!("spi-out={:08x}", new_in[0].spi)),
        "rekeyed SPI missing:\n{sas}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.drop_count("dpd-answered") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        gw.drop_count("dpd-answered") >= 1,
        "no DPD seen; log:\n{}",
        a.log()
    );
    assert!(!a.log().contains("DPD check timed out"), "{}", a.log());
    assert!(a.list_sas().contains("state=ESTABLISHED"));
    assert!(b.list_sas().contains("state=ESTABLISHED"));

    // Deletes, peer to us: B's child, then B's IKE SA.
    assert!(b
        .swanctl(&["--terminate", "--child", "c", "--timeout", "10"])
        .status
        .success());
    assert!(gw
        .wait_for(Duration::from_secs(5), |e| matches!(
            e,
            IkeEvent::ChildSaDown {
                reason: DownReason::DeletedByPeer,
                ..
            }
        ))
        .is_some());
    assert!(b
        .swanctl(&["--terminate", "--ike", "ike", "--timeout", "10"])
        .status
        .success());
    assert!(gw
        .wait_for(Duration::from_secs(5), |e| matches!(
            e,
            IkeEvent::IkeSaDown {
                reason: DownReason::DeletedByPeer,
                ..
            }
        ))
        .is_some());
    // Deletes, us to the peer: every child of A; strongSwan drops them.
    let a_children: Vec<ChildId> = {
        let r = gw.responder.lock().unwrap();
        let remote: dataplane::prefix::Prefix = "172.16.2.0/24".parse().unwrap();
        r.child_sas()
            .filter(|(_, _, p)| p.remote == remote)
            .map(|(c, _, _)| c)
            .collect()
    };
    assert_eq!(
        a_children.len(),
        2,
        "old and rekeyed child (make-before-break)"
    );
    for c in a_children {
        gw.responder.lock().unwrap().delete_child(c);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while a
        .list_sas()
        .contains(&format!("spi-out={:08x}", new_in[0].spi))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let sas = a.list_sas();
    assert!(
        !sas.contains(&format!("spi-out={:08x}", new_in[0].spi)),
        "peer kept the deleted child:\n{sas}"
    );
    assert!(sas.contains("state=ESTABLISHED"), "the IKE SA stays: {sas}");
}
