//! Truncated HMAC integrity check values, shared by ESP (non-AEAD) and AH.

use crate::crypto::MacBox;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::Sha256;

use super::{ct_eq, SetupError};
use crate::sa::Integrity;

/// Longest ICV any supported integrity algorithm produces.
pub const MAX_ICV_LEN: usize = 16;

/// A keyed MAC over a list of byte ranges, truncated to the algorithm's ICV length.
pub trait IcvMac: Send + Sync {
    fn icv_len(&self) -> usize;
    /// Writes the truncated MAC of the concatenated `parts` into `out[..icv_len]`.
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]);
    /// Recomputes the MAC and compares in constant time.
    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let mut expected = [0u8; MAX_ICV_LEN];
        let n = self.icv_len();
        self.compute(parts, &mut expected[..n]);
        ct_eq(&expected[..n], icv)
    }
}

/// HMAC with its keyed inner/outer state computed once at install: each packet clones it.
struct TruncatedHmac<M> {
    keyed: M,
    icv_len: usize,
}

impl<M: Mac + Clone + Send + Sync> IcvMac for TruncatedHmac<M> {
    fn icv_len(&self) -> usize {
        self.icv_len
    }
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        out[..self.icv_len].copy_from_slice(&full[..self.icv_len]);
    }
}

/// No integrity (AEAD ciphers, or ESP-NULL without authentication in tests).
struct NoMac;

impl IcvMac for NoMac {
    fn icv_len(&self) -> usize {
        0
    }
    fn compute(&self, _parts: &[&[u8]], _out: &mut [u8]) {}
}

pub fn build_icv_mac(integrity: Integrity, key: &[u8]) -> Result<MacBox, SetupError> {
    if key.len() != integrity.key_len() {
        return Err(SetupError::KeyLength);
    }
    let icv_len = integrity.icv_len();
    Ok(match integrity {
        Integrity::None => super::mac_box(NoMac),
        Integrity::HmacMd5_96 => super::mac_box(TruncatedHmac {
            keyed: <Hmac<Md5> as Mac>::new_from_slice(key).map_err(|_| SetupError::KeyLength)?,
            icv_len,
        }),
        Integrity::HmacSha1_96 => super::mac_box(TruncatedHmac {
            keyed: <Hmac<Sha1> as Mac>::new_from_slice(key).map_err(|_| SetupError::KeyLength)?,
            icv_len,
        }),
        Integrity::HmacSha256_128 => super::mac_box(TruncatedHmac {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| SetupError::KeyLength)?,
            icv_len,
        }),
    })
}
