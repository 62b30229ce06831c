//! Certificate authentication with real strongSwan peers: dyntun (examples/sg1-certificates.conf
//! with certificates made for the test by strongSwan's `pki`) accepts an ECDSA P-256 peer and an
//! RSA-2048 peer, which then carry traffic; it refuses an expired certificate, a certificate
//! from an unknown CA and an identity its remote-id does not list, each with a log line naming
//! the reason. Needs root, strongSwan (with strongswan-pki) and DPDK (scripts/setup.sh).

mod support;

use std::path::PathBuf;

use support::pki::{Issued, KeyType, TestPki, Validity};
use support::Scenario;

const CA_DN: &str = "C=CH, O=dyntun e2e, CN=dyntun e2e CA";
const SG1_DN: &str = "C=CH, O=dyntun e2e, CN=sg1.example.net";
const SG2_DN: &str = "C=CH, O=dyntun e2e, CN=sg2.example.net";
const SG3_DN: &str = "C=CH, O=dyntun e2e, CN=sg3.example.net";

struct Gateway {
    pki: TestPki,
    ca: Issued,
}

/// The CA, SG1's RSA and ECDSA certificates, and the example configuration pointing at them
/// (with `remote_id` as the IKE policy's remote-id body).
fn gateway(s: &mut Scenario, remote_id: &str) -> Gateway {
    let pki = TestPki::new(&s.work.join("pki"));
    let ca = pki.ca("ca", CA_DN);
    let rsa = pki.issue(
        &ca,
        "sg1-rsa",
        KeyType::Rsa2048,
        SG1_DN,
        &["sg1.example.net"],
        Validity::Days(30),
    );
    let ecdsa = pki.issue(
        &ca,
        "sg1-ecdsa",
        KeyType::EcdsaP256,
        SG1_DN,
        &["sg1.example.net"],
        Validity::Days(30),
    );
    let example =
        std::fs::read_to_string(support::repo().join("examples/sg1-certificates.conf")).unwrap();
    let path = |p: &PathBuf| p.display().to_string();
    let config = example
        .replace("examples/pki/ca.pem", &path(&ca.cert))
        .replace("examples/pki/sg1-rsa.pem", &path(&rsa.cert))
        .replace("examples/pki/sg1-rsa.key", &path(&rsa.key))
        .replace("examples/pki/sg1-ecdsa.pem", &path(&ecdsa.cert))
        .replace("examples/pki/sg1-ecdsa.key", &path(&ecdsa.key))
        .replace("any-remote-id;", remote_id);
    let file = s.work.join("sg1-certificates.conf");
    std::fs::write(&file, config).unwrap();
    s.start_gateway_at(&file);
    s.warm_up_lan();
    Gateway { pki, ca }
}

fn ike_sa<'a>(all: &'a serde_json::Value, remote: &str) -> &'a serde_json::Value {
    all["ike_security_associations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sa| sa["remote_address"] == remote)
        .unwrap_or_else(|| panic!("no IKE SA of {remote}: {all:#}"))
}

#[test]
fn ecdsa_and_rsa_peers_authenticate_with_certificates_and_carry_traffic() {
    let mut s = Scenario::new();
    let g = gateway(&mut s, "any-remote-id;");
    let sg2_cert = g.pki.issue(
        &g.ca,
        "sg2",
        KeyType::EcdsaP256,
        SG2_DN,
        &["sg2.example.net"],
        Validity::Days(30),
    );
    let sg3_cert = g.pki.issue(
        &g.ca,
        "sg3",
        KeyType::Rsa2048,
        SG3_DN,
        &["sg3.example.net"],
        Validity::Days(30),
    );
    // SG2 presents its subject (DER_ASN1_DN), SG3 a subjectAltName (FQDN); both expect SG1's DN.
    let sg2 = s.start_cert_peer(
        "sg2",
        "10.2.2.2",
        "172.16.2.0/24",
        &sg2_cert,
        &g.ca,
        &[("CHARON_REMOTE_ID", SG1_DN)],
    );
    let sg3 = s.start_cert_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        &sg3_cert,
        &g.ca,
        &[
            ("CHARON_LOCAL_ID", "sg3.example.net"),
            ("CHARON_REMOTE_ID", SG1_DN),
        ],
    );
    assert!(
        s.initiate(sg2),
        "SG2 (ECDSA) could not bring up its tunnel:\n{}",
        s.peer_log(sg2)
    );
    assert!(
        s.initiate(sg3),
        "SG3 (RSA) could not bring up its tunnel:\n{}",
        s.peer_log(sg3)
    );
    assert_eq!(
        s.ping("sg2", Some("172.16.2.1"), "172.16.1.10", 3, "0.2"),
        3
    );
    assert_eq!(
        s.ping("sg3", Some("172.16.3.1"), "172.16.1.10", 3, "0.2"),
        3
    );
    assert_eq!(s.ping("lan", None, "172.16.2.1", 3, "0.2"), 3);
    assert_eq!(s.ping("lan", None, "172.16.3.1", 3, "0.2"), 3);

    let all = s.show("services ipsec-vpn ike security-associations detail");
    let sg2_sa = ike_sa(&all, "10.2.2.2");
    assert_eq!(sg2_sa["state"], "Matured");
    assert_eq!(sg2_sa["authentication_method"], "ECDSA-signatures-256");
    assert_eq!(sg2_sa["identity"], SG2_DN);
    assert_eq!(sg2_sa["peer_certificate"]["subject"], SG2_DN);
    assert_eq!(sg2_sa["peer_certificate"]["issuer"], CA_DN);
    assert!(sg2_sa["peer_certificate"]["not_after"]
        .as_str()
        .unwrap()
        .ends_with("GMT"));
    assert_eq!(sg2_sa["local_certificate"]["subject"], SG1_DN);
    let sg3_sa = ike_sa(&all, "10.3.3.3");
    assert_eq!(sg3_sa["authentication_method"], "RSA-signatures");
    assert_eq!(sg3_sa["identity"], "sg3.example.net");
    assert_eq!(sg3_sa["peer_certificate"]["subject"], SG3_DN);

    let text = s.show_text("services ipsec-vpn ike security-associations detail");
    assert!(
        text.contains(&format!(
            "Peer certificate: subject \"{SG2_DN}\", issuer \"{CA_DN}\""
        )),
        "{text}"
    );
    assert!(
        text.contains("Validity: ")
            && text.contains(&format!("Local certificate: subject \"{SG1_DN}\"")),
        "{text}"
    );
    for shown in [text, all.to_string(), s.gateway_log()] {
        assert!(!shown.contains("PRIVATE KEY"), "a private key was shown");
    }
    // strongSwan verified our signature and certificate chain too.
    assert!(
        s.peer_log(sg2)
            .contains(&format!("authentication of '{SG1_DN}' with ECDSA")),
        "{}",
        s.peer_log(sg2)
    );
    assert!(
        s.peer_log(sg3)
            .contains(&format!("authentication of '{SG1_DN}' with RSA")),
        "{}",
        s.peer_log(sg3)
    );
}

