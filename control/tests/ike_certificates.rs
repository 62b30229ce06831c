//! Main Mode with signatures, the sans-IO responder against the in-process initiator. Every
//! certificate is made here, at test time, with OpenSSL: a CA, gateway and peer certificates
//! (RSA-2048 and ECDSA P-256), and the broken ones (expired, foreign CA, revoked, wrong key
//! usage). Accepted peers reach Quick Mode; refused ones get one failure and the notify that
//! names the reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::DhGroup;
use control::ike::identity::{Identity, IdentityData};
use control::ike::numbers::{cert_encoding, notify_type};
use control::ike::test_initiator::{InitiatorSigner, Phase1Params, QuickParams, TestInitiator};
use control::ike::{
    AuthMethod, CertificateAuth, FailureReason, IkeEvent, LocalIdentity, PskTable, Responder,
    ResponderPolicy, Secret, Transmit,
};
use control::pki::{
    CaProfile, KeyKind, LocalCredential, RemoteIdRule, RemoteIdRules, TrustStore, VerifyFailure,
};
use dataplane::sa::{Cipher, Integrity};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509CrlBuilder, X509Name, X509RevokedBuilder, X509};

const DAY: i64 = 86_400;

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn key(kind: KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            let curve = match kind {
                KeyKind::EcdsaP384 => Nid::SECP384R1,
                KeyKind::EcdsaP521 => Nid::SECP521R1,
                _ => Nid::X9_62_PRIME256V1,
            };
            let group = EcGroup::from_curve_name(curve).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
    }
}

fn name(cn: &str) -> X509Name {
    let mut b = X509Name::builder().unwrap();
    b.append_entry_by_text("C", "CH").unwrap();
    b.append_entry_by_text("O", "dyntun test").unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

/// What a test certificate looks like; the defaults make a valid end-entity certificate.
struct Spec<'a> {
    cn: &'a str,
    ca: bool,
    /// Validity as offsets from now, in seconds.
    from: i64,
    to: i64,
    dns: Option<&'a str>,
    ip: Option<&'a str>,
    email: Option<&'a str>,
    /// keyUsage digitalSignature (or keyCertSign for a CA); false gives keyEncipherment only.
    signing_usage: bool,
    serial: u32,
}

impl<'a> Spec<'a> {
    fn leaf(cn: &'a str) -> Self {
        Spec {
            cn,
            ca: false,
            from: -DAY,
            to: 30 * DAY,
            dns: None,
            ip: None,
            email: None,
            signing_usage: true,
            serial: 2,
        }
    }
}

