//! What `show … ike security-associations detail` prints about a certificate: names and
//! validity, never key material.

use openssl::x509::{X509NameRef, X509Ref};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertificateSummary {
    pub fn of(certificate: &X509Ref) -> CertificateSummary {
        CertificateSummary {
            subject: dn_string(certificate.subject_name()),
            issuer: dn_string(certificate.issuer_name()),
            not_before: certificate.not_before().to_string(),
            not_after: certificate.not_after().to_string(),
        }
    }
}

/// `C=CH, O=strongSwan, CN=moon`: attributes in certificate order, short names.
pub fn dn_string(name: &X509NameRef) -> String {
    dn_pairs(name)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (attribute short name, value) in order; a value that is not text shows as `?`.
pub fn dn_pairs(name: &X509NameRef) -> Vec<(String, String)> {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?").to_string();
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            (key, value)
        })
        .collect()
}
