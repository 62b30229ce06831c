//! AES-GCM through intel-ipsec-mb (`libIPSec_MB.so.1`, present wherever DPDK's ipsec-mb crypto
//! driver is installed), loaded at run time so the crate builds and runs without it: when the
//! library or a usable CPU path is missing, [`gcm_functions`] returns `None` and the caller falls
//! back to ring.
//!
//! The library's per-architecture GCM entry points are called directly (one-shot encrypt and
//! decrypt), chosen once per process from the CPU's features: VAES+AVX-512, AVX2, or SSE.

use crate::crypto::EngineBox;
use std::sync::OnceLock;

use super::{ct_eq, CryptoError, EspTransform, SetupError};
use crate::sa::Cipher;
use crate::wire::esp::HEADER_LEN;

const LIBRARY: &str = "libIPSec_MB.so.1";
const SALT_LEN: usize = 4;
const IV_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// `sizeof(struct gcm_key_data)` in intel-ipsec-mb 1.x: 15 round keys of 16 bytes, then the
/// largest hash-key table (48 × 16 for VAES), rounded up to its 64-byte alignment.
const KEY_DATA_LEN: usize = 1024;
/// Written into the key data's padding before the library prepares it, checked after.
const PADDING_CANARY: u8 = 0xa5;
/// Payloads up to 16 blocks: the VAES code multiplies by HashKey^16 .. HashKey^1 only; longer
/// ones go through its 48-block loop, which starts from HashKey^48 at the front of the table.
const SHORT_PAYLOAD: usize = 16 * 16;
/// AVX2 and SSE layouts: round keys, then 8 powers and (SSE) their Karatsuba halves, 496 bytes.
const ASCENDING_KEYS_LEN: usize = 512;
/// `sizeof(struct gcm_context_data)`: 16+8+8+16+16+16+8.
const CONTEXT_LEN: usize = 88;

#[repr(C, align(64))]
struct GcmKeyData([u8; KEY_DATA_LEN]);

#[repr(C, align(64))]
struct GcmContext([u8; CONTEXT_LEN]);

type PreFn = unsafe extern "C" fn(key: *const u8, key_data: *mut GcmKeyData);
type EncDecFn = unsafe extern "C" fn(
    key_data: *const GcmKeyData,
    context: *mut GcmContext,
    out: *mut u8,
    input: *const u8,
    len: u64,
    iv: *const u8,
    aad: *const u8,
    aad_len: u64,
    tag: *mut u8,
    tag_len: u64,
);

/// The entry points for one key size.
#[derive(Clone, Copy)]
pub struct GcmFunctions {
    pre: PreFn,
    enc: EncDecFn,
    dec: EncDecFn,
    layout: HashKeyLayout,
}

/// Where the hash-key powers a packet needs sit in `gcm_key_data`, which depends on the CPU path
/// the library takes; the prefetch brings in those lines and no others.
#[derive(Clone, Copy)]
enum HashKeyLayout {
    /// VAES: HashKey^48 .. HashKey^1 in descending powers after the round keys.
    Descending48,
    /// AVX2 / SSE: HashKey^1 .. HashKey^8 (and their Karatsuba halves) after the round keys.
    Ascending8,
}

struct Loaded {
    /// Kept so the function pointers stay valid for the life of the process.
    _library: libloading::Library,
    gcm128: GcmFunctions,
    gcm256: GcmFunctions,
    arch: &'static str,
}

static LOADED: OnceLock<Option<Loaded>> = OnceLock::new();

fn cpu_arch() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("vaes")
            && std::is_x86_feature_detected!("vpclmulqdq")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            return Some("vaes_avx512");
        }
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("pclmulqdq")
        {
            return Some("avx_gen4");
        }
        if std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("pclmulqdq")
        {
            return Some("sse");
        }
    }
    None
}

fn load() -> Option<Loaded> {
    let arch = cpu_arch()?;
    // SAFETY: loading a system library whose initialisers have no preconditions.
    let library = unsafe { libloading::Library::new(LIBRARY) }.ok()?;
    let resolve = |bits: u32| -> Option<GcmFunctions> {
        // SAFETY: the symbols have the C signatures declared in intel-ipsec-mb.h
        // (aes_gcm_pre_t and aes_gcm_enc_dec_t); the pointers are copied out while `library`
        // lives in the same `Loaded` value and is never unloaded.
        unsafe {
            let pre = *library
                .get::<PreFn>(format!("aes_gcm_pre_{bits}_{arch}\0").as_bytes())
                .ok()?;
            let enc = *library
                .get::<EncDecFn>(format!("aes_gcm_enc_{bits}_{arch}\0").as_bytes())
                .ok()?;
            let dec = *library
                .get::<EncDecFn>(format!("aes_gcm_dec_{bits}_{arch}\0").as_bytes())
                .ok()?;
            let layout = if arch == "vaes_avx512" {
                HashKeyLayout::Descending48
            } else {
                HashKeyLayout::Ascending8
            };
            Some(GcmFunctions {
                pre,
                enc,
                dec,
                layout,
            })
        }
    };
    let gcm128 = resolve(128)?;
    let gcm256 = resolve(256)?;
    Some(Loaded {
        _library: library,
        gcm128,
        gcm256,
        arch,
    })
}

