//! ESP header (RFC 4303 §2): SPI and sequence number in clear; the rest is the transform's.

use super::{read_u32, write_u32, WireError};

pub const HEADER_LEN: usize = 8;
/// Pad length and next header, at the end of the (decrypted) payload.
pub const TRAILER_LEN: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct EspPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    /// Checks only the clear header; SPI 0 is reserved (RFC 4303 §2.1) and refused.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if read_u32(b, 0) == 0 {
            return Err(WireError::Unsupported);
        }
        Ok(EspPacket { buffer })
    }
    pub fn spi(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 0)
    }
    pub fn sequence(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 4)
    }
    /// IV, ciphertext and ICV.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

pub fn write_header(out: &mut [u8], spi: u32, sequence: u32) {
    write_u32(out, 0, spi);
    write_u32(out, 4, sequence);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_reserved_spi() {
        let mut b = [0u8; 12];
        write_header(&mut b, 0x1234_5678, 9);
        let e = EspPacket::new_checked(&b[..]).unwrap();
        assert_eq!((e.spi(), e.sequence(), e.body().len()), (0x1234_5678, 9, 4));
        assert_eq!(
            EspPacket::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            EspPacket::new_checked(&[0u8; 8][..]).unwrap_err(),
            WireError::Unsupported
        );
    }
}
