//! AES-GCM-16 for ESP (RFC 4106): key followed by a 4-byte salt; nonce = salt || 8-byte explicit
//! IV; the explicit IV is the 64-bit sequence number, which never repeats within an SA.

use crate::crypto::EngineBox;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

use super::{Backend, CryptoError, EspTransform, SetupError};
use crate::sa::Cipher;
use crate::wire::esp::HEADER_LEN;

const SALT_LEN: usize = 4;
const IV_LEN: usize = 8;
const TAG_LEN: usize = 16;

pub fn build(
    cipher: Cipher,
    key_and_salt: &[u8],
    backend: Backend,
) -> Result<EngineBox, SetupError> {
    let (key, salt_bytes) = key_and_salt.split_at(key_and_salt.len() - SALT_LEN);
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(salt_bytes);
    if backend == Backend::Fastest {
        if let Some(engine) = super::ipsec_mb::engine(cipher, key, salt) {
            return engine;
        }
    }
    match (backend, cipher) {
        (Backend::Fastest | Backend::Ring, Cipher::AesGcm128) => {
            ring_engine(&AES_128_GCM, key, salt)
        }
        (Backend::Fastest | Backend::Ring, Cipher::AesGcm256) => {
            ring_engine(&AES_256_GCM, key, salt)
        }
        (Backend::PureRust, Cipher::AesGcm128) => Ok(super::engine_box(RustCryptoGcm {
            aead: Aes128Gcm::new_from_slice(key).map_err(|_| SetupError::KeyLength)?,
            salt,
        })),
        (Backend::PureRust, Cipher::AesGcm256) => Ok(super::engine_box(RustCryptoGcm {
            aead: Aes256Gcm::new_from_slice(key).map_err(|_| SetupError::KeyLength)?,
            salt,
        })),
        _ => Err(SetupError::Combination),
    }
}

fn ring_engine(
    alg: &'static ring::aead::Algorithm,
    key: &[u8],
    salt: [u8; SALT_LEN],
) -> Result<EngineBox, SetupError> {
    let unbound = UnboundKey::new(alg, key).map_err(|_| SetupError::KeyLength)?;
    Ok(super::engine_box(RingGcm {
        key: LessSafeKey::new(unbound),
        salt,
    }))
}

/// Nonce and AAD of one packet, from its clear ESP header.
fn nonce_and_aad(
    salt: &[u8; SALT_LEN],
    packet: &[u8],
    seq_high: Option<u32>,
) -> ([u8; 12], [u8; 12], usize) {
    let mut nonce = [0u8; 12];
    nonce[..SALT_LEN].copy_from_slice(salt);
    nonce[SALT_LEN..].copy_from_slice(&packet[HEADER_LEN..HEADER_LEN + IV_LEN]);
    let mut aad = [0u8; 12];
    aad[..4].copy_from_slice(&packet[..4]);
    let aad_len = match seq_high {
        // RFC 4106 §5: with ESN the AAD is SPI, high and low halves of the sequence number.
        Some(high) => {
            aad[4..8].copy_from_slice(&high.to_be_bytes());
            aad[8..12].copy_from_slice(&packet[4..8]);
            12
        }
        None => {
            aad[4..8].copy_from_slice(&packet[4..8]);
            8
        }
    };
    (nonce, aad, aad_len)
}

pub(super) fn write_iv(packet: &mut [u8], seq_high: Option<u32>) {
    let high = seq_high.unwrap_or(0);
    packet[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&high.to_be_bytes());
    let (head, rest) = packet.split_at_mut(HEADER_LEN);
    rest[4..8].copy_from_slice(&head[4..8]);
}

struct RingGcm {
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

impl EspTransform for RingGcm {
    fn iv_len(&self) -> usize {
        IV_LEN
    }
    fn pad_align(&self) -> usize {
        4
    }
    fn prefetch(&self, _payload_len: usize) {
        crate::esp::prefetch::prefetch_value(self);
    }
    fn icv_len(&self) -> usize {
        TAG_LEN
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        write_iv(packet, seq_high);
        let (nonce, aad, aad_len) = nonce_and_aad(&self.salt, packet, seq_high);
        let body_end = packet.len() - TAG_LEN;
        let body = &mut packet[HEADER_LEN + IV_LEN..body_end];
        // Sealing cannot fail for inputs under GCM's 64 GiB limit, which a packet always is.
        let Ok(tag) = self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad[..aad_len]),
            body,
        ) else {
            return;
        };
        packet[body_end..].copy_from_slice(tag.as_ref());
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        if packet.len() < HEADER_LEN + IV_LEN + TAG_LEN {
            return Err(CryptoError::BadLength);
        }
        let (nonce, aad, aad_len) = nonce_and_aad(&self.salt, packet, seq_high);
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..aad_len]),
                &mut packet[HEADER_LEN + IV_LEN..],
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}

struct RustCryptoGcm<A> {
    aead: A,
    salt: [u8; SALT_LEN],
}

impl<A: AeadInPlace<NonceSize = U12, TagSize = U16> + Send + Sync> EspTransform
    for RustCryptoGcm<A>
{
    fn iv_len(&self) -> usize {
        IV_LEN
    }
    fn pad_align(&self) -> usize {
        4
    }
    fn prefetch(&self, _payload_len: usize) {
        crate::esp::prefetch::prefetch_value(self);
    }
    fn icv_len(&self) -> usize {
        TAG_LEN
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        write_iv(packet, seq_high);
        let (nonce, aad, aad_len) = nonce_and_aad(&self.salt, packet, seq_high);
        let body_end = packet.len() - TAG_LEN;
        let body = &mut packet[HEADER_LEN + IV_LEN..body_end];
        let Ok(tag) = self.aead.encrypt_in_place_detached(
            GenericArray::from_slice(&nonce),
            &aad[..aad_len],
            body,
        ) else {
            return;
        };
        packet[body_end..].copy_from_slice(&tag);
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        if packet.len() < HEADER_LEN + IV_LEN + TAG_LEN {
            return Err(CryptoError::BadLength);
        }
        let (nonce, aad, aad_len) = nonce_and_aad(&self.salt, packet, seq_high);
        let body_end = packet.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&packet[body_end..]);
        self.aead
            .decrypt_in_place_detached(
                GenericArray::from_slice(&nonce),
                &aad[..aad_len],
                &mut packet[HEADER_LEN + IV_LEN..body_end],
                GenericArray::from_slice(&tag),
            )
            .map_err(|_| CryptoError::Authentication)
    }
}

impl Drop for RingGcm {
    fn drop(&mut self) {
        // ring keeps its key schedule private and offers no zeroization; the salt at least is ours.
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl<A> Drop for RustCryptoGcm<A> {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}