/// A certificate for `subject_key`, signed by `issuer` (self-signed when `None`).
fn issue(
    spec: &Spec,
    subject_key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(spec.serial).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    let subject = name(spec.cn);
    b.set_subject_name(&subject).unwrap();
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&subject).unwrap(),
    }
    b.set_pubkey(subject_key).unwrap();
    let now = now_unix();
    b.set_not_before(&Asn1Time::from_unix(now + spec.from).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + spec.to).unwrap())
        .unwrap();
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        let mut usage = KeyUsage::new();
        if spec.signing_usage {
            usage.digital_signature();
        } else {
            usage.key_encipherment();
        }
        b.append_extension(usage.build().unwrap()).unwrap();
        let mut san = SubjectAlternativeName::new();
        if let Some(d) = spec.dns {
            san.dns(d);
        }
        if let Some(ip) = spec.ip {
            san.ip(ip);
        }
        if let Some(email) = spec.email {
            san.email(email);
        }
        if spec.dns.is_some() || spec.ip.is_some() || spec.email.is_some() {
            let ext = san.build(&b.x509v3_context(None, None)).unwrap();
            b.append_extension(ext).unwrap();
        }
    }
    let signer = issuer.map_or(subject_key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

struct Ca {
    cert: X509,
    key: PKey<Private>,
}

impl Ca {
    /// A certificate from `spec` for `subject_key`, signed by this CA.
    fn issue(&self, spec: &Spec, subject_key: &PKey<Private>) -> X509 {
        issue(spec, subject_key, Some((&self.cert, &self.key)))
    }
}

fn ca(cn: &str, kind: KeyKind) -> Ca {
    let key = key(kind);
    let spec = Spec {
        ca: true,
        serial: 1,
        ..Spec::leaf(cn)
    };
    Ca {
        cert: issue(&spec, &key, None),
        key,
    }
}

fn pem(cert: &X509) -> Vec<u8> {
    cert.to_pem().unwrap()
}

/// Removes a test's files when it ends, also when it fails.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dyntun-ike-certs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA profile from `ca`.
fn profile(name: &str, ca: &Ca) -> CaProfile {
    let (p, _files) = profile_with_crl(name, ca, None);
    p
}

/// A CA profile from `ca`, with a CRL revoking `revoked` serials when given; the CRL is read
/// when the trust store is built, so its directory lives as long as the returned guard.
fn profile_with_crl(name: &str, ca: &Ca, revoked: Option<&[u32]>) -> (CaProfile, TempDir) {
    let crls: Vec<(&Ca, &[u32])> = revoked.map(|serials| (ca, serials)).into_iter().collect();
    profile_with_crls(name, ca, &crls)
}

/// A CA profile from `ca` whose CRL file holds one CRL per `(issuer, revoked serials)`.
fn profile_with_crls(name: &str, ca: &Ca, crls: &[(&Ca, &[u32])]) -> (CaProfile, TempDir) {
    let dir = temp_dir();
    let cert_path = dir.join("ca.pem");
    std::fs::write(&cert_path, pem(&ca.cert)).unwrap();
    let mut crl_file = Vec::new();
    for (ca, serials) in crls {
        let mut b = X509CrlBuilder::new().unwrap();
        b.set_issuer_name(ca.cert.subject_name()).unwrap();
        let context_holder = X509Builder::new().unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&context_holder.x509v3_context(Some(&ca.cert), None))
            .unwrap();
        b.append_extension(aki).unwrap();
        b.append_extension(
            CrlNumber::new(BigNum::from_u32(1).unwrap())
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap();
        let now = now_unix();
        b.set_last_update(&Asn1Time::from_unix(now - DAY).unwrap())
            .unwrap();
        b.set_next_update(&Asn1Time::from_unix(now + DAY).unwrap())
            .unwrap();
        for s in serials.iter() {
            let mut r = X509RevokedBuilder::new().unwrap();
            r.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(*s).unwrap()).unwrap())
                .unwrap();
            r.set_revocation_date(&Asn1Time::from_unix(now - 60).unwrap())
                .unwrap();
            b.add_revoked(r.build()).unwrap();
        }
        b.sign(&ca.key, MessageDigest::sha256()).unwrap();
        crl_file.extend(b.build().unwrap().to_pem().unwrap());
    }
    let crl_path = (!crls.is_empty()).then(|| {
        let path = dir.join("ca.crl");
        std::fs::write(&path, &crl_file).unwrap();
        path
    });
    let p = CaProfile::load(name, None, &cert_path, crl_path.as_deref()).unwrap();
    (p, TempDir(dir))
}

/// The gateway: one credential per key kind, all issued by `ca`.
fn gateway(
    ca: &Ca,
    kinds: &[KeyKind],
    trusted: Vec<CaProfile>,
    remote_id: RemoteIdRules,
) -> Responder {
    gateway_with(
        ca,
        kinds,
        trusted,
        remote_id,
        LocalIdentity::SubjectDn,
        true,
    )
}

fn gateway_with(
    ca: &Ca,
    kinds: &[KeyKind],
    trusted: Vec<CaProfile>,
    remote_id: RemoteIdRules,
    local_id: LocalIdentity,
    send_chain: bool,
) -> Responder {
    let credentials = kinds
        .iter()
        .map(|kind| {
            let k = key(*kind);
            let cert = ca.issue(&Spec::leaf("sg1.example.net"), &k);
            let chain = [pem(&cert), pem(&ca.cert)].concat();
            let key_pem = k.private_key_to_pem_pkcs8().unwrap();
            LocalCredential::from_pem("sg1", &chain, &key_pem, "sg1.pem", "sg1.key").unwrap()
        })
        .collect();
    let mut policy = ResponderPolicy::new(
        vec!["10.1.1.1".parse().unwrap()],
        PskTable {
            explicit: Vec::new(),
            global: Some(Secret::from("psk peers still work")),
        },
    );
    policy.certificates = Some(Arc::new(CertificateAuth {
        credentials,
        trust: TrustStore::new(trusted).unwrap(),
        remote_id,
        local_id,
        send_chain,
    }));
    Responder::new(policy)
}

/// The usual gateway: an RSA credential, trusting `ca` only, any remote identity.
fn rsa_gateway(ca: &Ca) -> Responder {
    let trusted = vec![profile("test-ca", ca)];
    gateway(ca, &[KeyKind::Rsa], trusted, RemoteIdRules::Any)
}

