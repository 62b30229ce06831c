//! Main Mode MM5/MM6 with signatures (RFC 2409 section 5.1; RFC 4754 for ECDSA): the peer's
//! certificate chain is verified against the trusted CAs, its ID must be proven by the
//! certificate and allowed by `remote-id`, and SIG_I must verify; we answer with our ID, our
//! certificate (and chain) and SIG_R. Every refusal is one failure line plus the notify that
//! names it, answered again to retransmissions.

use std::time::Instant;

use dataplane::sa::PeerEndpoint;

use super::auth_method::AuthMethod;
use super::certificate_auth::notify_for;
use super::events::{FailureReason, IkeSaId};
use super::header::Header;
use super::identity::Identity;
use super::main_mode::MM;
use super::notify::Notify;
use super::numbers::{cert_encoding, exchange, notify_type, protocol};
use super::payload::Payload;
use super::protection::{open_or_fail, seal};
use super::responder::Responder;
use crate::pki::identity_match::certificate_proves;
use crate::pki::{signature, CertificateSummary, VerifyFailure};

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

    pub(super) fn main_mode_auth_signature(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let Some(certs) = self.policy.certificates.clone() else {
            return self.fail(remote, MM, FailureReason::NoLocalCertificate);
        };
        let sa = self.sas.get(&id).expect("looked up by caller");
        let method = sa.choice.auth;
        let Some(kind) = method.key_kind() else {
            return self.fail(remote, MM, FailureReason::WrongState);
        };
        let keys = sa.keys.as_ref().expect("keys exist after MM3");
        let opened = match open_or_fail(keys, &sa.iv, header, bytes) {
            Ok(o) => o,
            Err(reason) => return self.fail(remote, MM, reason),
        };
        let chain = &opened.chain;
        let last_block = opened.last_block.clone();
        let mut identity_index = None;
        let mut signature_i = None;
        let mut certificates: Vec<Vec<u8>> = Vec::new();
        let mut other_encoding = false;
        let mut initial_contact = false;
        for (i, p) in chain.iter().enumerate() {
            match p {
                Payload::Identification(_) => identity_index = Some(i),
                Payload::Signature(s) => signature_i = Some(s.clone()),
                Payload::Certificate { encoding, data } => {
                    if *encoding == cert_encoding::X509_SIGNATURE {
                        certificates.push(data.clone());
                    } else {
                        other_encoding = true;
                    }
                }
                Payload::Notify(n) if n.message_type == notify_type::INITIAL_CONTACT => {
                    initial_contact = true
                }
                _ => {}
            }
        }
        let (Some(identity_index), Some(signature_i)) = (identity_index, signature_i) else {
            return self.fail(remote, MM, FailureReason::MissingPayload("ID or SIG"));
        };
        let Payload::Identification(identity) = &chain.payloads[identity_index].payload else {
            return;
        };
        let identity = identity.clone();
        let id_body_i = chain.raw_body(identity_index).to_vec();
        let Some((leaf, intermediates)) = certificates.split_first() else {
            let failure = if other_encoding {
                VerifyFailure::BadEncoding
            } else {
                VerifyFailure::NoCertificate
            };
            let notify = notify_for(&failure);
            let reason = FailureReason::CertificateRefused(failure);
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        };
        let verified = match certs.trust.verify(leaf, intermediates) {
            Ok(v) => v,
            Err(failure) => {
                let notify = notify_for(&failure);
                let reason = FailureReason::CertificateRefused(failure);
                return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
            }
        };
        let Ok(peer_key) = verified.certificate.public_key() else {
            let failure = VerifyFailure::WrongKeyType;
            let reason = FailureReason::CertificateRefused(failure);
            let notify = notify_type::INVALID_CERTIFICATE;
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        };
        if crate::pki::KeyKind::of(&peer_key) != Ok(kind) {
            let reason = FailureReason::CertificateRefused(VerifyFailure::WrongKeyType);
            let notify = notify_type::INVALID_CERTIFICATE;
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        }
        let sa = self.sas.get(&id).expect("looked up by caller");
        let keys = sa.keys.as_ref().expect("keys exist after MM3");
        let public_r = sa
            .dh
            .as_ref()
            .map(|d| d.public().to_vec())
            .unwrap_or_default();
        let hash_i = method.authentication_hash(
            keys.hash,
            keys.skeyid.expose(),
            &[
                &sa.public_i,
                &public_r,
                &sa.cookie_i,
                &sa.cookie_r,
                &sa.sa_i_body,
                &id_body_i,
            ],
        );
        if !signature::verify(&peer_key, kind, &hash_i, &signature_i) {
            let reason = FailureReason::SignatureInvalid {
                identity: identity.to_string(),
            };
            let notify = notify_type::INVALID_SIGNATURE;
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        }
        if !certificate_proves(&verified.certificate, &identity.data) {
            let reason = FailureReason::IdentityNotInCertificate {
                identity: identity.to_string(),
                subject: verified.summary.subject.clone(),
            };
            let notify = notify_type::INVALID_ID_INFORMATION;
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        }
        if !certs.remote_id.allows(&identity.data) {
            let reason = FailureReason::IdentityNotAllowed {
                identity: identity.to_string(),
            };
            let notify = notify_type::AUTHENTICATION_FAILED;
            return self.refuse_phase1(id, endpoint, bytes, &last_block, reason, notify);
        }
        // Authenticated: answer with our identity, certificate(s) and SIG_R.
        let Some(credential) = certs.credential(kind) else {
            return self.fail(remote, MM, FailureReason::NoLocalCertificate);
        };
        let our_identity: Identity = certs.our_identity(credential);
        let mut id_body_r = Vec::new();
        our_identity.write(&mut id_body_r);
        let hash_r = method.authentication_hash(
            keys.hash,
            keys.skeyid.expose(),
            &[
                &public_r,
                &sa.public_i,
                &sa.cookie_r,
                &sa.cookie_i,
                &sa.sa_i_body,
                &id_body_r,
            ],
        );
        let Ok(signature_r) = credential.sign(&hash_r) else {
            return self.fail(remote, MM, FailureReason::NoLocalCertificate);
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
        let reply_header = Header {
            initiator_cookie: sa.cookie_i,
            responder_cookie: sa.cookie_r,
            next_payload: 0,
            exchange: exchange::IDENTITY_PROTECTION,
            flags: 0,
            message_id: 0,
            length: 0,
        };
        let Ok(sealed) = seal(keys, &opened.last_block, reply_header, &payloads) else {
            return self.fail(remote, MM, FailureReason::WrongState);
        };
        let local_summary = CertificateSummary::of(&credential.certificate);
        tracing::info!(
            peer = %remote,
            identity = %identity,
            subject = %verified.summary.subject,
            issuer = %verified.summary.issuer,
            ca_profile = %verified.ca_profile,
            method = ?method,
            "peer certificate verified"
        );
        let sa = self.sas.get_mut(&id).expect("looked up by caller");
        sa.peer_certificate = Some(verified.summary);
        sa.local_certificate = Some(local_summary);
        self.phase1_established(
            now,
            id,
            endpoint,
            header,
            bytes,
            sealed,
            identity,
            initial_contact,
        );
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
        reason: FailureReason,
        notify: u16,
    ) {
        self.fail(endpoint.remote, MM, reason);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.phase1_last_block = mm5_last_block.to_vec();
        let spi = [sa.cookie_i, sa.cookie_r].concat();
        let payload = Payload::Notify(Notify::new(protocol::ISAKMP, notify, spi, Vec::new()));
        let Some((_, message)) = self.protected_informational(id, vec![payload]) else {
            return;
        };
        let sa = self.sas.get_mut(&id).expect("present above");
        sa.last_request = bytes.to_vec();
        sa.last_reply = Some(message.clone());
        self.send(endpoint, &message);
    }
}
