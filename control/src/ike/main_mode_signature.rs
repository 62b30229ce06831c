//! Main Mode MM5/MM6 with signatures (RFC 2409 section 5.1; RFC 4754 for ECDSA): the peer's
//! certificate chain is verified against the trusted CAs, its ID must be proven by the
//! certificate and allowed by `remote-id`, and SIG_I must verify; we answer with our ID, our
//! certificate (and chain) and SIG_R. Every refusal is one failure line plus the notify that
//! names it, answered again to retransmissions.

use dataplane::sa::PeerEndpoint;

use super::auth_method::AuthMethod;
use super::certificate_auth::{notify_for, CertificateAuth};
use super::events::{FailureReason, IkeSaId};
use super::identity::Identity;
use super::identity_proof::{Mm5, Mm6, Prover};
use super::main_mode::MM;
use super::notify::Notify;
use super::numbers::{cert_encoding, notify_type, protocol};
use super::payload::Payload;
use super::responder::Responder;
use crate::pki::identity_match::certificate_proves;
use crate::pki::trust::VerifiedPeer;
use crate::pki::{signature, CertificateSummary, KeyKind, VerifyFailure};

impl Responder {
    /// CERT_REQ payloads for MM4: one per trusted CA subject, so the peer sends its certificate.
    pub(super) fn certificate_requests(&self, auth: AuthMethod) -> Vec<Payload> {
        let Some(certs) = self.policy.certificates.as_ref() else {
            return Vec::new();
        };
        if auth == AuthMethod::PreSharedKey {
            return Vec::new();
        }
        let mut out: Vec<Payload> = certs
            .trust
            .ca_names_der()
            .into_iter()
            .map(|data| Payload::CertificateRequest {
                encoding: cert_encoding::X509_SIGNATURE,
                data,
            })
            .collect();
        if out.is_empty() {
            out.push(Payload::CertificateRequest {
                encoding: cert_encoding::X509_SIGNATURE,
                data: Vec::new(),
            });
        }
        out
    }

    /// The certificate chain, the ID it must prove and SIG_I; MM6 carries our ID,
    /// certificate(s) and SIG_R.
    pub(super) fn mm6_for_signature(
        &mut self,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        bytes: &[u8],
        mm5: Mm5,
        certs: &CertificateAuth,
        kind: KeyKind,
    ) -> Option<Mm6> {
        let remote = endpoint.remote;
        let (Some(peer), Some(signature_i)) = (mm5.identity, mm5.signature) else {
            self.fail(remote, MM, FailureReason::MissingPayload("ID or SIG"));
            return None;
        };
        let identity = peer.identity;
        let sa = self.sas.get(&id).expect("looked up by caller");
        let hash_i = sa.authentication_hash(Prover::Initiator, &peer.body);
        let proof = SignatureProof {
            certificates: &mm5.certificates,
            other_encoding: mm5.other_encoding,
            identity: &identity,
            hash_i: &hash_i,
            signature_i: &signature_i,
        };
        let verified = match check_peer(certs, kind, &proof) {
            Ok(v) => v,
            Err(refusal) => {
                self.refuse_phase1(id, endpoint, bytes, &mm5.last_block, refusal);
                return None;
            }
        };
        let sa = self.sas.get(&id).expect("looked up by caller");
        // Authenticated: answer with our identity, certificate(s) and SIG_R.
        let Some(credential) = certs.credential(kind) else {
            self.fail(remote, MM, FailureReason::NoLocalCertificate);
            return None;
        };
        let our_identity: Identity = certs.our_identity(credential);
        let mut id_body_r = Vec::new();
        our_identity.write(&mut id_body_r);
        let hash_r = sa.authentication_hash(Prover::Responder, &id_body_r);
        let Ok(signature_r) = credential.sign(&hash_r) else {
            self.fail(remote, MM, FailureReason::NoLocalCertificate);
            return None;
        };
        let mut payloads = vec![Payload::Identification(our_identity)];
        let mut ours = vec![&credential.certificate];
        if certs.send_chain {
            ours.extend(credential.chain.iter());
        }
        for c in ours {
            if let Ok(data) = c.to_der() {
                payloads.push(Payload::Certificate {
                    encoding: cert_encoding::X509_SIGNATURE,
                    data,
                });
            }
        }
        payloads.push(Payload::Signature(signature_r));
        let Ok(sealed) = sa.seal_mm6(&mm5.last_block, &payloads) else {
            self.fail(remote, MM, FailureReason::WrongState);
            return None;
        };
        let local_summary = CertificateSummary::of(&credential.certificate);
        tracing::info!(
            peer = %remote,
            identity = %identity,
            subject = %verified.summary.subject,
            issuer = %verified.summary.issuer,
            ca_profile = %verified.ca_profile,
            method = ?sa.choice.auth,
            "peer certificate verified"
        );
        let sa = self.sas.get_mut(&id).expect("looked up by caller");
        sa.peer_certificate = Some(verified.summary);
        sa.local_certificate = Some(local_summary);
        Some(Mm6 {
            sealed,
            identity,
            initial_contact: mm5.initial_contact,
        })
    }

