//! Phase 1 authentication methods the responder can negotiate.

use hmac::{Hmac, Mac};

use super::crypto::HashAlg;
use super::numbers::p1;
use crate::pki::KeyKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AuthMethod {
    PreSharedKey,
    RsaSignature,
    /// RFC 4754 ECDSA-256 (SHA-256, P-256).
    EcdsaP256,
    /// RFC 4754 ECDSA-384 (SHA-384, P-384).
    EcdsaP384,
    /// RFC 4754 ECDSA-521 (SHA-512, P-521).
    EcdsaP521,
}

impl AuthMethod {
    pub fn from_number(n: u16) -> Option<AuthMethod> {
        match n {
            p1::AUTH_PSK => Some(AuthMethod::PreSharedKey),
            p1::AUTH_RSA_SIG => Some(AuthMethod::RsaSignature),
            p1::AUTH_ECDSA_256 => Some(AuthMethod::EcdsaP256),
            p1::AUTH_ECDSA_384 => Some(AuthMethod::EcdsaP384),
            p1::AUTH_ECDSA_521 => Some(AuthMethod::EcdsaP521),
            _ => None,
        }
    }

    pub fn number(self) -> u16 {
        match self {
            AuthMethod::PreSharedKey => p1::AUTH_PSK,
            AuthMethod::RsaSignature => p1::AUTH_RSA_SIG,
            AuthMethod::EcdsaP256 => p1::AUTH_ECDSA_256,
            AuthMethod::EcdsaP384 => p1::AUTH_ECDSA_384,
            AuthMethod::EcdsaP521 => p1::AUTH_ECDSA_521,
        }
    }

    /// The key kind both sides sign with; `None` for pre-shared keys.
    pub fn key_kind(self) -> Option<KeyKind> {
        match self {
            AuthMethod::PreSharedKey => None,
            AuthMethod::RsaSignature => Some(KeyKind::Rsa),
            AuthMethod::EcdsaP256 => Some(KeyKind::EcdsaP256),
            AuthMethod::EcdsaP384 => Some(KeyKind::EcdsaP384),
            AuthMethod::EcdsaP521 => Some(KeyKind::EcdsaP521),
        }
    }

    pub fn for_key(kind: KeyKind) -> AuthMethod {
        match kind {
            KeyKind::Rsa => AuthMethod::RsaSignature,
            KeyKind::EcdsaP256 => AuthMethod::EcdsaP256,
            KeyKind::EcdsaP384 => AuthMethod::EcdsaP384,
            KeyKind::EcdsaP521 => AuthMethod::EcdsaP521,
        }
    }

    /// HASH_I / HASH_R: the negotiated PRF keyed with SKEYID, except with ECDSA, where RFC 4754
    /// makes it HMAC with the curve's hash whatever phase 1 negotiated.
    pub fn authentication_hash(
        self,
        negotiated: HashAlg,
        skeyid: &[u8],
        parts: &[&[u8]],
    ) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes any key length");
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            AuthMethod::EcdsaP256 => HashAlg::Sha256.prf(skeyid, parts),
            AuthMethod::EcdsaP384 => run::<Hmac<sha2::Sha384>>(skeyid, parts),
            AuthMethod::EcdsaP521 => run::<Hmac<sha2::Sha512>>(skeyid, parts),
            AuthMethod::PreSharedKey | AuthMethod::RsaSignature => negotiated.prf(skeyid, parts),
        }
    }
}