/// The intel-ipsec-mb GCM functions for `cipher`, or `None` when unavailable.
pub fn gcm_functions(cipher: Cipher) -> Option<GcmFunctions> {
    let loaded = LOADED.get_or_init(load).as_ref()?;
    match cipher {
        Cipher::AesGcm128 => Some(loaded.gcm128),
        Cipher::AesGcm256 => Some(loaded.gcm256),
        _ => None,
    }
}

/// The hash-key layout of the loaded library, read from a line every packet keeps hot.
#[inline]
fn loaded_layout() -> HashKeyLayout {
    LOADED
        .get()
        .and_then(Option::as_ref)
        .map_or(HashKeyLayout::Ascending8, |l| l.gcm128.layout)
}

/// Which CPU path of intel-ipsec-mb is in use (for `show` and the benchmark), if any.
pub fn active_arch() -> Option<&'static str> {
    LOADED.get_or_init(load).as_ref().map(|l| l.arch)
}

/// Bytes of `gcm_key_data` the library reads and writes: 15 round keys and 48 hash-key powers.
/// The rest, up to the structure's 64-byte alignment, is padding it never touches.
const KEY_DATA_USED: usize = 16 * 15 + 16 * 48;

/// The key data and nothing else: the salt lives in the structure's tail padding, on the line
/// that also holds HashKey^1, and the entry points come from the loaded library by key size.
/// A packet of up to 64 bytes then needs 5 or 6 cache lines of an SA's engine, where a separate
/// field would cost one more for every packet of a cold SA.
#[repr(C)]
pub struct IpsecMbGcm<const AES256: bool> {
    key_data: GcmKeyData,
}

/// An intel-ipsec-mb engine for `cipher` when the library is loaded and keeps to its layout.
pub fn engine(
    cipher: Cipher,
    key: &[u8],
    salt: [u8; SALT_LEN],
) -> Option<Result<EngineBox, SetupError>> {
    let functions = gcm_functions(cipher)?;
    match cipher {
        Cipher::AesGcm128 => {
            IpsecMbGcm::<false>::new(functions, key, salt).map(|e| e.map(super::engine_box))
        }
        Cipher::AesGcm256 => {
            IpsecMbGcm::<true>::new(functions, key, salt).map(|e| e.map(super::engine_box))
        }
        _ => None,
    }
}

impl<const AES256: bool> IpsecMbGcm<AES256> {
    const KEY_LEN: usize = if AES256 { 32 } else { 16 };
    /// Round keys in use: 11 for AES-128, 15 for AES-256.
    const ROUND_KEYS_USED: usize = if AES256 { 15 * 16 } else { 11 * 16 };

    /// `None` when the library wrote past the bytes its layout declares (the salt would not be
    /// safe in the padding): the caller takes another engine.
    fn new(
        functions: GcmFunctions,
        key: &[u8],
        salt: [u8; SALT_LEN],
    ) -> Option<Result<Self, SetupError>> {
        if key.len() != Self::KEY_LEN {
            return Some(Err(SetupError::KeyLength));
        }
        let mut key_data = GcmKeyData([0; KEY_DATA_LEN]);
        key_data.0[KEY_DATA_USED..].fill(PADDING_CANARY);
        // SAFETY: `key` holds the key size this function expects (checked above) and
        // `key_data` is a writable, 64-byte aligned gcm_key_data.
        unsafe { (functions.pre)(key.as_ptr(), &mut key_data) };
        if key_data.0[KEY_DATA_USED..]
            .iter()
            .any(|b| *b != PADDING_CANARY)
        {
            zeroize::Zeroize::zeroize(&mut key_data.0[..]);
            return None;
        }
        key_data.0[KEY_DATA_USED..KEY_DATA_USED + SALT_LEN].copy_from_slice(&salt);
        Some(Ok(IpsecMbGcm { key_data }))
    }

    fn salt(&self) -> &[u8] {
        &self.key_data.0[KEY_DATA_USED..KEY_DATA_USED + SALT_LEN]
    }

