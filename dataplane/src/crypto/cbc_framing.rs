//! The encrypt-then-MAC ESP layout the CBC engines (and ESP-NULL) share: `SPI | seq | IV |
//! ciphertext | ICV`, the ICV over everything before it plus, with extended sequence numbers,
//! the high half of the sequence number, which is authenticated but never sent (RFC 4303
//! §2.2.1). Opening verifies the ICV before a byte is decrypted.

use super::iv::IvGenerator;
use super::{CryptoError, IcvMac};
use crate::wire::esp::HEADER_LEN;

fn esn_len(seq_high: Option<u32>) -> usize {
    if seq_high.is_some() {
        4
    } else {
        0
    }
}

/// Writes the ICV at the end of `packet` over the rest of it (and the ESN's high half).
pub(super) fn sign(packet: &mut [u8], seq_high: Option<u32>, mac: &dyn IcvMac) {
    let icv_at = packet.len() - mac.icv_len();
    let high = seq_high.unwrap_or(0).to_be_bytes();
    let (covered, icv) = packet.split_at_mut(icv_at);
    mac.compute(&[covered, &high[..esn_len(seq_high)]], icv);
}

/// Checks the ICV at the end of `packet`; returns where it starts.
pub(super) fn verify(
    packet: &[u8],
    seq_high: Option<u32>,
    mac: &dyn IcvMac,
) -> Result<usize, CryptoError> {
    let icv_at = packet
        .len()
        .checked_sub(mac.icv_len())
        .ok_or(CryptoError::BadLength)?;
    let high = seq_high.unwrap_or(0).to_be_bytes();
    let (covered, icv) = packet.split_at(icv_at);
    if mac.verify(&[covered, &high[..esn_len(seq_high)]], icv) {
        Ok(icv_at)
    } else {
        Err(CryptoError::Authentication)
    }
}

/// Seals a CBC packet: a fresh `block`-byte IV from `ivs`, then `encrypt(iv, body)` in place,
/// then the ICV. The framing already padded the body to whole blocks.
pub(super) fn seal(
    packet: &mut [u8],
    seq_high: Option<u32>,
    block: usize,
    ivs: &IvGenerator,
    mac: &dyn IcvMac,
    encrypt: impl FnOnce(&[u8], &mut [u8]),
) {
    let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
    let seq_low = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let seq = (u64::from(seq_high.unwrap_or(0)) << 32) | u64::from(seq_low);
    let icv_at = packet.len() - mac.icv_len();
    let (head, body) = packet[..icv_at].split_at_mut(HEADER_LEN + block);
    let iv = &mut head[HEADER_LEN..];
    ivs.fill(spi, seq, iv);
    encrypt(iv, body);
    sign(packet, seq_high, mac);
}

/// Opens a CBC packet: refuses a body that is not whole blocks, verifies the ICV, then
/// `decrypt(iv, body)` in place (IV and ICV bytes are left as they are).
pub(super) fn open(
    packet: &mut [u8],
    seq_high: Option<u32>,
    block: usize,
    mac: &dyn IcvMac,
    decrypt: impl FnOnce(&[u8], &mut [u8]),
) -> Result<(), CryptoError> {
    let icv_at = packet
        .len()
        .checked_sub(mac.icv_len())
        .ok_or(CryptoError::BadLength)?;
    if icv_at < HEADER_LEN + block || !(icv_at - HEADER_LEN - block).is_multiple_of(block) {
        return Err(CryptoError::BadLength);
    }
    verify(packet, seq_high, mac)?;
    let (head, body) = packet[..icv_at].split_at_mut(HEADER_LEN + block);
    decrypt(&head[HEADER_LEN..], body);
    Ok(())
}
