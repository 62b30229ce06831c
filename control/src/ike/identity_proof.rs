//! What MM5/MM6 do alike whether a pre-shared key or a signature proves the identity
//! (RFC 2409 section 5): sorting MM5's payloads, the HASH_I/HASH_R input, and sealing MM6 on
//! the CBC chain MM5 left.

use super::crypto::CipherError;
use super::header::Header;
use super::identity::Identity;
use super::ike_sa::IkeSa;
use super::numbers::{cert_encoding, exchange, notify_type};
use super::payload::{Chain, Payload};
use super::protection::{seal, Sealed};

/// The peer's identity as decoded, and its payload body as received, which HASH_I covers.
pub(super) struct PeerIdentity {
    pub identity: Identity,
    pub body: Vec<u8>,
}

/// MM5 opened: the payloads either method looks at (the last one wins where a kind repeats)
/// and the last ciphertext block, from which MM6 is chained.
pub(super) struct Mm5 {
    pub identity: Option<PeerIdentity>,
    pub hash: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    /// X.509 certificates in the order sent: the leaf first, then its chain.
    pub certificates: Vec<Vec<u8>>,
    /// A CERT payload in an encoding we do not take, so "no certificate" can say why.
    pub other_encoding: bool,
    pub initial_contact: bool,
    pub last_block: Vec<u8>,
}

impl Mm5 {
    /// MM5's decrypted `chain`, and its last ciphertext block.
    pub(super) fn sort(chain: &Chain, last_block: Vec<u8>) -> Mm5 {
        let mut mm5 = Mm5 {
            identity: None,
            hash: None,
            signature: None,
            certificates: Vec::new(),
            other_encoding: false,
            initial_contact: false,
            last_block,
        };
        for (i, p) in chain.iter().enumerate() {
            match p {
                Payload::Identification(identity) => {
                    mm5.identity = Some(PeerIdentity {
                        identity: identity.clone(),
                        body: chain.raw_body(i).to_vec(),
                    })
                }
                Payload::Hash(h) => mm5.hash = Some(h.clone()),
                Payload::Signature(s) => mm5.signature = Some(s.clone()),
                Payload::Certificate { encoding, data } => {
                    if *encoding == cert_encoding::X509_SIGNATURE {
                        mm5.certificates.push(data.clone());
                    } else {
                        mm5.other_encoding = true;
                    }
                }
                Payload::Notify(n) if n.message_type == notify_type::INITIAL_CONTACT => {
                    mm5.initial_contact = true
                }
                _ => {}
            }
        }
        mm5
    }
}

/// What `phase1_established` needs once MM6 is sealed.
pub(super) struct Mm6 {
    pub sealed: Sealed,
    pub identity: Identity,
    pub initial_contact: bool,
}

/// Whose HASH: the initiator's (HASH_I) or ours (HASH_R).
#[derive(Clone, Copy)]
pub(super) enum Prover {
    Initiator,
    Responder,
}

impl IkeSa {
    /// HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b), HASH_R with the
    /// pairs swapped and our ID; the negotiated method picks the PRF (RFC 4754 for ECDSA),
    /// and with signatures this is what SIG_I/SIG_R sign.
    pub(super) fn authentication_hash(&self, prover: Prover, id_body: &[u8]) -> Vec<u8> {
        let keys = self.keys.as_ref().expect("keys exist after MM3");
        let public_r = self
            .dh
            .as_ref()
            .map(|d| d.public().to_vec())
            .unwrap_or_default();
        let parts: [&[u8]; 6] = match prover {
            Prover::Initiator => [
                &self.public_i,
                &public_r,
                &self.cookie_i,
                &self.cookie_r,
                &self.sa_i_body,
                id_body,
            ],
            Prover::Responder => [
                &public_r,
                &self.public_i,
                &self.cookie_r,
                &self.cookie_i,
                &self.sa_i_body,
                id_body,
            ],
        };
        self.choice
            .auth
            .authentication_hash(keys.hash, keys.skeyid.expose(), &parts)
    }

    /// MM6 with `payloads`, encrypted on from MM5's last ciphertext block.
    pub(super) fn seal_mm6(
        &self,
        mm5_last_block: &[u8],
        payloads: &[Payload],
    ) -> Result<Sealed, CipherError> {
        let keys = self.keys.as_ref().expect("keys exist after MM3");
        let header = Header {
            initiator_cookie: self.cookie_i,
            responder_cookie: self.cookie_r,
            next_payload: 0,
            exchange: exchange::IDENTITY_PROTECTION,
            flags: 0,
            message_id: 0,
            length: 0,
        };
        seal(keys, mm5_last_block, header, payloads)
    }
}
