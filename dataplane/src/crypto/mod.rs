//! Crypto engines behind one small trait, chosen once per SA.
//!
//! An [`EspTransform`] owns the keyed state of one SA direction and transforms an ESP packet
//! (`SPI | seq | IV | payload+trailer | ICV`) in place. Which concrete engine backs an SA is
//! decided in [`build_esp_transform`] from the SA's algorithms and the [`Backend`] preference, so
//! the per-packet path never branches on configuration: it makes one indirect call.
//!
//! Engines (see `bench/src/bin/esp.rs` for the numbers that chose them):
//! - AES-GCM: intel-ipsec-mb (loaded at run time, VAES/AVX-512 where the CPU has it), else
//!   ring; RustCrypto `aes-gcm` as the pure-Rust engine that always builds.
//! - AES-CBC: RustCrypto block ciphers (runtime AES-NI detection) with a hand-rolled CBC
//!   that decrypts several blocks per call so AES-NI can pipeline.
//! - DES/3DES-CBC: OpenSSL's libcrypto (several times RustCrypto `des`); RustCrypto with
//!   `Backend::PureRust`.
//! - HMAC-MD5/SHA1/SHA256: RustCrypto `hmac` with the keyed inner/outer state precomputed once.

mod cbc_framing;
mod cbc_hmac;
mod gcm;
mod icv;
mod ipsec_mb;
mod iv;
mod null;
mod openssl_des;

pub use icv::{build_icv_mac, IcvMac};

use crate::tables::huge_slab::HugeBox;

/// An engine as an SA holds it: in huge-page memory (`tables::huge_slab`), since with many SAs
/// the page walks to scattered engines cost more than the cache misses.
pub type EngineBox = HugeBox<dyn EspTransform>;
/// An ICV engine as a transform or an AH SA holds it, likewise.
pub type MacBox = HugeBox<dyn IcvMac>;

pub(crate) fn engine_box<T: EspTransform + 'static>(engine: T) -> EngineBox {
    HugeBox::new(engine).unsize(|e| e as &mut dyn EspTransform)
}

pub(crate) fn mac_box<T: IcvMac + 'static>(mac: T) -> MacBox {
    HugeBox::new(mac).unsize(|m| m as &mut dyn IcvMac)
}
pub use ipsec_mb::active_arch as ipsec_mb_arch;

use crate::sa::{Cipher, Integrity};

/// Which implementation to prefer where more than one exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Backend {
    /// The fastest engine measured on this machine class: intel-ipsec-mb for GCM when the
    /// library is present, else ring; OpenSSL for DES and 3DES.
    #[default]
    Fastest,
    /// ring for GCM (what `Fastest` falls back to).
    Ring,
    /// RustCrypto only: no C or assembly outside Rust crates.
    PureRust,
}

/// Why an ESP payload could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CryptoError {
    #[error("integrity check failed")]
    Authentication,
    #[error("ciphertext is not a whole number of blocks")]
    BadLength,
}

/// Why an SA's crypto state could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SetupError {
    #[error("key material has the wrong length for the algorithm")]
    KeyLength,
    #[error("this cipher and integrity combination is not allowed")]
    Combination,
}

/// The per-SA crypto of ESP. `packet` always starts at the ESP header (whose SPI and sequence
/// number are filled) and ends after the ICV.
pub trait EspTransform: Send + Sync {
    /// Bytes of IV after the ESP header.
    fn iv_len(&self) -> usize;
    /// Alignment the payload plus trailer must reach (cipher block, at least 4).
    fn pad_align(&self) -> usize;
    fn icv_len(&self) -> usize;
    /// Writes the IV, encrypts the payload and writes the ICV. `seq_high` is the upper half of an
    /// extended sequence number, authenticated but not sent (RFC 4303 §2.2.1).
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>);
    /// Verifies the ICV, then decrypts the payload in place (IV and ICV bytes are left as is).
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError>;
    /// Starts loading the state a packet of `payload_len` bytes will touch (for SA tables too
    /// big for the cache); engines whose tables are read in part by short packets bring in
    /// only that part.
    fn prefetch(&self, _payload_len: usize) {}
    /// Seals several packets of one SA. Engines whose cipher is serial per packet (CBC)
    /// interleave the packets so independent blocks keep the AES unit busy.
    fn seal_burst(&self, jobs: &mut [SealJob<'_>]) {
        for job in jobs.iter_mut() {
            self.seal(job.packet, job.seq_high);
        }
    }
}

/// One packet of a [`EspTransform::seal_burst`] call (same layout as for `seal`).
pub struct SealJob<'a> {
    pub packet: &'a mut [u8],
    pub seq_high: Option<u32>,
}

/// Most packets one `seal_burst` interleaves (AES-NI pipelines eight blocks).
pub const SEAL_LANES: usize = 8;

/// Builds the engine for an ESP SA from its algorithms and raw keys.
pub fn build_esp_transform(
    cipher: Cipher,
    integrity: Integrity,
    encryption_key: &[u8],
    integrity_key: &[u8],
    backend: Backend,
) -> Result<EngineBox, SetupError> {
    if encryption_key.len() != cipher.key_len() || integrity_key.len() != integrity.key_len() {
        return Err(SetupError::KeyLength);
    }
    if cipher.is_aead() {
        if integrity != Integrity::None {
            return Err(SetupError::Combination);
        }
        return gcm::build(cipher, encryption_key, backend);
    }
    let mac = build_icv_mac(integrity, integrity_key)?;
    match cipher {
        Cipher::Null => Ok(engine_box(null::NullTransform::new(mac))),
        Cipher::DesCbc | Cipher::TripleDesCbc if backend != Backend::PureRust => {
            openssl_des::OpensslDesCbc::boxed(encryption_key, mac)
        }
        Cipher::DesCbc => cbc_hmac::CbcHmac::<des::Des>::boxed(encryption_key, mac),
        Cipher::TripleDesCbc => cbc_hmac::CbcHmac::<des::TdesEde3>::boxed(encryption_key, mac),
        Cipher::AesCbc128 => cbc_hmac::CbcHmac::<aes::Aes128>::boxed(encryption_key, mac),
        Cipher::AesCbc192 => cbc_hmac::CbcHmac::<aes::Aes192>::boxed(encryption_key, mac),
        Cipher::AesCbc256 => cbc_hmac::CbcHmac::<aes::Aes256>::boxed(encryption_key, mac),
        Cipher::AesGcm128 | Cipher::AesGcm256 => Err(SetupError::Combination),
    }
}

/// Constant-time equality, so ICV checks leak no prefix length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
