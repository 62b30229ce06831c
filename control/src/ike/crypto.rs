//! The ISAKMP hash/PRF and the CBC ciphers that protect phase 1 and phase 2 messages.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};

use super::secret::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
}

impl HashAlg {
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }

    /// HMAC over the concatenation of `parts`: the negotiated PRF (RFC 2409 uses HMAC of the hash).
    pub fn prf(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            HashAlg::Md5 => run::<Hmac<md5::Md5>>(key, parts),
            HashAlg::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
            HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        }
    }

    pub fn prf_secret(self, key: &Secret, parts: &[&[u8]]) -> Secret {
        Secret::new(self.prf(key.expose(), parts))
    }

    /// Plain hash: IVs and NAT-D use it rather than the PRF.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::Digest;
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            HashAlg::Md5 => run::<md5::Md5>(parts),
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum IkeCipher {
    DesCbc,
    TripleDesCbc,
    AesCbc { key_bits: u16 },
}

impl IkeCipher {
    pub fn key_len(self) -> usize {
        match self {
            IkeCipher::DesCbc => 8,
            IkeCipher::TripleDesCbc => 24,
            IkeCipher::AesCbc { key_bits } => usize::from(key_bits) / 8,
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            IkeCipher::DesCbc | IkeCipher::TripleDesCbc => 8,
            IkeCipher::AesCbc { .. } => 16,
        }
    }

    /// Encrypts whole blocks in place; the caller pads.
    pub fn encrypt(self, key: &Secret, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        if !data.len().is_multiple_of(self.block_len()) {
            return Err(CipherError::NotBlockAligned);
        }
        let n = data.len();
        let k = key.expose();
        macro_rules! enc {
            ($c:ty) => {
                cbc::Encryptor::<$c>::new_from_slices(k, iv)
                    .map_err(|_| CipherError::BadKey)?
                    .encrypt_padded_mut::<NoPadding>(data, n)
                    .map(|_| ())
                    .map_err(|_| CipherError::NotBlockAligned)
            };
        }
        match self {
            IkeCipher::DesCbc => enc!(des::Des),
            IkeCipher::TripleDesCbc => enc!(des::TdesEde3),
            IkeCipher::AesCbc { key_bits: 128 } => enc!(aes::Aes128),
            IkeCipher::AesCbc { key_bits: 192 } => enc!(aes::Aes192),
            IkeCipher::AesCbc { key_bits: 256 } => enc!(aes::Aes256),
            IkeCipher::AesCbc { .. } => Err(CipherError::BadKey),
        }
    }

    pub fn decrypt(self, key: &Secret, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        if data.is_empty() || !data.len().is_multiple_of(self.block_len()) {
            return Err(CipherError::NotBlockAligned);
        }
        let k = key.expose();
        macro_rules! dec {
            ($c:ty) => {
                cbc::Decryptor::<$c>::new_from_slices(k, iv)
                    .map_err(|_| CipherError::BadKey)?
                    .decrypt_padded_mut::<NoPadding>(data)
                    .map(|_| ())
                    .map_err(|_| CipherError::NotBlockAligned)
            };
        }
        match self {
            IkeCipher::DesCbc => dec!(des::Des),
            IkeCipher::TripleDesCbc => dec!(des::TdesEde3),
            IkeCipher::AesCbc { key_bits: 128 } => dec!(aes::Aes128),
            IkeCipher::AesCbc { key_bits: 192 } => dec!(aes::Aes192),
            IkeCipher::AesCbc { key_bits: 256 } => dec!(aes::Aes256),
            IkeCipher::AesCbc { .. } => Err(CipherError::BadKey),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("ciphertext is not a whole number of blocks")]
    NotBlockAligned,
    #[error("key or IV has the wrong length")]
    BadKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_matches_rfc2202_case_2() {
        let out = HashAlg::Sha1.prf(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&out), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let md5 = HashAlg::Md5.prf(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex(&md5), "750c783e6ab0b503eaa86e310a5db738");
    }

    #[test]
    fn cbc_round_trips_for_every_cipher() {
        for c in [
            IkeCipher::DesCbc,
            IkeCipher::TripleDesCbc,
            IkeCipher::AesCbc { key_bits: 128 },
            IkeCipher::AesCbc { key_bits: 192 },
            IkeCipher::AesCbc { key_bits: 256 },
        ] {
            let key = Secret::new((0..c.key_len() as u8).collect());
            let iv = vec![3u8; c.block_len()];
            let plain: Vec<u8> = (0..48u8).collect();
            let mut data = plain.clone();
            c.encrypt(&key, &iv, &mut data).unwrap();
            assert_ne!(data, plain);
            c.decrypt(&key, &iv, &mut data).unwrap();
            assert_eq!(data, plain);
            assert_eq!(
                c.decrypt(&key, &iv, &mut [0u8; 5]),
                Err(CipherError::NotBlockAligned)
            );
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
