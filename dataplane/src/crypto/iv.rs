//! Unpredictable CBC IVs without a random-number call per packet.
//!
//! RFC 3602 §3 asks for IVs an attacker cannot predict. Each SA gets a random AES key at
//! install (from the OS, once); a packet's IV is that key's encryption of (SPI, sequence
//! number), which is unique per packet and unpredictable without the key.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

pub struct IvGenerator {
    key: Aes128,
}

impl IvGenerator {
    pub fn new() -> Self {
        let mut seed = [0u8; 16];
        fill_random(&mut seed);
        let key = Aes128::new(&seed.into());
        zeroize::Zeroize::zeroize(&mut seed);
        IvGenerator { key }
    }

    /// Writes `out.len()` (≤ 16) IV bytes for the packet with this SPI and 64-bit sequence number.
    pub fn fill(&self, spi: u32, seq: u64, out: &mut [u8]) {
        let mut block = [0u8; 16];
        block[..4].copy_from_slice(&spi.to_be_bytes());
        block[4..12].copy_from_slice(&seq.to_be_bytes());
        let mut b = block.into();
        self.key.encrypt_block(&mut b);
        let n = out.len().min(16);
        out[..n].copy_from_slice(&b[..n]);
    }
}

impl Default for IvGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// OS randomness through ring (getrandom); used only at SA install.
pub fn fill_random(out: &mut [u8]) {
    use ring::rand::SecureRandom;
    // The OS generator failing is not recoverable; install happens on the control path.
    ring::rand::SystemRandom::new()
        .fill(out)
        .expect("operating system random source");
}
