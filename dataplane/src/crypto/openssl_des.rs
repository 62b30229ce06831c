//! DES-CBC (RFC 2405) and 3DES-CBC (RFC 2451) through the system's OpenSSL libcrypto, followed
//! by the SA's truncated HMAC (encrypt-then-MAC, as in `cbc_hmac`).
//!
//! RustCrypto's `des` runs at under 10 MB/s; OpenSSL's DES code is several times faster (see
//! `bench/src/bin/esp.rs`, "CBC engines"). The block functions are used directly rather than
//! through EVP: they take the key schedules and a caller-owned IV, so the engine keeps no
//! per-call state and needs neither a mutable cipher context per SA (which `&self` sealing
//! could not offer without a lock) nor an allocation per packet.

use crate::crypto::{EngineBox, MacBox};
use std::os::raw::{c_int, c_long};

use zeroize::Zeroize;

use super::cbc_framing;
use super::iv::IvGenerator;
use super::{CryptoError, EspTransform, SetupError};

const BLOCK: usize = 8;
const DES_ENCRYPT: c_int = 1;
const DES_DECRYPT: c_int = 0;

/// OpenSSL's `DES_key_schedule`: 16 rounds of two 32-bit subkey words. Not `Copy`, so the
/// subkeys live only in the one heap allocation that zeroizes them on drop.
#[repr(C)]
struct KeySchedule([u32; 32]);

/// Up to three schedules (one for DES, K1 | K2 | K3 for 3DES), zeroized on drop.
struct Schedules([KeySchedule; 3]);

impl Drop for Schedules {
    fn drop(&mut self) {
        for schedule in &mut self.0 {
            schedule.0.zeroize();
        }
    }
}

/// CBC over whole blocks in place with the given schedules, chaining from `chain`.
type CbcFn = fn(&Schedules, &mut [u8; BLOCK], &mut [u8], c_int);

#[link(name = "crypto")]
extern "C" {
    fn DES_set_key_unchecked(key: *const [u8; BLOCK], schedule: *mut KeySchedule);
    // The schedules are declared mutable in the C prototypes but only read.
    fn DES_ncbc_encrypt(
        input: *const u8,
        output: *mut u8,
        length: c_long,
        schedule: *mut KeySchedule,
        ivec: *mut [u8; BLOCK],
        enc: c_int,
    );
    fn DES_ede3_cbc_encrypt(
        input: *const u8,
        output: *mut u8,
        length: c_long,
        ks1: *mut KeySchedule,
        ks2: *mut KeySchedule,
        ks3: *mut KeySchedule,
        ivec: *mut [u8; BLOCK],
        enc: c_int,
    );
}

pub struct OpensslDesCbc {
    /// Boxed so the schedules are built in place and never copied around by value.
    schedules: Box<Schedules>,
    /// Single DES or EDE3, fixed per SA so the packet path does not branch on it.
    cbc_fn: CbcFn,
    mac: MacBox,
    ivs: IvGenerator,
}

/// The schedules are only read by OpenSSL, but its prototypes take them mutable.
fn schedule_ptr(schedules: &Schedules, index: usize) -> *mut KeySchedule {
    &schedules.0[index] as *const KeySchedule as *mut KeySchedule
}

fn single_des_cbc(schedules: &Schedules, chain: &mut [u8; BLOCK], data: &mut [u8], enc: c_int) {
    let ptr = data.as_mut_ptr();
    // SAFETY: input and output are the same live buffer of `data.len()` bytes (OpenSSL's CBC
    // reads each block before writing it, so in place is supported); the schedule is only
    // read; `chain` is a caller-owned IV the call may update.
    unsafe {
        DES_ncbc_encrypt(
            ptr,
            ptr,
            data.len() as c_long,
            schedule_ptr(schedules, 0),
            chain,
            enc,
        )
    };
}

fn triple_des_cbc(schedules: &Schedules, chain: &mut [u8; BLOCK], data: &mut [u8], enc: c_int) {
    let ptr = data.as_mut_ptr();
    // SAFETY: as in `single_des_cbc`, with three read-only schedules.
    unsafe {
        DES_ede3_cbc_encrypt(
            ptr,
            ptr,
            data.len() as c_long,
            schedule_ptr(schedules, 0),
            schedule_ptr(schedules, 1),
            schedule_ptr(schedules, 2),
            chain,
            enc,
        )
    };
}

impl OpensslDesCbc {
    /// `key` is 8 bytes (DES) or 24 bytes (3DES, K1 | K2 | K3).
    pub fn boxed(key: &[u8], mac: MacBox) -> Result<EngineBox, SetupError> {
        Ok(super::engine_box(Self::new(key, mac)?))
    }

    fn new(key: &[u8], mac: MacBox) -> Result<Self, SetupError> {
        let cbc_fn: CbcFn = match key.len() {
            8 => single_des_cbc,
            24 => triple_des_cbc,
            _ => return Err(SetupError::KeyLength),
        };
        let mut schedules = Box::new(Schedules([
            KeySchedule([0; 32]),
            KeySchedule([0; 32]),
            KeySchedule([0; 32]),
        ]));
        for (schedule, part) in schedules.0.iter_mut().zip(key.chunks_exact(BLOCK)) {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(part);
            // SAFETY: `block` is a live local and `schedule` points into the live heap
            // allocation; both are correctly sized.
            unsafe { DES_set_key_unchecked(&block, schedule) };
            block.zeroize();
        }
        Ok(OpensslDesCbc {
            schedules,
            cbc_fn,
            mac,
            ivs: IvGenerator::new(),
        })
    }