fn gw(port: u16) -> SocketAddr {
    SocketAddr::new("10.1.1.1".parse().unwrap(), port)
}

fn peer(port: u16) -> SocketAddr {
    SocketAddr::new("10.2.2.2".parse().unwrap(), port)
}

fn deliver(r: &mut Responder, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
    r.handle_datagram(Instant::now(), local, remote, bytes);
    std::iter::from_fn(|| r.poll_transmit())
        .map(
            |Transmit {
                 local: l, bytes, ..
             }| {
                if l.port() == 4500 {
                    bytes[4..].to_vec()
                } else {
                    bytes
                }
            },
        )
        .collect()
}

fn only(mut v: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(v.len(), 1, "expected exactly one reply");
    v.pop().unwrap()
}

fn phase1(hash: HashAlg) -> Phase1Params {
    Phase1Params {
        cipher: IkeCipher::AesCbc { key_bits: 128 },
        hash,
        group: DhGroup::Modp2048,
        lifetime_seconds: 28800,
        natt: true,
    }
}

/// A peer that signs with `k` (the method of its key kind), sends `certs` as CERT payloads,
/// leaf first, and claims `identity`.
fn initiator(
    k: PKey<Private>,
    certs: &[&X509],
    identity: IdentityData,
    hash: HashAlg,
) -> TestInitiator {
    initiator_signing(k, certs, identity, hash, false)
}

/// As `initiator`; `corrupt_signature` flips a bit of SIG_I.
fn initiator_signing(
    k: PKey<Private>,
    certs: &[&X509],
    identity: IdentityData,
    hash: HashAlg,
    corrupt_signature: bool,
) -> TestInitiator {
    let signer = InitiatorSigner {
        method: AuthMethod::for_key(KeyKind::of(&k).unwrap()),
        key: k,
        certificates: certs.iter().map(|c| c.to_der().unwrap()).collect(),
        corrupt_signature,
    };
    let mut i = TestInitiator::with_signer(peer(500), gw(500), phase1(hash), signer);
    i.identity = Identity {
        data: identity,
        protocol: 0,
        port: 0,
    };
    i
}

/// A peer with a fresh `kind` key, certified by `issuer` from `spec`, that sends its
/// certificate and claims its subject DN.
fn dn_peer(issuer: &Ca, kind: KeyKind, spec: &Spec, hash: HashAlg) -> TestInitiator {
    let k = key(kind);
    let cert = issuer.issue(spec, &k);
    initiator(k, &[&cert], dn(&cert), hash)
}

fn dn(cert: &X509) -> IdentityData {
    IdentityData::DerAsn1Dn(cert.subject_name().to_der().unwrap())
}

/// MM1..MM4, then MM5; returns the responder's answers to MM5.
fn up_to_mm5(r: &mut Responder, i: &mut TestInitiator) -> Vec<Vec<u8>> {
    up_to_mm5_keeping(r, i).1
}

/// As `up_to_mm5`, also returning MM5 itself (to retransmit it).
fn up_to_mm5_keeping(r: &mut Responder, i: &mut TestInitiator) -> (Vec<u8>, Vec<Vec<u8>>) {
    let m1 = i.mm1();
    i.on_mm2(&only(deliver(r, gw(500), peer(500), &m1)))
        .unwrap();
    let m3 = i.mm3();
    i.on_mm4(&only(deliver(r, gw(500), peer(500), &m3)))
        .unwrap();
    let m5 = i.mm5(true);
    let answers = deliver(r, gw(4500), peer(4500), &m5);
    (m5, answers)
}

/// Main Mode to the end; MM6 must authenticate the gateway.
fn establish(r: &mut Responder, i: &mut TestInitiator) {
    let mm6 = only(up_to_mm5(r, i));
    i.on_mm6(&mm6).unwrap();
}

fn failures(r: &mut Responder) -> Vec<FailureReason> {
    std::iter::from_fn(|| r.poll_event())
        .filter_map(|e| match e {
            IkeEvent::Failure(f) => Some(f.reason),
            _ => None,
        })
        .collect()
}

