//! What the responder needs to authenticate with certificates: our credentials (one per key
//! kind, since both ends sign with the negotiated method), the trusted CAs, the `remote-id`
//! rules and the identity we present.

use std::net::IpAddr;

use super::auth_method::AuthMethod;
use super::identity::{Identity, IdentityData};
use super::numbers::notify_type;
use crate::pki::{KeyKind, LocalCredential, RemoteIdRules, TrustStore, VerifyFailure};

/// The identity we send in MM6 (`local-id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalIdentity {
    /// The local certificate's subject, as DER_ASN1_DN (the default).
    SubjectDn,
    Fqdn(String),
    UserFqdn(String),
    Address(IpAddr),
}

#[derive(Debug)]
pub struct CertificateAuth {
    pub credentials: Vec<LocalCredential>,
    pub trust: TrustStore,
    pub remote_id: RemoteIdRules,
    pub local_id: LocalIdentity,
    /// False with `no-certificate-chain-in-ike`: only the end-entity certificate is sent.
    pub send_chain: bool,
}

impl CertificateAuth {
    /// The signature methods we can answer: one per local key kind.
    pub fn methods(&self) -> Vec<AuthMethod> {
        let mut out = Vec::new();
        for c in &self.credentials {
            let m = AuthMethod::for_key(c.kind);
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    pub fn credential(&self, kind: KeyKind) -> Option<&LocalCredential> {
        self.credentials.iter().find(|c| c.kind == kind)
    }

    /// Our MM6 identity for `credential`.
    pub fn our_identity(&self, credential: &LocalCredential) -> Identity {
        let data = match &self.local_id {
            LocalIdentity::SubjectDn => IdentityData::DerAsn1Dn(
                credential
                    .certificate
                    .subject_name()
                    .to_der()
                    .unwrap_or_default(),
            ),
            LocalIdentity::Fqdn(name) => IdentityData::Fqdn(name.as_bytes().to_vec()),
            LocalIdentity::UserFqdn(name) => IdentityData::UserFqdn(name.as_bytes().to_vec()),
            LocalIdentity::Address(IpAddr::V4(a)) => IdentityData::Ipv4(*a),
            LocalIdentity::Address(IpAddr::V6(a)) => IdentityData::Ipv6(*a),
        };
        Identity {
            data,
            protocol: 0,
            port: 0,
        }
    }
}

/// The notification that tells the peer why its certificate was refused.
pub fn notify_for(failure: &VerifyFailure) -> u16 {
    match failure {
        VerifyFailure::BadEncoding => notify_type::INVALID_CERT_ENCODING,
        VerifyFailure::NoCertificate => notify_type::CERTIFICATE_UNAVAILABLE,
        VerifyFailure::UnknownCa { .. } => notify_type::INVALID_CERT_AUTHORITY,
        _ => notify_type::INVALID_CERTIFICATE,
    }
}
