//! A fast, non-cryptographic hasher for table keys made of integers (addresses, unit numbers).
//!
//! The default SipHash costs more than the rest of a rule lookup. Keys are installed by the
//! control plane (configuration and authenticated proxy identities), so an attacker can only
//! probe, never fill, these tables; flooding resistance is not needed here.

use std::hash::{BuildHasherDefault, Hasher};

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Default, Clone, Copy)]
pub struct WordHasher {
    state: u64,
}

impl WordHasher {
    #[inline]
    fn mix_in(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix_in(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix_in(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix_in(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix_in(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix_in(n);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.mix_in(n as u64);
        self.mix_in((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix_in(n as u64);
    }

    /// Multiplication only carries entropy upwards, and prefixes have zero low bits, so the
    /// final avalanche spreads the high bits back down before the table takes its bucket bits.
    #[inline]
    fn finish(&self) -> u64 {
        let mut x = self.state;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

pub type FastHashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn slash_24_networks_spread_over_low_bits() {
        let build = BuildHasherDefault::<WordHasher>::default();
        let mut buckets = [0u32; 256];
        for n in 0u32..4096 {
            let network = (10u32 << 24) | (n << 8);
            buckets[(build.hash_one(network) & 0xff) as usize] += 1;
        }
        let fullest = buckets.iter().copied().max().unwrap_or(0);
        assert!(
            fullest < 40,
            "bucket with {fullest} of 4096 keys: poor spread"
        );
    }
}