fn quick() -> QuickParams {
    let subnet = |net: &str| Identity {
        data: IdentityData::Ipv4Subnet(net.parse().unwrap(), "255.255.255.0".parse().unwrap()),
        protocol: 0,
        port: 0,
    };
    QuickParams {
        esp: Some((Cipher::AesGcm128, Integrity::None)),
        ah: None,
        pfs: None,
        ids: Some((subnet("172.16.2.0"), subnet("172.16.1.0"))),
        lifetime_seconds: Some(3600),
        lifetime_kilobytes: None,
        commit: false,
    }
}

/// A refused MM5: exactly one failure, for which `expected` holds, the protected notify
/// `kind`, the same answer to a retransmission, and no IKE SA up.
fn assert_refused(
    r: &mut Responder,
    i: &mut TestInitiator,
    kind: u16,
    expected: impl Fn(&FailureReason) -> bool,
) -> FailureReason {
    let authenticated = |r: &Responder| {
        r.ike_sas()
            .filter(|sa| sa.peer_certificate.is_some())
            .count()
    };
    let before = authenticated(r);
    let (m5, answers) = up_to_mm5_keeping(r, i);
    let answer = only(answers);
    assert_eq!(i.refusal_notify(&answer), Ok(kind));
    let mut f = failures(r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(only(deliver(r, gw(4500), peer(4500), &m5)), answer);
    assert!(
        failures(r).is_empty(),
        "the retransmission is answered, not logged again"
    );
    assert_eq!(authenticated(r), before);
    let reason = f.pop().unwrap();
    assert!(expected(&reason), "{reason:?}");
    reason
}

/// Main Mode of a peer that must be accepted; the gateway's certificate in MM6 must have a
/// key of `kind`, and nothing is logged as a failure.
fn assert_accepted_with_our_key(r: &mut Responder, i: &mut TestInitiator, kind: KeyKind) {
    establish(r, i);
    let ours = X509::from_der(&i.responder_certificates[0]).unwrap();
    assert_eq!(KeyKind::of(&ours.public_key().unwrap()), Ok(kind));
    assert!(failures(r).is_empty());
}

#[test]
fn rsa_2048_peer_with_dn_identity_is_accepted_and_reaches_quick_mode() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca);
    let leaf = Spec::leaf("sg2.example.net");
    let mut i = dn_peer(&ca, KeyKind::Rsa, &leaf, HashAlg::Sha1);
    let mm6 = only(up_to_mm5(&mut r, &mut i));
    i.on_mm6(&mm6).unwrap();
    // MM4 asked for certificates from the trusted CA, by its subject.
    assert_eq!(
        i.certificate_requests,
        vec![(
            cert_encoding::X509_SIGNATURE,
            ca.cert.subject_name().to_der().unwrap()
        )]
    );
    // MM6 carried our identity (the certificate's subject), our certificate and the CA.
    assert_eq!(i.responder_certificates.len(), 2);
    let ours = X509::from_der(&i.responder_certificates[0]).unwrap();
    assert_eq!(i.responder_identity.as_ref().unwrap().data, dn(&ours));
    let ev: Vec<IkeEvent> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(
        ev.iter().any(|e| matches!(e, IkeEvent::IkeSaUp { identity, .. } if identity.to_string() == "C=CH, O=dyntun test, CN=sg2.example.net")),
        "{ev:?}"
    );
    let view = r.ike_sas().next().unwrap();
    assert_eq!(view.auth_method, AuthMethod::RsaSignature);
    let peer_cert = view.peer_certificate.unwrap();
    assert_eq!(peer_cert.subject, "C=CH, O=dyntun test, CN=sg2.example.net");
    assert_eq!(peer_cert.issuer, "C=CH, O=dyntun test, CN=dyntun test CA");
    assert!(
        peer_cert.not_after.contains("GMT"),
        "{}",
        peer_cert.not_after
    );
    assert_eq!(
        view.local_certificate.unwrap().subject,
        "C=CH, O=dyntun test, CN=sg1.example.net"
    );
    // Phase 2 runs over the certificate-authenticated IKE SA.
    let (_, q1) = i.qm1(&quick());
    let children = i
        .on_qm2(&only(deliver(&mut r, gw(4500), peer(4500), &q1)))
        .unwrap();
    assert_eq!(children.len(), 1);
    let q3 = i.qm3();
    assert!(deliver(&mut r, gw(4500), peer(4500), &q3).is_empty());
    assert!(std::iter::from_fn(|| r.poll_event()).any(|e| matches!(e, IkeEvent::ChildSaUp { .. })));
}