    fn functions() -> GcmFunctions {
        let loaded = LOADED
            .get()
            .and_then(Option::as_ref)
            .expect("an engine exists only once the library is loaded");
        if AES256 {
            loaded.gcm256
        } else {
            loaded.gcm128
        }
    }

    fn nonce_and_aad(&self, packet: &[u8], seq_high: Option<u32>) -> ([u8; 12], [u8; 12], usize) {
        let mut nonce = [0u8; 12];
        nonce[..SALT_LEN].copy_from_slice(self.salt());
        nonce[SALT_LEN..].copy_from_slice(&packet[HEADER_LEN..HEADER_LEN + IV_LEN]);
        let mut aad = [0u8; 12];
        aad[..4].copy_from_slice(&packet[..4]);
        match seq_high {
            Some(high) => {
                aad[4..8].copy_from_slice(&high.to_be_bytes());
                aad[8..12].copy_from_slice(&packet[4..8]);
                (nonce, aad, 12)
            }
            None => {
                aad[4..8].copy_from_slice(&packet[4..8]);
                (nonce, aad, 8)
            }
        }
    }

    /// Runs `f` (enc or dec) in place over the payload; writes the computed tag into `tag`.
    fn run(&self, f: EncDecFn, packet: &mut [u8], seq_high: Option<u32>, tag: &mut [u8; TAG_LEN]) {
        let (nonce, aad, aad_len) = self.nonce_and_aad(packet, seq_high);
        let body = &mut packet[HEADER_LEN + IV_LEN..];
        let body_len = body.len() - TAG_LEN;
        let mut context = GcmContext([0; CONTEXT_LEN]);
        // SAFETY: key data was prepared by the matching `pre`; input and output are the same
        // valid `body_len` bytes (in place is supported); nonce is 12 bytes, AAD `aad_len`
        // bytes, the tag buffer 16 bytes; the context is a writable gcm_context_data.
        unsafe {
            f(
                &self.key_data,
                &mut context,
                body.as_mut_ptr(),
                body.as_ptr(),
                body_len as u64,
                nonce.as_ptr(),
                aad.as_ptr(),
                aad_len as u64,
                tag.as_mut_ptr(),
                TAG_LEN as u64,
            )
        };
    }
}

impl<const AES256: bool> EspTransform for IpsecMbGcm<AES256> {
    fn iv_len(&self) -> usize {
        IV_LEN
    }
    fn pad_align(&self) -> usize {
        4
    }
    fn icv_len(&self) -> usize {
        TAG_LEN
    }
    fn prefetch(&self, payload_len: usize) {
        use crate::esp::prefetch::prefetch_bytes;
        let base = self as *const Self as *const u8;
        prefetch_bytes(base, Self::ROUND_KEYS_USED);
        match loaded_layout() {
            // Up to 16 blocks the VAES code multiplies by HashKey^n .. HashKey^1, n the block
            // count, which sit at the end of the table (next to the salt): a 64-byte packet
            // needs 2 of its lines. A longer one reads from HashKey^48 on, and a demand miss
            // there stalled a 1420 B seal for hundreds of nanoseconds with 100k SAs (perf
            // annotate): it gets every line.
            HashKeyLayout::Descending48 if payload_len <= SHORT_PAYLOAD => {
                let powers = payload_len.div_ceil(16) + 1;
                let first = KEY_DATA_USED - 16 * powers;
                prefetch_bytes(base.wrapping_add(first), KEY_DATA_LEN - first);
            }
            HashKeyLayout::Descending48 => prefetch_bytes(base, KEY_DATA_LEN),
            HashKeyLayout::Ascending8 => {
                prefetch_bytes(base, ASCENDING_KEYS_LEN);
                prefetch_bytes(base.wrapping_add(KEY_DATA_USED), SALT_LEN);
            }
        }
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        super::gcm::write_iv(packet, seq_high);
        let mut tag = [0u8; TAG_LEN];
        self.run(Self::functions().enc, packet, seq_high, &mut tag);
        let at = packet.len() - TAG_LEN;
        packet[at..].copy_from_slice(&tag);
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        if packet.len() < HEADER_LEN + IV_LEN + TAG_LEN {
            return Err(CryptoError::BadLength);
        }
        let mut tag = [0u8; TAG_LEN];
        self.run(Self::functions().dec, packet, seq_high, &mut tag);
        if ct_eq(&tag, &packet[packet.len() - TAG_LEN..]) {
            Ok(())
        } else {
            Err(CryptoError::Authentication)
        }
    }
}

impl<const AES256: bool> Drop for IpsecMbGcm<AES256> {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_data.0[..]);
    }
}
