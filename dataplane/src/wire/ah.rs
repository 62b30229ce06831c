//! AH header (RFC 4302 §2): next header, payload length in 32-bit words minus 2, SPI,
//! sequence number and the ICV.

use super::{read_u32, write_u32, WireError};

/// Fixed part before the ICV.
pub const FIXED_LEN: usize = 12;

#[derive(Debug, Clone, Copy)]
pub struct AhPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhPacket<T> {
    /// Checks the fixed part and that the length field fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let len = (usize::from(b[1]) + 2) * 4;
        if len < FIXED_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        if read_u32(b, 4) == 0 {
            return Err(WireError::Unsupported);
        }
        Ok(AhPacket { buffer })
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// Whole AH header length in bytes, ICV included.
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[1]) + 2) * 4
    }
    pub fn spi(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 4)
    }
    pub fn sequence(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 8)
    }
    pub fn icv(&self) -> &[u8] {
        &self.buffer.as_ref()[FIXED_LEN..self.header_len()]
    }
}

/// Writes the fixed part of an AH header whose ICV is `icv_len` bytes (already padded to the
/// 32/64-bit alignment the outer IP version needs); the ICV bytes are zeroed.
pub fn write_header(out: &mut [u8], next_header: u8, icv_len: usize, spi: u32, sequence: u32) {
    out[0] = next_header;
    out[1] = ((FIXED_LEN + icv_len) / 4 - 2) as u8;
    out[2] = 0;
    out[3] = 0;
    write_u32(out, 4, spi);
    write_u32(out, 8, sequence);
    out[FIXED_LEN..FIXED_LEN + icv_len].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_field_is_words_minus_two() {
        let mut b = [0u8; 24];
        write_header(&mut b, 4, 12, 0x100, 1);
        assert_eq!(b[1], 4);
        let a = AhPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (
                a.next_header(),
                a.header_len(),
                a.spi(),
                a.sequence(),
                a.icv().len()
            ),
            (4, 24, 0x100, 1, 12)
        );
        assert_eq!(
            AhPacket::new_checked(&b[..23]).unwrap_err(),
            WireError::Truncated
        );
        b[1] = 0;
        assert_eq!(
            AhPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
    }
}
