//! A minimal IKEv1 Main Mode + Quick Mode initiator with pre-shared keys or signatures (RSA,
//! ECDSA P-256), for unit tests and benchmarks of the responder without strongSwan. It is deliberately simple (one Quick Mode at
//! a time, no retransmission); it is not part of the gateway's runtime.

use std::net::SocketAddr;

use dataplane::sa::{Cipher, Integrity};

use super::auth_method::AuthMethod;
use super::crypto::{HashAlg, IkeCipher};
use super::dh::{DhGroup, DhKeyPair};
use super::header::{Header, HEADER_LEN};
use super::identity::Identity;
use super::keys::{KeymatInputs, Phase1Inputs, Phase1Keys};
use super::natt::nat_d_hash;
use super::notify::Notify;
use super::numbers::{cert_encoding, exchange, flags, notify_type, p1, p2, protocol, vendor_id};
use super::payload::{write_chain, Chain, Payload};
use super::protection::{after_first_payload, hashed_payloads, open, same, seal};
use super::sa_payload::{Attribute, Proposal, SaPayload, Transform};
use super::secret::Secret;

#[derive(Clone, Debug)]
pub struct Phase1Params {
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub group: DhGroup,
    pub lifetime_seconds: u64,
    pub natt: bool,
}

#[derive(Clone, Debug)]
pub struct QuickParams {
    /// `None`: AH only.
    pub esp: Option<(Cipher, Integrity)>,
    /// `Some`: AH too (alone or bundled with ESP).
    pub ah: Option<Integrity>,
    pub pfs: Option<DhGroup>,
    /// (IDci, IDcr); `None` sends no identities.
    pub ids: Option<(Identity, Identity)>,
    pub lifetime_seconds: Option<u64>,
    pub lifetime_kilobytes: Option<u64>,
    pub commit: bool,
}

/// Keys the initiator derived for one protocol of a child SA.
#[derive(Debug)]
pub struct InitiatorChild {
    /// SPI the responder chose (the initiator's outbound SPI).
    pub responder_spi: u32,
    pub initiator_spi: u32,
    pub outbound_keymat: Secret,
    pub inbound_keymat: Secret,
    /// Encapsulation mode attribute of the transform the responder chose.
    pub encapsulation_mode: Option<u16>,
}

/// The initiator's side of signature authentication: its key and the certificates it sends.
pub struct InitiatorSigner {
    pub method: AuthMethod,
    pub key: openssl::pkey::PKey<openssl::pkey::Private>,
    /// DER certificates for CERT payloads, end-entity first (empty: send none).
    pub certificates: Vec<Vec<u8>>,
    /// Flip a bit of SIG_I, to test that the responder checks it.
    pub corrupt_signature: bool,
}

impl std::fmt::Debug for InitiatorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InitiatorSigner({:?}, <private key>)", self.method)
    }
}

struct QuickPending {
    message_id: u32,
    iv: Vec<u8>,
    nonce_i: Vec<u8>,
    nonce_r: Vec<u8>,
    dh: Option<DhKeyPair>,
    spis: Vec<(u8, u32)>,
    key_lens: Vec<usize>,
}

pub struct TestInitiator {
    pub params: Phase1Params,
    pub psk: Secret,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub cookie_i: [u8; 8],
    pub cookie_r: [u8; 8],
    pub identity: Identity,
    sa_i_body: Vec<u8>,
    dh: Option<DhKeyPair>,
    nonce_i: Vec<u8>,
    public_r: Vec<u8>,
    keys: Option<Phase1Keys>,
    iv: Vec<u8>,
    phase1_last_block: Vec<u8>,
    quick: Option<QuickPending>,
    natt_draft: bool,
    signer: Option<InitiatorSigner>,
    /// CERT_REQ bodies (encoding, data) the responder sent in MM4.
    pub certificate_requests: Vec<(u8, Vec<u8>)>,
    /// The responder's CERT payloads from MM6 (DER, as received).
    pub responder_certificates: Vec<Vec<u8>>,
    pub responder_identity: Option<Identity>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("randomness");
    b
}

fn message(header: Header, payloads: &[Payload]) -> Vec<u8> {
    let (first, body) = write_chain(payloads);
    let mut h = header;
    h.next_payload = first;
    h.length = (HEADER_LEN + body.len()) as u32;
    let mut out = Vec::new();
    h.write(&mut out);
    out.extend_from_slice(&body);
    out
}