#[test]
fn expired_unknown_ca_and_unlisted_identity_are_refused_with_the_reason_logged() {
    let mut s = Scenario::new();
    let remote_id =
        format!("distinguished-name \"{SG2_DN}\";\n                    fqdn sg3.example.net;");
    let g = gateway(&mut s, &remote_id);
    let expired = g.pki.issue(
        &g.ca,
        "sg2-expired",
        KeyType::EcdsaP256,
        SG2_DN,
        &[],
        Validity::Expired,
    );
    let other_ca = g.pki.ca("other-ca", "C=CH, O=elsewhere, CN=other CA");
    let foreign = g.pki.issue(
        &other_ca,
        "sg3-foreign",
        KeyType::Rsa2048,
        SG3_DN,
        &["sg3.example.net"],
        Validity::Days(30),
    );
    let sg2 = s.start_cert_peer("sg2", "10.2.2.2", "172.16.2.0/24", &expired, &g.ca, &[]);
    let sg3 = s.start_cert_peer(
        "sg3",
        "10.3.3.3",
        "172.16.3.0/24",
        &foreign,
        &g.ca,
        &[("CHARON_LOCAL_ID", "sg3.example.net")],
    );
    let (up2, up3) = std::thread::scope(|t| {
        let a = t.spawn(|| s.initiate(sg2));
        let b = t.spawn(|| s.initiate(sg3));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(!up2 && !up3, "refused peers must not come up");
    let log = s.gateway_log();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains("IKE failure") && l.contains(needle))
            .unwrap_or_else(|| panic!("no failure line with {needle:?}:\n{log}"))
            .to_string()
    };
    let expired_line = line("expired");
    assert!(
        expired_line.contains("10.2.2.2") && expired_line.contains("MainMode"),
        "{expired_line}"
    );
    let unknown_line = line("is not a trusted CA");
    assert!(
        unknown_line.contains("10.3.3.3") && unknown_line.contains("O=elsewhere"),
        "{unknown_line}"
    );

    // A valid certificate from the trusted CA, but a name remote-id does not list.
    s.stop_peer(sg2);
    let intruder_dn = "C=CH, O=dyntun e2e, CN=intruder.example.net";
    let intruder = g.pki.issue(
        &g.ca,
        "intruder",
        KeyType::EcdsaP256,
        intruder_dn,
        &[],
        Validity::Days(30),
    );
    let again = s.start_cert_peer("sg2", "10.2.2.2", "172.16.2.0/24", &intruder, &g.ca, &[]);
    assert!(
        !s.initiate(again),
        "an identity remote-id does not list must not come up"
    );
    let log = s.gateway_log();
    assert!(
        log.lines().any(|l| l.contains("IKE failure")
            && l.contains(&format!(
                "identity '{intruder_dn}' not allowed by remote-id"
            ))),
        "{log}"
    );
    // strongSwan was told why (the notify arrives before its retransmissions run out).
    assert!(
        s.peer_log(again).contains("AUTHENTICATION_FAILED"),
        "{}",
        s.peer_log(again)
    );
    let all = s.show("services ipsec-vpn ike security-associations");
    assert!(
        all["ike_security_associations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|sa| sa["state"] != "Matured"),
        "{all:#}"
    );
    assert!(s.tunnels().is_empty());
}