    /// CBC over `data` (whole blocks) in place, starting from `iv`.
    fn cbc(&self, iv: [u8; BLOCK], data: &mut [u8], enc: c_int) {
        debug_assert!(data.len().is_multiple_of(BLOCK));
        let mut chain = iv;
        (self.cbc_fn)(&self.schedules, &mut chain, data, enc);
    }
}

impl EspTransform for OpensslDesCbc {
    fn iv_len(&self) -> usize {
        BLOCK
    }
    fn pad_align(&self) -> usize {
        BLOCK
    }
    fn icv_len(&self) -> usize {
        self.mac.icv_len()
    }
    fn prefetch(&self, _payload_len: usize) {
        crate::esp::prefetch::prefetch_value(self);
        crate::esp::prefetch::prefetch_value(&*self.mac);
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        cbc_framing::seal(
            packet,
            seq_high,
            BLOCK,
            &self.ivs,
            &*self.mac,
            |iv, body| {
                let mut chain = [0u8; BLOCK];
                chain.copy_from_slice(iv);
                // The framing padded the body to whole blocks; a shorter tail would stay in clear.
                let whole = body.len() / BLOCK * BLOCK;
                self.cbc(chain, &mut body[..whole], DES_ENCRYPT);
            },
        );
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        cbc_framing::open(packet, seq_high, BLOCK, &*self.mac, |iv, body| {
            let mut chain = [0u8; BLOCK];
            chain.copy_from_slice(iv);
            self.cbc(chain, body, DES_DECRYPT);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::build_icv_mac;
    use crate::sa::Integrity;
    use crate::wire::esp::HEADER_LEN;

    fn engines(key: &[u8]) -> (EngineBox, EngineBox) {
        let mac_key = [0x5au8; 16];
        let mac = || build_icv_mac(Integrity::HmacMd5_96, &mac_key).unwrap();
        let openssl = OpensslDesCbc::boxed(key, mac()).unwrap();
        let rust: EngineBox = if key.len() == 24 {
            super::super::cbc_hmac::CbcHmac::<des::TdesEde3>::boxed(key, mac()).unwrap()
        } else {
            super::super::cbc_hmac::CbcHmac::<des::Des>::boxed(key, mac()).unwrap()
        };
        (openssl, rust)
    }

    /// ESP header, IV room, `blocks` payload blocks, 12-byte ICV room.
    fn packet(blocks: usize) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN + BLOCK + blocks * BLOCK + 12];
        p[..8].copy_from_slice(&[0, 0, 0x12, 0x34, 0, 0, 0, 7]);
        for (i, b) in p[HEADER_LEN + BLOCK..].iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        p
    }

    #[test]
    fn each_engine_opens_what_the_other_sealed() {
        let key: Vec<u8> = (0..24u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        for key in [&key[..], &key[..8]] {
            let (openssl, rust) = engines(key);
            for blocks in [1, 2, 9, 180] {
                let clear = packet(blocks);
                for (sealer, opener) in [(&openssl, &rust), (&rust, &openssl)] {
                    let mut p = clear.clone();
                    sealer.seal(&mut p, None);
                    assert_ne!(p[16..p.len() - 12], clear[16..clear.len() - 12]);
                    opener.open(&mut p, None).unwrap();
                    assert_eq!(p[16..p.len() - 12], clear[16..clear.len() - 12]);
                }
            }
        }
    }

    #[test]
    fn a_flipped_ciphertext_bit_fails_authentication_and_bad_lengths_are_refused() {
        let (openssl, _) = engines(&[7u8; 24]);
        let mut p = packet(4);
        openssl.seal(&mut p, Some(3));
        let mut tampered = p.clone();
        tampered[20] ^= 1;
        assert_eq!(
            openssl.open(&mut tampered, Some(3)),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            openssl.open(&mut p.clone(), Some(4)),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            openssl.open(&mut p[..20], None),
            Err(CryptoError::BadLength)
        );
        assert!(openssl.open(&mut p, Some(3)).is_ok());
    }

    #[test]
    fn known_answer_of_the_zero_des_key() {
        // With K1 = K2 = K3, EDE reduces to single DES: the all-zero key (with parity bits,
        // 0x0101..) on a zero block gives 8CA64DE9C1B123A7, the classic DES test answer.
        let mac = build_icv_mac(Integrity::HmacMd5_96, &[0; 16]).unwrap();
        for key in [&[1u8; 24][..], &[1u8; 8][..]] {
            let mac = build_icv_mac(Integrity::HmacMd5_96, &[0; 16]).unwrap();
            let engine = OpensslDesCbc::new(key, mac).unwrap();
            let mut data = [0u8; BLOCK];
            engine.cbc([0; BLOCK], &mut data, DES_ENCRYPT);
            assert_eq!(data, [0x8c, 0xa6, 0x4d, 0xe9, 0xc1, 0xb1, 0x23, 0xa7]);
            engine.cbc([0; BLOCK], &mut data, DES_DECRYPT);
            assert_eq!(data, [0; BLOCK]);
        }
        assert!(OpensslDesCbc::new(&[1u8; 16], mac).is_err());
    }
}
