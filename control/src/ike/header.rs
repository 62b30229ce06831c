//! The fixed 28-byte ISAKMP header (RFC 2408 section 3.1).

use super::codec_error::CodecError;
use super::numbers::ISAKMP_VERSION;

pub const HEADER_LEN: usize = 28;
/// Larger datagrams are refused before any work: IKEv1 without certificates stays far below.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

pub type Cookie = [u8; 8];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub initiator_cookie: Cookie,
    pub responder_cookie: Cookie,
    pub next_payload: u8,
    pub exchange: u8,
    pub flags: u8,
    pub message_id: u32,
    /// Total message length including this header, as announced.
    pub length: u32,
}

impl Header {
    /// Reads the header and checks the announced length against the datagram exactly.
    pub fn parse(bytes: &[u8]) -> Result<Header, CodecError> {
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::Truncated);
        }
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(CodecError::Oversized);
        }
        let version = bytes[17];
        if version >> 4 != 1 {
            return Err(CodecError::BadVersion(version));
        }
        let length = u32::from_be_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
        if length as usize != bytes.len() {
            return Err(CodecError::LengthMismatch);
        }
        let mut initiator_cookie = [0u8; 8];
        initiator_cookie.copy_from_slice(&bytes[0..8]);
        let mut responder_cookie = [0u8; 8];
        responder_cookie.copy_from_slice(&bytes[8..16]);
        Ok(Header {
            initiator_cookie,
            responder_cookie,
            next_payload: bytes[16],
            exchange: bytes[18],
            flags: bytes[19],
            message_id: u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
            length,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie);
        out.extend_from_slice(&self.responder_cookie);
        out.push(self.next_payload);
        out.push(ISAKMP_VERSION);
        out.push(self.exchange);
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}
