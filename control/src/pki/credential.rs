//! The gateway's own certificate and private key, read from the PEM files the configuration
//! names. The key stays inside OpenSSL's `EVP_PKEY` (freed with its memory cleared by OpenSSL)
//! and is never printed: `Debug` shows the certificate subject only.

use std::path::Path;

use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;

use super::error::PkiError;
use super::summary::dn_string;

/// The public-key algorithms dyntun signs and verifies IKEv1 Main Mode with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum KeyKind {
    /// RSA signatures (IKEv1 authentication method 3).
    Rsa,
    /// ECDSA with SHA-256 on P-256 (RFC 4754, method 9).
    EcdsaP256,
    /// ECDSA with SHA-384 on P-384 (method 10).
    EcdsaP384,
    /// ECDSA with SHA-512 on P-521 (method 11).
    EcdsaP521,
}

impl KeyKind {
    pub fn of<T: openssl::pkey::HasPublic>(
        key: &openssl::pkey::PKeyRef<T>,
    ) -> Result<KeyKind, String> {
        match key.id() {
            Id::RSA => Ok(KeyKind::Rsa),
            Id::EC => {
                let ec = key.ec_key().map_err(|e| e.to_string())?;
                match ec.group().curve_name() {
                    Some(openssl::nid::Nid::X9_62_PRIME256V1) => Ok(KeyKind::EcdsaP256),
                    Some(openssl::nid::Nid::SECP384R1) => Ok(KeyKind::EcdsaP384),
                    Some(openssl::nid::Nid::SECP521R1) => Ok(KeyKind::EcdsaP521),
                    other => Err(format!("EC curve {other:?} is not supported")),
                }
            }
            other => Err(format!("key type {other:?} is not supported")),
        }
    }
}

pub struct LocalCredential {
    /// The configuration's name for it (`security pki local-certificate NAME`).
    pub name: String,
    pub certificate: X509,
    /// Further certificates in the same PEM file (intermediate CAs), sent unless
    /// `no-certificate-chain-in-ike`.
    pub chain: Vec<X509>,
    pub kind: KeyKind,
    key: PKey<Private>,
}

impl std::fmt::Debug for LocalCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalCredential({}, {:?}, subject \"{}\", <private key>)",
            self.name,
            self.kind,
            dn_string(self.certificate.subject_name())
        )
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|e| PkiError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl LocalCredential {
    pub fn load(name: &str, certificate: &Path, key: &Path) -> Result<LocalCredential, PkiError> {
        let cert_pem = read(certificate)?;
        let mut key_pem = read(key)?;
        let result = Self::from_pem(
            name,
            &cert_pem,
            &key_pem,
            &certificate.display().to_string(),
            &key.display().to_string(),
        );
        zeroize::Zeroize::zeroize(&mut key_pem);
        result
    }

    /// `cert_label` and `key_label` name the sources in errors (file paths).
    pub fn from_pem(
        name: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_label: &str,
        key_label: &str,
    ) -> Result<LocalCredential, PkiError> {
        let mut certificates = X509::stack_from_pem(cert_pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| PkiError::NotPem {
                path: cert_label.to_string(),
                what: "certificate",
            })?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|_| PkiError::NotPem {
            path: key_label.to_string(),
            what: "private key",
        })?;
        let certificate = certificates.remove(0);
        let public = certificate
            .public_key()
            .map_err(|e| PkiError::UnsupportedKey {
                path: cert_label.to_string(),
                what: e.to_string(),
            })?;
        if !public.public_eq(&key) {
            return Err(PkiError::KeyDoesNotMatch {
                certificate: cert_label.to_string(),
                key: key_label.to_string(),
            });
        }
        let kind = KeyKind::of(&key).map_err(|what| PkiError::UnsupportedKey {
            path: key_label.to_string(),
            what,
        })?;
        Ok(LocalCredential {
            name: name.to_string(),
            certificate,
            chain: certificates,
            kind,
            key,
        })
    }

    /// The IKEv1 SIG payload body over `hash` (HASH_R).
    pub fn sign(&self, hash: &[u8]) -> Result<Vec<u8>, String> {
        super::signature::sign(&self.key, self.kind, hash)
    }
}