    /// One failure line, then an Informational with `notify`, protected with the phase 1 keys
    /// (strongSwan ignores unprotected ones once keys exist) and chained from MM5's last
    /// block; a retransmitted MM5 gets the same answer until the half-open SA times out.
    fn refuse_phase1(
        &mut self,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        bytes: &[u8],
        mm5_last_block: &[u8],
        refusal: Refusal,
    ) {
        self.fail(endpoint.remote, MM, refusal.reason);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.phase1_last_block = mm5_last_block.to_vec();
        let spi = [sa.cookie_i, sa.cookie_r].concat();
        let notify = Notify::new(protocol::ISAKMP, refusal.notify, spi, Vec::new());
        let payload = Payload::Notify(notify);
        let Some((_, message)) = self.protected_informational(id, vec![payload]) else {
            return;
        };
        let sa = self.sas.get_mut(&id).expect("present above");
        sa.last_request = bytes.to_vec();
        sa.last_reply = Some(message.clone());
        self.send(endpoint, &message);
    }
}

/// Why the peer is refused: the failure we log and the notify we answer with.
struct Refusal {
    reason: FailureReason,
    notify: u16,
}

/// What MM5 offers as proof with signatures.
struct SignatureProof<'a> {
    certificates: &'a [Vec<u8>],
    /// A CERT in an encoding we do not take was sent: says why there is no certificate.
    other_encoding: bool,
    identity: &'a Identity,
    hash_i: &'a [u8],
    signature_i: &'a [u8],
}

/// In this order: the chain is trusted, its key is of the negotiated kind, SIG_I verifies,
/// the certificate proves the ID and `remote-id` allows it; the first miss is the refusal.
fn check_peer(
    certs: &CertificateAuth,
    kind: KeyKind,
    proof: &SignatureProof<'_>,
) -> Result<VerifiedPeer, Refusal> {
    let refuse_certificate = |failure: VerifyFailure| Refusal {
        notify: notify_for(&failure),
        reason: FailureReason::CertificateRefused(failure),
    };
    let Some((leaf, intermediates)) = proof.certificates.split_first() else {
        return Err(refuse_certificate(if proof.other_encoding {
            VerifyFailure::BadEncoding
        } else {
            VerifyFailure::NoCertificate
        }));
    };
    let verified = certs
        .trust
        .verify(leaf, intermediates)
        .map_err(refuse_certificate)?;
    let wrong_key = Refusal {
        reason: FailureReason::CertificateRefused(VerifyFailure::WrongKeyType),
        notify: notify_type::INVALID_CERTIFICATE,
    };
    let Ok(peer_key) = verified.certificate.public_key() else {
        return Err(wrong_key);
    };
    if KeyKind::of(&peer_key) != Ok(kind) {
        return Err(wrong_key);
    }
    let identity = proof.identity;
    if !signature::verify(&peer_key, kind, proof.hash_i, proof.signature_i) {
        return Err(Refusal {
            reason: FailureReason::SignatureInvalid {
                identity: identity.to_string(),
            },
            notify: notify_type::INVALID_SIGNATURE,
        });
    }
    if !certificate_proves(&verified.certificate, &identity.data) {
        return Err(Refusal {
            reason: FailureReason::IdentityNotInCertificate {
                identity: identity.to_string(),
                subject: verified.summary.subject.clone(),
            },
            notify: notify_type::INVALID_ID_INFORMATION,
        });
    }
    if !certs.remote_id.allows(&identity.data) {
        return Err(Refusal {
            reason: FailureReason::IdentityNotAllowed {
                identity: identity.to_string(),
            },
            notify: notify_type::AUTHENTICATION_FAILED,
        });
    }
    Ok(verified)
}