#[test]
fn ecdsa_p256_peer_with_fqdn_identity_is_accepted_whatever_hash_phase1_uses() {
    let ca = ca("dyntun EC CA", KeyKind::EcdsaP256);
    let trusted = vec![profile("ec-ca", &ca)];
    let rules = RemoteIdRules::Listed(vec![
        RemoteIdRule::Fqdn("sg3-sha1.example.net".into()),
        RemoteIdRule::Fqdn("SG3-SHA256.example.net".into()),
    ]);
    let mut r = gateway(&ca, &[KeyKind::Rsa, KeyKind::EcdsaP256], trusted, rules);
    // SHA-1 for phase 1; RFC 4754 still authenticates with HMAC-SHA-256.
    for (hash, fqdn) in [
        (HashAlg::Sha1, "sg3-sha1.example.net"),
        (HashAlg::Sha256, "sg3-sha256.example.net"),
    ] {
        let k = key(KeyKind::EcdsaP256);
        let spec = Spec {
            dns: Some(fqdn),
            ..Spec::leaf("sg3")
        };
        let cert = ca.issue(&spec, &k);
        let identity = IdentityData::Fqdn(fqdn.as_bytes().to_vec());
        let mut i = initiator(k, &[&cert], identity, hash);
        assert_accepted_with_our_key(&mut r, &mut i, KeyKind::EcdsaP256);
    }
    assert_eq!(
        r.ike_sas()
            .filter(|s| s.auth_method == AuthMethod::EcdsaP256)
            .count(),
        2
    );
}

#[test]
fn ecdsa_p384_and_p521_peers_are_accepted_with_methods_10_and_11() {
    let ca = ca("dyntun test CA", KeyKind::EcdsaP384);
    let kinds = [KeyKind::EcdsaP384, KeyKind::EcdsaP521];
    let mut r = gateway(&ca, &kinds, vec![profile("ca", &ca)], RemoteIdRules::Any);
    for kind in kinds {
        let mut i = dn_peer(&ca, kind, &Spec::leaf("sg2"), HashAlg::Sha1);
        assert_accepted_with_our_key(&mut r, &mut i, kind);
        let method = AuthMethod::for_key(kind);
        assert!(r.ike_sas().any(|sa| sa.auth_method == method));
    }
}

#[test]
fn a_chain_through_an_intermediate_ca_is_accepted_when_the_peer_sends_it() {
    let root = ca("dyntun root", KeyKind::Rsa);
    let inter_key = key(KeyKind::Rsa);
    let inter_spec = Spec {
        ca: true,
        serial: 5,
        ..Spec::leaf("dyntun intermediate")
    };
    let inter = Ca {
        cert: root.issue(&inter_spec, &inter_key),
        key: inter_key,
    };
    let mut r = rsa_gateway(&root);
    let k = key(KeyKind::Rsa);
    let cert = inter.issue(&Spec::leaf("branch"), &k);
    let mut i = initiator(k, &[&cert, &inter.cert], dn(&cert), HashAlg::Sha256);
    establish(&mut r, &mut i);
    // Without the intermediate the issuer is unknown.
    let mut i = dn_peer(
        &inter,
        KeyKind::Rsa,
        &Spec::leaf("branch 2"),
        HashAlg::Sha256,
    );
    assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_CERT_AUTHORITY,
        |reason| {
            matches!(
                reason,
                FailureReason::CertificateRefused(VerifyFailure::UnknownCa { .. })
            )
        },
    );
    // Basic constraints: an end-entity certificate of the root cannot act as a CA.
    let fake_key = key(KeyKind::Rsa);
    let fake_spec = Spec {
        serial: 6,
        ..Spec::leaf("not a CA")
    };
    let fake_ca = Ca {
        cert: root.issue(&fake_spec, &fake_key),
        key: fake_key,
    };
    let k = key(KeyKind::Rsa);
    let cert = fake_ca.issue(&Spec::leaf("branch 3"), &k);
    let mut i = initiator(k, &[&cert, &fake_ca.cert], dn(&cert), HashAlg::Sha256);
    assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_CERTIFICATE,
        |reason| matches!(reason, FailureReason::CertificateRefused(VerifyFailure::Chain { reason }) if reason.contains("CA")),
    );
}

#[test]
fn expired_certificate_is_refused_with_invalid_certificate() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca);
    let spec = Spec {
        from: -30 * DAY,
        to: -DAY,
        ..Spec::leaf("old peer")
    };
    let mut i = dn_peer(&ca, KeyKind::Rsa, &spec, HashAlg::Sha1);
    let reason = assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_CERTIFICATE,
        |reason| matches!(reason, FailureReason::CertificateRefused(VerifyFailure::Expired { subject, .. }) if subject.contains("old peer")),
    );
    assert!(reason.to_string().contains("expired"), "{reason}");
    assert_eq!(reason.counter(), "certificate-expired");
}

