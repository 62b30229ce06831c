//! What can go wrong loading PKI files (configuration time) and verifying a peer (IKE time).

use std::fmt;

/// A file the configuration names could not be used; the message names the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PkiError {
    Unreadable { path: String, reason: String },
    NotPem { path: String, what: &'static str },
    KeyDoesNotMatch { certificate: String, key: String },
    UnsupportedKey { path: String, what: String },
    Store(String),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::Unreadable { path, reason } => write!(f, "cannot read {path}: {reason}"),
            PkiError::NotPem { path, what } => write!(f, "{path} is not a PEM {what}"),
            PkiError::KeyDoesNotMatch { certificate, key } => {
                write!(
                    f,
                    "private key {key} does not match certificate {certificate}"
                )
            }
            PkiError::UnsupportedKey { path, what } => {
                write!(
                    f,
                    "{path}: {what} (RSA or ECDSA P-256/P-384/P-521 keys only)"
                )
            }
            PkiError::Store(reason) => write!(f, "certificate store: {reason}"),
        }
    }
}

impl std::error::Error for PkiError {}

/// Why a peer's certificate chain or identity was refused; each maps to one IKE notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The CERT payload is not a DER X.509 certificate.
    BadEncoding,
    NoCertificate,
    Expired {
        subject: String,
        not_after: String,
    },
    NotYetValid {
        subject: String,
        not_before: String,
    },
    UnknownCa {
        issuer: String,
    },
    Revoked {
        subject: String,
    },
    /// keyUsage present without digitalSignature / nonRepudiation, or a CA without keyCertSign.
    KeyUsage {
        subject: String,
    },
    /// Anything else OpenSSL's chain verification reports (basic constraints, bad CA signature…).
    Chain {
        reason: String,
    },
    /// The key in the certificate cannot sign with the negotiated method.
    WrongKeyType,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::BadEncoding => f.write_str("certificate is not DER X.509"),
            VerifyFailure::NoCertificate => f.write_str("no certificate received"),
            VerifyFailure::Expired { subject, not_after } => {
                write!(f, "certificate \"{subject}\" expired on {not_after}")
            }
            VerifyFailure::NotYetValid {
                subject,
                not_before,
            } => write!(f, "certificate \"{subject}\" not valid before {not_before}"),
            VerifyFailure::UnknownCa { issuer } => {
                write!(f, "issuer \"{issuer}\" is not a trusted CA")
            }
            VerifyFailure::Revoked { subject } => write!(f, "certificate \"{subject}\" revoked"),
            VerifyFailure::KeyUsage { subject } => {
                write!(f, "certificate \"{subject}\" key usage forbids signing")
            }
            VerifyFailure::Chain { reason } => write!(f, "chain invalid: {reason}"),
            VerifyFailure::WrongKeyType => {
                f.write_str("certificate key does not fit the authentication method")
            }
        }
    }
}
