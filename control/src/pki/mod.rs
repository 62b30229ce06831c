//! Certificates for IKE signature authentication: the gateway's own certificate and private key
//! (`credential`), the CA profiles peers are checked against (`trust`), the IKEv1 signature
//! encodings (`signature`), and whether an identity is proven by a certificate and allowed by a
//! policy's `remote-id` (`identity_match`). X.509 parsing, chain building and the signature
//! primitives are OpenSSL's; nothing here parses ASN.1 by hand.

pub mod credential;
pub mod error;
pub mod identity_match;
pub mod signature;
pub mod summary;
pub mod trust;

pub use credential::{KeyKind, LocalCredential};
pub use error::{PkiError, VerifyFailure};
pub use identity_match::{RemoteIdRule, RemoteIdRules};
pub use summary::CertificateSummary;
pub use trust::{CaProfile, TrustStore};