#[test]
fn certificate_from_an_unknown_ca_is_refused_with_invalid_cert_authority() {
    let ca_trusted = ca("dyntun test CA", KeyKind::Rsa);
    let other = ca("someone else's CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca_trusted);
    let mut i = dn_peer(&other, KeyKind::Rsa, &Spec::leaf("stranger"), HashAlg::Sha1);
    let reason = assert_refused(&mut r, &mut i, notify_type::INVALID_CERT_AUTHORITY, |_| {
        true
    });
    assert!(
        reason.to_string().contains("someone else's CA"),
        "the log line names the issuer: {reason}"
    );
}

#[test]
fn identity_not_allowed_by_remote_id_is_refused_with_authentication_failed() {
    let ca = ca("dyntun test CA", KeyKind::EcdsaP256);
    let rules = RemoteIdRules::Listed(vec![
        RemoteIdRule::distinguished_name("C=CH, O=dyntun test, CN=branch-*").unwrap(),
        RemoteIdRule::distinguished_name("C=CH, O=dyntun test, CN=sg2").unwrap(),
    ]);
    let mut r = gateway(&ca, &[KeyKind::EcdsaP256], vec![profile("ec", &ca)], rules);
    // Allowed by the second rule.
    let mut i = dn_peer(&ca, KeyKind::EcdsaP256, &Spec::leaf("sg2"), HashAlg::Sha1);
    establish(&mut r, &mut i);
    // A valid certificate of a name no rule lists.
    let mut i = dn_peer(
        &ca,
        KeyKind::EcdsaP256,
        &Spec::leaf("intruder"),
        HashAlg::Sha1,
    );
    let expected = FailureReason::IdentityNotAllowed {
        identity: "C=CH, O=dyntun test, CN=intruder".into(),
    };
    assert_refused(
        &mut r,
        &mut i,
        notify_type::AUTHENTICATION_FAILED,
        |reason| *reason == expected,
    );
}

#[test]
fn identity_the_certificate_does_not_name_is_refused_with_invalid_id_information() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca);
    let k = key(KeyKind::Rsa);
    let spec = Spec {
        dns: Some("sg2.example.net"),
        ip: Some("10.2.2.2"),
        ..Spec::leaf("sg2")
    };
    let cert = ca.issue(&spec, &k);
    // The address in the subjectAltName is proven…
    let ip = IdentityData::Ipv4("10.2.2.2".parse().unwrap());
    establish(
        &mut r,
        &mut initiator(k.clone(), &[&cert], ip, HashAlg::Sha1),
    );
    // …and so are an IPv6 address and a mailbox (USER_FQDN) of another certificate.
    let spec6 = Spec {
        ip: Some("2001:db8::2"),
        email: Some("ops@sg2.example.net"),
        serial: 3,
        ..Spec::leaf("sg2 v6")
    };
    let cert6 = ca.issue(&spec6, &k);
    for identity in [
        IdentityData::Ipv6("2001:db8::2".parse().unwrap()),
        IdentityData::UserFqdn(b"ops@sg2.example.net".to_vec()),
    ] {
        let mut i = initiator(k.clone(), &[&cert6], identity, HashAlg::Sha1);
        establish(&mut r, &mut i);
    }
    // …another name is not, even with any-remote-id.
    let claimed = IdentityData::Fqdn(b"ceo.example.net".to_vec());
    let mut i = initiator(k, &[&cert], claimed, HashAlg::Sha1);
    assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_ID_INFORMATION,
        |reason| matches!(reason, FailureReason::IdentityNotInCertificate { .. }),
    );
}

#[test]
fn bad_signature_is_refused_with_invalid_signature() {
    for kind in [KeyKind::Rsa, KeyKind::EcdsaP256] {
        let ca = ca("dyntun test CA", kind);
        let mut r = gateway(&ca, &[kind], vec![profile("ca", &ca)], RemoteIdRules::Any);
        let k = key(kind);
        let cert = ca.issue(&Spec::leaf("sg2"), &k);
        // The certificate's own key with one bit of SIG_I flipped, then an impostor that sends
        // someone else's valid certificate and signs with its own key.
        for (signing_key, corrupt_signature) in [(k.clone(), true), (key(kind), false)] {
            let mut i = initiator_signing(
                signing_key,
                &[&cert],
                dn(&cert),
                HashAlg::Sha1,
                corrupt_signature,
            );
            let reason = assert_refused(&mut r, &mut i, notify_type::INVALID_SIGNATURE, |_| true);
            assert!(
                matches!(reason, FailureReason::SignatureInvalid { .. }),
                "{kind:?}: {reason:?}"
            );
        }
    }
}

