//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// One's-complement sum of `data` as big-endian 16-bit words, not yet folded.
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([pair[0], pair[1]])));
        // Folding early keeps the accumulator from overflowing on jumbo inputs.
        if acc >= 0x8000_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a running sum into the final 16-bit complement checksum.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Checksum of a byte range (0 in the result means the range, checksum included, verifies).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// RFC 1624 eqn. 3: new checksum after one 16-bit word changed from `old` to `new`.
pub fn update_word(check: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!check) + u32::from(!old) + u32::from(new);
    finish(acc)
}

/// Pseudo-header sum for UDP/TCP/ICMPv6 over IPv4 or IPv6 addresses.
pub fn pseudo_header_sum(src: &[u8], dst: &[u8], protocol: u8, length: u32) -> u32 {
    let mut acc = sum(src, 0);
    acc = sum(dst, acc);
    acc = acc.wrapping_add(u32::from(protocol));
    acc = acc.wrapping_add(length >> 16).wrapping_add(length & 0xffff);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_the_published_value() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut data = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([data[8], data[9]]);
        data[8] -= 1;
        let new = u16::from_be_bytes([data[8], data[9]]);
        let inc = update_word(c, old, new);
        data[10..12].fill(0);
        assert_eq!(inc, checksum(&data));
    }
}
