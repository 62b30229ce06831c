//! CBC encryption (RFC 3602 for AES, RFC 2405/2451 for DES/3DES) followed by a truncated HMAC
//! over ESP header, IV and ciphertext (encrypt-then-MAC, RFC 4303 §3.3.2).

use crate::crypto::{EngineBox, MacBox};
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockCipher, BlockDecrypt, BlockEncrypt, KeyInit, Unsigned};

use super::cbc_framing;
use super::iv::IvGenerator;
use super::{CryptoError, EspTransform, SealJob, SetupError, SEAL_LANES};
use crate::wire::esp::HEADER_LEN;

/// Blocks decrypted per call, so AES-NI pipelines independent blocks.
const PARALLEL_BLOCKS: usize = 8;
const MAX_BLOCK: usize = 16;

pub struct CbcHmac<C> {
    cipher: C,
    mac: MacBox,
    ivs: IvGenerator,
}

impl<C> CbcHmac<C>
where
    C: BlockCipher + BlockEncrypt + BlockDecrypt + KeyInit + Send + Sync + 'static,
{
    pub fn boxed(key: &[u8], mac: MacBox) -> Result<EngineBox, SetupError> {
        let cipher = C::new_from_slice(key).map_err(|_| SetupError::KeyLength)?;
        Ok(super::engine_box(CbcHmac {
            cipher,
            mac,
            ivs: IvGenerator::new(),
        }))
    }

    fn block_len() -> usize {
        C::BlockSize::USIZE
    }

    fn encrypt(&self, iv: &[u8], data: &mut [u8]) {
        let bl = Self::block_len();
        let mut chain = [0u8; MAX_BLOCK];
        chain[..bl].copy_from_slice(iv);
        for block in data.chunks_exact_mut(bl) {
            for (b, c) in block.iter_mut().zip(&chain[..bl]) {
                *b ^= c;
            }
            self.cipher
                .encrypt_block(GenericArray::from_mut_slice(block));
            chain[..bl].copy_from_slice(block);
        }
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) {
        let bl = Self::block_len();
        let mut previous = [0u8; MAX_BLOCK];
        previous[..bl].copy_from_slice(iv);
        let mut blocks: [GenericArray<u8, C::BlockSize>; PARALLEL_BLOCKS] = Default::default();
        let mut saved = [0u8; MAX_BLOCK * PARALLEL_BLOCKS];
        for group in data.chunks_mut(bl * PARALLEL_BLOCKS) {
            let n = group.len() / bl;
            saved[..group.len()].copy_from_slice(group);
            for (i, block) in blocks[..n].iter_mut().enumerate() {
                block.copy_from_slice(&group[i * bl..(i + 1) * bl]);
            }
            self.cipher.decrypt_blocks(&mut blocks[..n]);
            for i in 0..n {
                let chain = if i == 0 {
                    &previous[..bl]
                } else {
                    &saved[(i - 1) * bl..i * bl]
                };
                let out = &mut group[i * bl..(i + 1) * bl];
                for ((o, p), c) in out.iter_mut().zip(blocks[i].iter()).zip(chain) {
                    *o = p ^ c;
                }
            }
            previous[..bl].copy_from_slice(&saved[(n - 1) * bl..n * bl]);
        }
    }
}

impl<C> CbcHmac<C>
where
    C: BlockCipher + BlockEncrypt + BlockDecrypt + KeyInit + Send + Sync + 'static,
{
    /// CBC-encrypts up to [`SEAL_LANES`] packets side by side: each step encrypts the next block
    /// of every packet that has one in a single multi-block call, so the chains' latencies
    /// overlap. Then each packet gets its ICV.
    fn seal_interleaved(&self, group: &mut [SealJob<'_>]) {
        let bl = Self::block_len();
        let icv_len = self.mac.icv_len();
        let mut chain = [[0u8; MAX_BLOCK]; SEAL_LANES];
        let mut body_len = [0usize; SEAL_LANES];
        for (lane, job) in group.iter_mut().enumerate() {
            let p = &mut *job.packet;
            let spi = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let seq_low = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            let seq = (u64::from(job.seq_high.unwrap_or(0)) << 32) | u64::from(seq_low);
            self.ivs.fill(spi, seq, &mut p[HEADER_LEN..HEADER_LEN + bl]);
            chain[lane][..bl].copy_from_slice(&p[HEADER_LEN..HEADER_LEN + bl]);
            body_len[lane] = (p.len() - icv_len - HEADER_LEN - bl) / bl * bl;
        }
        let longest = body_len[..group.len()].iter().copied().max().unwrap_or(0);
        let mut blocks: [GenericArray<u8, C::BlockSize>; SEAL_LANES] = Default::default();
        let mut lanes = [0usize; SEAL_LANES];
        let mut offset = 0;
        while offset < longest {
            let mut n = 0;
            for (lane, job) in group.iter().enumerate() {
                if offset < body_len[lane] {
                    let at = HEADER_LEN + bl + offset;
                    for ((b, p), c) in blocks[n]
                        .iter_mut()
                        .zip(&job.packet[at..at + bl])
                        .zip(&chain[lane][..bl])
                    {
                        *b = p ^ c;
                    }
                    lanes[n] = lane;
                    n += 1;
                }
            }
            self.cipher.encrypt_blocks(&mut blocks[..n]);
            for (block, &lane) in blocks[..n].iter().zip(&lanes[..n]) {
                let at = HEADER_LEN + bl + offset;
                group[lane].packet[at..at + bl].copy_from_slice(block);
                chain[lane][..bl].copy_from_slice(block);
            }
            offset += bl;
        }
        for job in group.iter_mut() {
            cbc_framing::sign(job.packet, job.seq_high, &*self.mac);
        }
    }
}

impl<C> EspTransform for CbcHmac<C>
where
    C: BlockCipher + BlockEncrypt + BlockDecrypt + KeyInit + Send + Sync + 'static,
{
    fn iv_len(&self) -> usize {
        Self::block_len()
    }
    fn pad_align(&self) -> usize {
        Self::block_len().max(4)
    }
    fn prefetch(&self, _payload_len: usize) {
        crate::esp::prefetch::prefetch_value(self);
        crate::esp::prefetch::prefetch_value(&*self.mac);
    }
    fn icv_len(&self) -> usize {
        self.mac.icv_len()
    }
    fn seal(&self, packet: &mut [u8], seq_high: Option<u32>) {
        cbc_framing::seal(
            packet,
            seq_high,
            Self::block_len(),
            &self.ivs,
            &*self.mac,
            |iv, body| self.encrypt(iv, body),
        );
    }
    fn seal_burst(&self, jobs: &mut [SealJob<'_>]) {
        for group in jobs.chunks_mut(SEAL_LANES) {
            self.seal_interleaved(group);
        }
    }
    fn open(&self, packet: &mut [u8], seq_high: Option<u32>) -> Result<(), CryptoError> {
        cbc_framing::open(
            packet,
            seq_high,
            Self::block_len(),
            &*self.mac,
            |iv, body| self.decrypt(iv, body),
        )
    }
}