impl TestInitiator {
    pub fn new(local: SocketAddr, remote: SocketAddr, psk: &str, params: Phase1Params) -> Self {
        TestInitiator {
            params,
            psk: Secret::from(psk),
            local,
            remote,
            cookie_i: random(),
            cookie_r: [0; 8],
            identity: Identity::address(local.ip()),
            sa_i_body: Vec::new(),
            dh: None,
            nonce_i: Vec::new(),
            public_r: Vec::new(),
            keys: None,
            iv: Vec::new(),
            phase1_last_block: Vec::new(),
            quick: None,
            natt_draft: false,
            signer: None,
            certificate_requests: Vec::new(),
            responder_certificates: Vec::new(),
            responder_identity: None,
        }
    }

    /// An initiator that authenticates with `signer` instead of a pre-shared key.
    pub fn with_signer(
        local: SocketAddr,
        remote: SocketAddr,
        params: Phase1Params,
        signer: InitiatorSigner,
    ) -> Self {
        let mut i = Self::new(local, remote, "", params);
        i.signer = Some(signer);
        i
    }

    fn auth_method(&self) -> AuthMethod {
        self.signer
            .as_ref()
            .map_or(AuthMethod::PreSharedKey, |s| s.method)
    }

    /// The notification type of an unprotected Informational the responder sent, if any.
    pub fn plain_notify(bytes: &[u8]) -> Option<u16> {
        let header = Header::parse(bytes).ok()?;
        if header.exchange != exchange::INFORMATIONAL || header.flags & flags::ENCRYPTION != 0 {
            return None;
        }
        let chain = Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false).ok()?;
        let kind = chain.iter().find_map(|p| match p {
            Payload::Notify(n) => Some(n.message_type),
            _ => None,
        });
        kind
    }

    /// Speak draft-ietf-ipsec-nat-t-ike-02 (vendor ID, NAT-D type 130, mode 61443) instead of
    /// RFC 3947.
    pub fn use_natt_draft(&mut self) {
        self.natt_draft = true;
    }

    fn header(&self, exchange: u8, message_id: u32) -> Header {
        Header {
            initiator_cookie: self.cookie_i,
            responder_cookie: self.cookie_r,
            next_payload: 0,
            exchange,
            flags: 0,
            message_id,
            length: 0,
        }
    }

    pub fn keys(&self) -> Option<&Phase1Keys> {
        self.keys.as_ref()
    }

    pub fn mm1(&mut self) -> Vec<u8> {
        let (enc, bits) = match self.params.cipher {
            IkeCipher::DesCbc => (p1::ENC_DES, None),
            IkeCipher::TripleDesCbc => (p1::ENC_3DES, None),
            IkeCipher::AesCbc { key_bits } => (p1::ENC_AES, Some(key_bits)),
        };
        let hash = match self.params.hash {
            HashAlg::Md5 => p1::HASH_MD5,
            HashAlg::Sha1 => p1::HASH_SHA1,
            HashAlg::Sha256 => p1::HASH_SHA256,
        };
        let mut attributes = vec![Attribute::basic(p1::ENCRYPTION, enc)];
        if let Some(b) = bits {
            attributes.push(Attribute::basic(p1::KEY_LENGTH, b));
        }
        attributes.extend([
            Attribute::basic(p1::HASH, hash),
            Attribute::basic(p1::GROUP, self.params.group.number()),
            Attribute::basic(p1::AUTH_METHOD, self.auth_method().number()),
            Attribute::basic(p1::LIFE_TYPE, p1::LIFE_SECONDS),
            Attribute::number(p1::LIFE_DURATION, self.params.lifetime_seconds),
        ]);
        let sa = SaPayload::new(vec![Proposal {
            number: 1,
            protocol: protocol::ISAKMP,
            spi: Vec::new(),
            transforms: vec![Transform {
                number: 1,
                transform_id: p1::KEY_IKE,
                attributes,
            }],
        }]);
        let mut body = Vec::new();
        sa.write(&mut body);
        self.sa_i_body = body;
        let mut payloads = vec![Payload::Sa(sa), Payload::VendorId(vendor_id::DPD.to_vec())];
        if self.params.natt {
            let id = if self.natt_draft {
                vendor_id::NAT_T_DRAFT_02_NL
            } else {
                vendor_id::NAT_T_RFC3947
            };
            payloads.push(Payload::VendorId(id.to_vec()));
        }
        message(self.header(exchange::IDENTITY_PROTECTION, 0), &payloads)
    }

    pub fn on_mm2(&mut self, bytes: &[u8]) -> Result<(), String> {
        let header = Header::parse(bytes).map_err(|e| e.to_string())?;
        let chain = Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false)
            .map_err(|e| e.to_string())?;
        if chain.iter().any(|p| matches!(p, Payload::Notify(_)))
            || !chain.iter().any(|p| matches!(p, Payload::Sa(_)))
        {
            return Err("MM2 without SA".into());
        }
        self.cookie_r = header.responder_cookie;
        Ok(())
    }

    pub fn mm3(&mut self) -> Vec<u8> {
        let dh = DhKeyPair::generate(self.params.group).expect("dh");
        self.nonce_i = random::<32>().to_vec();
        let mut payloads = vec![
            Payload::KeyExchange(dh.public().to_vec()),
            Payload::Nonce(self.nonce_i.clone()),
        ];
        if self.params.natt {
            for addr in [self.remote, self.local] {
                let hash = nat_d_hash(self.params.hash, &self.cookie_i, &self.cookie_r, addr);
                payloads.push(Payload::NatDiscovery {
                    draft: self.natt_draft,
                    hash,
                });
            }
        }
        self.dh = Some(dh);
        message(self.header(exchange::IDENTITY_PROTECTION, 0), &payloads)
    }

    pub fn on_mm4(&mut self, bytes: &[u8]) -> Result<(), String> {
        let header = Header::parse(bytes).map_err(|e| e.to_string())?;
        let chain = Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false)
            .map_err(|e| e.to_string())?;
        let mut public_r = None;
        let mut nonce_r = None;
        for p in chain.iter() {
            match p {
                Payload::KeyExchange(k) => public_r = Some(k.clone()),
                Payload::Nonce(n) => nonce_r = Some(n.clone()),
                Payload::CertificateRequest { encoding, data } => {
                    self.certificate_requests.push((*encoding, data.clone()))
                }
                _ => {}
            }
        }
        let (public_r, nonce_r) = public_r.zip(nonce_r).ok_or("MM4 without KE/nonce")?;
        let dh = self.dh.as_ref().ok_or("no DH")?;
        let shared = dh.shared_secret(&public_r).map_err(|e| e.to_string())?;
        let keys = Phase1Keys::derive(
            self.params.hash,
            self.params.cipher,
            &Phase1Inputs {
                psk: self.signer.is_none().then_some(&self.psk),
                nonce_i: &self.nonce_i,
                nonce_r: &nonce_r,
                shared: &shared,
                cookie_i: &self.cookie_i,
                cookie_r: &self.cookie_r,
            },
        );
        self.iv = keys.phase1_iv(dh.public(), &public_r);
        self.public_r = public_r;
        self.keys = Some(keys);
        Ok(())
    }

    pub fn mm5(&mut self, initial_contact: bool) -> Vec<u8> {
        let keys = self.keys.as_ref().expect("after MM4");
        let mut id_body = Vec::new();
        self.identity.write(&mut id_body);
        let public_i = self.dh.as_ref().expect("dh").public();
        let hash_i = self.auth_method().authentication_hash(
            self.params.hash,
            keys.skeyid.expose(),
            &[
                public_i,
                &self.public_r,
                &self.cookie_i,
                &self.cookie_r,
                &self.sa_i_body,
                &id_body,
            ],
        );
        let mut payloads = vec![Payload::Identification(self.identity.clone())];
        match &self.signer {
            None => payloads.push(Payload::Hash(hash_i)),
            Some(signer) => {
                for data in &signer.certificates {
                    payloads.push(Payload::Certificate {
                        encoding: cert_encoding::X509_SIGNATURE,
                        data: data.clone(),
                    });
                }
                let kind = signer.method.key_kind().expect("a signature method");
                let mut sig =
                    crate::pki::signature::sign(&signer.key, kind, &hash_i).expect("signing");
                if signer.corrupt_signature {
                    sig[3] ^= 0x40;
                }
                payloads.push(Payload::Signature(sig));
            }
        }
        if initial_contact {
            let spi = [self.cookie_i, self.cookie_r].concat();
            payloads.push(Payload::Notify(Notify::new(
                protocol::ISAKMP,
                notify_type::INITIAL_CONTACT,
                spi,
                Vec::new(),
            )));
        }
        let sealed = seal(
            keys,
            &self.iv,
            self.header(exchange::IDENTITY_PROTECTION, 0),
            &payloads,
        )
        .expect("seal");
        self.iv = sealed.last_block;
        sealed.bytes
    }

    pub fn on_mm6(&mut self, bytes: &[u8]) -> Result<(), String> {
        let header = Header::parse(bytes).map_err(|e| e.to_string())?;
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let opened = open(keys, &self.iv, &header, bytes).map_err(|e| format!("{e:?}"))?;
        let id_index = opened
            .chain
            .find(super::numbers::payload_type::ID)
            .ok_or("MM6 without ID")?;
        if let Payload::Identification(id) = &opened.chain.payloads[id_index].payload {
            self.responder_identity = Some(id.clone());
        }
        self.responder_certificates = opened
            .chain
            .iter()
            .filter_map(|p| match p {
                Payload::Certificate { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect();
        let proof = opened
            .chain
            .iter()
            .find_map(|p| match p {
                Payload::Hash(h) if self.signer.is_none() => Some(h.clone()),
                Payload::Signature(s) if self.signer.is_some() => Some(s.clone()),
                _ => None,
            })
            .ok_or("MM6 without HASH or SIG")?;
        let public_i = self.dh.as_ref().ok_or("no dh")?.public();
        let expected = self.auth_method().authentication_hash(
            self.params.hash,
            keys.skeyid.expose(),
            &[
                &self.public_r,
                public_i,
                &self.cookie_r,
                &self.cookie_i,
                &self.sa_i_body,
                opened.chain.raw_body(id_index),
            ],
        );
        match &self.signer {
            None if !same(&expected, &proof) => return Err("HASH_R mismatch".into()),
            None => {}
            Some(signer) => {
                let der = self
                    .responder_certificates
                    .first()
                    .ok_or("MM6 without CERT")?;
                let cert = openssl::x509::X509::from_der(der).map_err(|e| e.to_string())?;
                let key = cert.public_key().map_err(|e| e.to_string())?;
                let kind = signer.method.key_kind().ok_or("no key kind")?;
                if !crate::pki::signature::verify(&key, kind, &expected, &proof) {
                    return Err("SIG_R does not verify".into());
                }
            }
        }
        self.iv = opened.last_block.clone();
        self.phase1_last_block = opened.last_block;
        Ok(())
    }

    /// QM1 for one child; returns the message id and bytes.
    pub fn qm1(&mut self, q: &QuickParams) -> (u32, Vec<u8>) {
        let keys = self.keys.as_ref().expect("established");
        let mid = u32::from_be_bytes(random()).max(1);
        let encap = match (self.params.natt, self.natt_draft) {
            (true, false) => p2::ENCAP_UDP_TUNNEL,
            (true, true) => p2::ENCAP_UDP_TUNNEL_DRAFT,
            _ => p2::ENCAP_TUNNEL,
        };
        let mut common = vec![Attribute::basic(p2::ENCAPSULATION, encap)];
        if let Some(s) = q.lifetime_seconds {
            common.push(Attribute::basic(p2::LIFE_TYPE, p2::LIFE_SECONDS));
            common.push(Attribute::number(p2::LIFE_DURATION, s));
        }
        if let Some(k) = q.lifetime_kilobytes {
            common.push(Attribute::basic(p2::LIFE_TYPE, p2::LIFE_KILOBYTES));
            common.push(Attribute::number(p2::LIFE_DURATION, k));
        }
        if let Some(g) = q.pfs {
            common.push(Attribute::basic(p2::GROUP, g.number()));
        }
        let auth_number = |i: Integrity| match i {
            Integrity::HmacMd5_96 => p2::AUTH_HMAC_MD5,
            Integrity::HmacSha1_96 => p2::AUTH_HMAC_SHA,
            _ => p2::AUTH_HMAC_SHA2_256,
        };
        let mut proposals = Vec::new();
        let mut spis = Vec::new();
        let mut key_lens = Vec::new();
        if let Some((cipher, integrity)) = q.esp {
            let (id, bits) = match cipher {
                Cipher::DesCbc => (p2::ESP_DES, None),
                Cipher::TripleDesCbc => (p2::ESP_3DES, None),
                Cipher::AesCbc128 => (p2::ESP_AES, Some(128)),
                Cipher::AesCbc192 => (p2::ESP_AES, Some(192)),
                Cipher::AesCbc256 => (p2::ESP_AES, Some(256)),
                Cipher::AesGcm128 => (p2::ESP_AES_GCM_16, Some(128)),
                Cipher::AesGcm256 => (p2::ESP_AES_GCM_16, Some(256)),
                Cipher::Null => (11, None),
            };
            let mut attributes = common.clone();
            if let Some(b) = bits {
                attributes.push(Attribute::basic(p2::KEY_LENGTH, b));
            }
            if integrity != Integrity::None {
                attributes.push(Attribute::basic(p2::AUTH_ALG, auth_number(integrity)));
            }
            let spi = u32::from_be_bytes(random()) | 0x100;
            spis.push((protocol::ESP, spi));
            key_lens.push(cipher.key_len() + integrity.key_len());
            proposals.push(Proposal {
                number: 1,
                protocol: protocol::ESP,
                spi: spi.to_be_bytes().to_vec(),
                transforms: vec![Transform {
                    number: 1,
                    transform_id: id,
                    attributes,
                }],
            });
        }
        if let Some(integrity) = q.ah {
            let id = match integrity {
                Integrity::HmacMd5_96 => p2::AH_MD5,
                Integrity::HmacSha1_96 => p2::AH_SHA,
                _ => p2::AH_SHA2_256,
            };
            let mut attributes = common.clone();
            attributes.push(Attribute::basic(p2::AUTH_ALG, auth_number(integrity)));
            let spi = u32::from_be_bytes(random()) | 0x100;
            spis.push((protocol::AH, spi));
            key_lens.push(integrity.key_len());
            proposals.push(Proposal {
                number: 1,
                protocol: protocol::AH,
                spi: spi.to_be_bytes().to_vec(),
                transforms: vec![Transform {
                    number: 1,
                    transform_id: id,
                    attributes,
                }],
            });
        }
        let nonce_i = random::<32>().to_vec();
        let mut rest = vec![
            Payload::Sa(SaPayload::new(proposals)),
            Payload::Nonce(nonce_i.clone()),
        ];
        let dh = q.pfs.map(|g| DhKeyPair::generate(g).expect("dh"));
        if let Some(d) = &dh {
            rest.push(Payload::KeyExchange(d.public().to_vec()));
        }
        if let Some((ci, cr)) = &q.ids {
            rest.push(Payload::Identification(ci.clone()));
            rest.push(Payload::Identification(cr.clone()));
        }
        let payloads = hashed_payloads(keys, mid, rest, &[]);
        let mut header = self.header(exchange::QUICK_MODE, mid);
        if q.commit {
            header.flags |= flags::COMMIT;
        }
        let iv = keys.exchange_iv(&self.phase1_last_block, mid);
        let sealed = seal(keys, &iv, header, &payloads).expect("seal");
        self.quick = Some(QuickPending {
            message_id: mid,
            iv: sealed.last_block,
            nonce_i,
            nonce_r: Vec::new(),
            dh,
            spis,
            key_lens,
        });
        (mid, sealed.bytes)
    }

    /// Checks QM2 and derives the child's keys (one entry per protocol, ESP first).
    pub fn on_qm2(&mut self, bytes: &[u8]) -> Result<Vec<InitiatorChild>, String> {
        let header = Header::parse(bytes).map_err(|e| e.to_string())?;
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let q = self.quick.as_mut().ok_or("no quick mode")?;
        if header.exchange != exchange::QUICK_MODE || header.message_id != q.message_id {
            return Err(format!(
                "not QM2: exchange {} mid {}",
                header.exchange, header.message_id
            ));
        }
        let opened = open(keys, &q.iv, &header, bytes).map_err(|e| format!("{e:?}"))?;
        let Some(Payload::Hash(h)) = opened.chain.payloads.first().map(|p| &p.payload) else {
            return Err("QM2 without HASH(2)".into());
        };
        let rest = after_first_payload(&opened.chain).ok_or("empty")?;
        let expected = keys.hash.prf(
            keys.skeyid_a.expose(),
            &[&q.message_id.to_be_bytes(), &q.nonce_i, rest],
        );
        if !same(&expected, h) {
            return Err("HASH(2) mismatch".into());
        }
        let mut sa = None;
        let mut public_r = None;
        for p in opened.chain.iter() {
            match p {
                Payload::Sa(s) => sa = Some(s.clone()),
                Payload::Nonce(n) => q.nonce_r = n.clone(),
                Payload::KeyExchange(k) => public_r = Some(k.clone()),
                _ => {}
            }
        }
        let sa = sa.ok_or("QM2 without SA")?;
        let pfs = match (&q.dh, public_r) {
            (Some(d), Some(p)) => Some(d.shared_secret(&p).map_err(|e| e.to_string())?),
            (None, None) => None,
            _ => return Err("PFS mismatch".into()),
        };
        q.iv = opened.last_block;
        let mut out = Vec::new();
        for ((proto, my_spi), len) in q.spis.iter().zip(&q.key_lens) {
            let proposal = sa
                .proposals
                .iter()
                .find(|p| p.protocol == *proto)
                .ok_or("protocol missing in QM2")?;
            let their: [u8; 4] = proposal.spi.as_slice().try_into().map_err(|_| "bad SPI")?;
            let responder_spi = u32::from_be_bytes(their);
            let input = KeymatInputs {
                pfs_shared: pfs.as_ref(),
                protocol: *proto,
                nonce_i: &q.nonce_i,
                nonce_r: &q.nonce_r,
            };
            out.push(InitiatorChild {
                responder_spi,
                initiator_spi: *my_spi,
                outbound_keymat: keys.keymat(&input, responder_spi, *len),
                inbound_keymat: keys.keymat(&input, *my_spi, *len),
                encapsulation_mode: proposal
                    .transforms
                    .first()
                    .and_then(|t| t.basic(p2::ENCAPSULATION)),
            });
        }
        Ok(out)
    }

    pub fn qm3(&mut self) -> Vec<u8> {
        let keys = self.keys.as_ref().expect("established");
        let q = self.quick.take().expect("after QM2");
        let hash = keys.hash.prf(
            keys.skeyid_a.expose(),
            &[&[0], &q.message_id.to_be_bytes(), &q.nonce_i, &q.nonce_r],
        );
        let header = self.header(exchange::QUICK_MODE, q.message_id);
        seal(keys, &q.iv, header, &[Payload::Hash(hash)])
            .expect("seal")
            .bytes
    }

    /// A protected Informational carrying `payloads` (after the HASH).
    pub fn informational(&self, payloads: Vec<Payload>) -> Vec<u8> {
        let keys = self.keys.as_ref().expect("established");
        let mid = u32::from_be_bytes(random()).max(1);
        let iv = keys.exchange_iv(&self.phase1_last_block, mid);
        let all = hashed_payloads(keys, mid, payloads, &[]);
        seal(keys, &iv, self.header(exchange::INFORMATIONAL, mid), &all)
            .expect("seal")
            .bytes
    }

    /// Opens and verifies a protected Informational from the responder; returns its payloads.
    pub fn open_informational(&self, bytes: &[u8]) -> Result<Vec<Payload>, String> {
        self.open_informational_after(bytes, &self.phase1_last_block)
    }

    /// The notification type of a protected Informational that answers our MM5 (a refused
    /// phase 1: its IV chains from MM5's last block).
    pub fn refusal_notify(&self, bytes: &[u8]) -> Result<u16, String> {
        let payloads = self.open_informational_after(bytes, &self.iv)?;
        payloads
            .iter()
            .find_map(|p| match p {
                Payload::Notify(n) => Some(n.message_type),
                _ => None,
            })
            .ok_or_else(|| "no notification".to_string())
    }

    fn open_informational_after(
        &self,
        bytes: &[u8],
        last_block: &[u8],
    ) -> Result<Vec<Payload>, String> {
        let header = Header::parse(bytes).map_err(|e| e.to_string())?;
        if header.exchange != exchange::INFORMATIONAL {
            return Err(format!("exchange {}", header.exchange));
        }
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let iv = keys.exchange_iv(last_block, header.message_id);
        let opened = open(keys, &iv, &header, bytes).map_err(|e| format!("{e:?}"))?;
        let Some(Payload::Hash(h)) = opened.chain.payloads.first().map(|p| &p.payload) else {
            return Err("no HASH".into());
        };
        let rest = after_first_payload(&opened.chain).ok_or("empty")?;
        let expected = keys.hash.prf(
            keys.skeyid_a.expose(),
            &[&header.message_id.to_be_bytes(), rest],
        );
        if !same(&expected, h) {
            return Err("HASH mismatch".into());
        }
        Ok(opened.chain.iter().skip(1).cloned().collect())
    }
}