#[test]
fn revoked_and_non_signing_certificates_are_refused() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let (with_crl, _files) = profile_with_crl("test-ca", &ca, Some(&[7]));
    let trusted = vec![with_crl];
    let mut r = gateway(&ca, &[KeyKind::Rsa], trusted, RemoteIdRules::Any);
    let spec = |cn, serial, signing_usage| Spec {
        serial,
        signing_usage,
        ..Spec::leaf(cn)
    };
    let mut i = dn_peer(&ca, KeyKind::Rsa, &spec("revoked", 7, true), HashAlg::Sha1);
    assert_refused(&mut r, &mut i, notify_type::INVALID_CERTIFICATE, |reason| {
        matches!(
            reason,
            FailureReason::CertificateRefused(VerifyFailure::Revoked { .. })
        )
    });
    // The CRL does not revoke other serials.
    let mut i = dn_peer(&ca, KeyKind::Rsa, &spec("fine", 8, true), HashAlg::Sha1);
    establish(&mut r, &mut i);
    let encipher_only = spec("encipher only", 9, false);
    let mut i = dn_peer(&ca, KeyKind::Rsa, &encipher_only, HashAlg::Sha1);
    assert_refused(&mut r, &mut i, notify_type::INVALID_CERTIFICATE, |reason| {
        matches!(
            reason,
            FailureReason::CertificateRefused(VerifyFailure::KeyUsage { .. })
        )
    });
}

#[test]
fn no_certificate_sent_is_refused_and_psk_peers_are_unaffected() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca);
    let k = key(KeyKind::Rsa);
    let cert = ca.issue(&Spec::leaf("sg2"), &k);
    let mut i = initiator(k, &[], dn(&cert), HashAlg::Sha1);
    assert_refused(
        &mut r,
        &mut i,
        notify_type::CERTIFICATE_UNAVAILABLE,
        |reason| *reason == FailureReason::CertificateRefused(VerifyFailure::NoCertificate),
    );
    // A pre-shared-key peer on the same gateway.
    let mut psk = TestInitiator::new(
        SocketAddr::new("10.3.3.3".parse().unwrap(), 500),
        gw(500),
        "psk peers still work",
        phase1(HashAlg::Sha1),
    );
    let from = SocketAddr::new("10.3.3.3".parse().unwrap(), 500);
    let floated = SocketAddr::new("10.3.3.3".parse().unwrap(), 4500);
    let m1 = psk.mm1();
    psk.on_mm2(&only(deliver(&mut r, gw(500), from, &m1)))
        .unwrap();
    let m3 = psk.mm3();
    psk.on_mm4(&only(deliver(&mut r, gw(500), from, &m3)))
        .unwrap();
    assert!(
        psk.certificate_requests.is_empty(),
        "no CERT_REQ to a PSK peer"
    );
    let m5 = psk.mm5(false);
    psk.on_mm6(&only(deliver(&mut r, gw(4500), floated, &m5)))
        .unwrap();
    let view = r.ike_sas().find(|s| s.peer.remote == floated).unwrap();
    assert_eq!(view.auth_method, AuthMethod::PreSharedKey);
    assert!(view.peer_certificate.is_none());
}

#[test]
fn a_method_we_hold_no_key_for_is_not_chosen() {
    // The gateway has an RSA certificate only: an ECDSA-only peer gets NO-PROPOSAL-CHOSEN.
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = rsa_gateway(&ca);
    let mut i = dn_peer(&ca, KeyKind::EcdsaP256, &Spec::leaf("sg3"), HashAlg::Sha1);
    let m1 = i.mm1();
    let answer = only(deliver(&mut r, gw(500), peer(500), &m1));
    assert_eq!(
        TestInitiator::plain_notify(&answer),
        Some(notify_type::NO_PROPOSAL_CHOSEN)
    );
    assert_eq!(failures(&mut r), vec![FailureReason::NoProposalChosen]);
}

#[test]
fn credential_files_are_checked_when_loaded() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let k = key(KeyKind::Rsa);
    let other = key(KeyKind::Rsa);
    let cert = ca.issue(&Spec::leaf("sg1"), &k);
    let dir = TempDir(temp_dir());
    let dir = &dir.0;
    let (cert_path, key_path, other_path) = (
        dir.join("sg1.pem"),
        dir.join("sg1.key"),
        dir.join("other.key"),
    );
    std::fs::write(&cert_path, pem(&cert)).unwrap();
    std::fs::write(&key_path, k.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(&other_path, other.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let loaded = LocalCredential::load("sg1", &cert_path, &key_path).unwrap();
    assert_eq!(loaded.kind, KeyKind::Rsa);
    let shown = format!("{loaded:?}");
    assert!(
        shown.contains("<private key>") && !shown.contains("BEGIN"),
        "{shown}"
    );
    let mismatch = LocalCredential::load("sg1", &cert_path, &other_path).unwrap_err();
    assert!(
        mismatch.to_string().contains("does not match"),
        "{mismatch}"
    );
    let not_pem = LocalCredential::load("sg1", &key_path, &key_path).unwrap_err();
    assert!(
        not_pem.to_string().contains("is not a PEM certificate"),
        "{not_pem}"
    );
    let missing = LocalCredential::load("sg1", &dir.join("nope.pem"), &key_path).unwrap_err();
    assert!(missing.to_string().starts_with("cannot read"), "{missing}");
}

#[test]
fn without_the_chain_mm6_carries_our_certificate_only_and_the_configured_local_id() {
    let ca = ca("dyntun test CA", KeyKind::Rsa);
    let mut r = gateway_with(
        &ca,
        &[KeyKind::Rsa],
        vec![profile("test-ca", &ca)],
        RemoteIdRules::Any,
        LocalIdentity::Fqdn("sg1.example.net".into()),
        false,
    );
    let mut i = dn_peer(&ca, KeyKind::Rsa, &Spec::leaf("sg2"), HashAlg::Sha256);
    establish(&mut r, &mut i);
    assert_eq!(i.responder_certificates.len(), 1);
    assert_eq!(
        i.responder_identity.unwrap().data,
        IdentityData::Fqdn(b"sg1.example.net".to_vec())
    );
}

#[test]
fn revocation_is_checked_along_the_whole_chain() {
    let root = ca("dyntun root", KeyKind::Rsa);
    let intermediate = |serial| {
        let key = key(KeyKind::Rsa);
        let spec = Spec {
            ca: true,
            serial,
            ..Spec::leaf("dyntun intermediate")
        };
        Ca {
            cert: root.issue(&spec, &key),
            key,
        }
    };
    let revoked_inter = intermediate(5);
    let good_inter = intermediate(6);
    let revoked_leaf = Spec {
        serial: 40,
        ..Spec::leaf("revoked branch")
    };
    // The root revokes intermediate 5; intermediate 6 revokes leaf 40.
    let (profile, _files) =
        profile_with_crls("root", &root, &[(&root, &[5]), (&good_inter, &[40])]);
    let mut r = gateway(&root, &[KeyKind::Rsa], vec![profile], RemoteIdRules::Any);
    let revoked = |subject: &str| {
        let subject = subject.to_string();
        move |reason: &FailureReason| matches!(reason, FailureReason::CertificateRefused(VerifyFailure::Revoked { subject: s }) if s.contains(&subject))
    };

    let k = key(KeyKind::Rsa);
    let cert = revoked_inter.issue(&Spec::leaf("branch under revoked CA"), &k);
    let mut i = initiator(k, &[&cert, &revoked_inter.cert], dn(&cert), HashAlg::Sha256);
    assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_CERTIFICATE,
        revoked("dyntun intermediate"),
    );

    let k = key(KeyKind::Rsa);
    let cert = good_inter.issue(&revoked_leaf, &k);
    let mut i = initiator(k, &[&cert, &good_inter.cert], dn(&cert), HashAlg::Sha256);
    assert_refused(
        &mut r,
        &mut i,
        notify_type::INVALID_CERTIFICATE,
        revoked("revoked branch"),
    );

    let k = key(KeyKind::Rsa);
    let cert = good_inter.issue(&Spec::leaf("good branch"), &k);
    let mut i = initiator(k, &[&cert, &good_inter.cert], dn(&cert), HashAlg::Sha256);
    establish(&mut r, &mut i);
}
