//! The payload chain: typed payloads, strict generic-header walking, and emission.

use std::ops::Range;

use super::codec_error::CodecError;
use super::identity::Identity;
use super::notify::{Delete, Notify};
use super::numbers::payload_type as pt;
use super::sa_payload::SaPayload;

const MAX_PAYLOADS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Sa(SaPayload),
    KeyExchange(Vec<u8>),
    Identification(Identity),
    Certificate {
        encoding: u8,
        data: Vec<u8>,
    },
    CertificateRequest {
        encoding: u8,
        data: Vec<u8>,
    },
    Hash(Vec<u8>),
    Signature(Vec<u8>),
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete(Delete),
    VendorId(Vec<u8>),
    /// RFC 3947 (type 20) or draft-ietf-ipsec-nat-t-ike-02/03 (type 130).
    NatDiscovery {
        draft: bool,
        hash: Vec<u8>,
    },
    NatOriginalAddress {
        draft: bool,
        data: Vec<u8>,
    },
}

impl Payload {
    pub fn kind(&self) -> u8 {
        match self {
            Payload::Sa(_) => pt::SA,
            Payload::KeyExchange(_) => pt::KE,
            Payload::Identification(_) => pt::ID,
            Payload::Certificate { .. } => pt::CERT,
            Payload::CertificateRequest { .. } => pt::CERT_REQUEST,
            Payload::Hash(_) => pt::HASH,
            Payload::Signature(_) => pt::SIG,
            Payload::Nonce(_) => pt::NONCE,
            Payload::Notify(_) => pt::NOTIFY,
            Payload::Delete(_) => pt::DELETE,
            Payload::VendorId(_) => pt::VENDOR_ID,
            Payload::NatDiscovery { draft: false, .. } => pt::NAT_D,
            Payload::NatDiscovery { draft: true, .. } => pt::NAT_D_DRAFT,
            Payload::NatOriginalAddress { draft: false, .. } => pt::NAT_OA,
            Payload::NatOriginalAddress { draft: true, .. } => pt::NAT_OA_DRAFT,
        }
    }

    fn parse(kind: u8, body: &[u8]) -> Result<Payload, CodecError> {
        let bytes = || body.to_vec();
        let encoded = |b: &[u8]| -> Result<(u8, Vec<u8>), CodecError> {
            b.split_first()
                .map(|(e, d)| (*e, d.to_vec()))
                .ok_or(CodecError::BadPayloadLength)
        };
        Ok(match kind {
            pt::SA => Payload::Sa(SaPayload::parse(body)?),
            pt::KE => Payload::KeyExchange(non_empty(body)?),
            pt::ID => Payload::Identification(Identity::parse(body)?),
            pt::CERT => {
                let (encoding, data) = encoded(body)?;
                Payload::Certificate { encoding, data }
            }
            pt::CERT_REQUEST => {
                let (encoding, data) = encoded(body)?;
                Payload::CertificateRequest { encoding, data }
            }
            pt::HASH => Payload::Hash(non_empty(body)?),
            pt::SIG => Payload::Signature(non_empty(body)?),
            pt::NONCE => Payload::Nonce(non_empty(body)?),
            pt::NOTIFY => Payload::Notify(Notify::parse(body)?),
            pt::DELETE => Payload::Delete(Delete::parse(body)?),
            pt::VENDOR_ID => Payload::VendorId(bytes()),
            pt::NAT_D => Payload::NatDiscovery {
                draft: false,
                hash: non_empty(body)?,
            },
            pt::NAT_D_DRAFT => Payload::NatDiscovery {
                draft: true,
                hash: non_empty(body)?,
            },
            pt::NAT_OA => Payload::NatOriginalAddress {
                draft: false,
                data: bytes(),
            },
            pt::NAT_OA_DRAFT => Payload::NatOriginalAddress {
                draft: true,
                data: bytes(),
            },
            other => return Err(CodecError::UnknownPayload(other)),
        })
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(sa) => sa.write(out),
            Payload::Identification(id) => id.write(out),
            Payload::Notify(n) => n.write(out),
            Payload::Delete(d) => d.write(out),
            Payload::Certificate { encoding, data }
            | Payload::CertificateRequest { encoding, data } => {
                out.push(*encoding);
                out.extend_from_slice(data);
            }
            Payload::KeyExchange(b)
            | Payload::Hash(b)
            | Payload::Signature(b)
            | Payload::Nonce(b)
            | Payload::VendorId(b)
            | Payload::NatDiscovery { hash: b, .. }
            | Payload::NatOriginalAddress { data: b, .. } => out.extend_from_slice(b),
        }
    }
}

fn non_empty(body: &[u8]) -> Result<Vec<u8>, CodecError> {
    if body.is_empty() {
        Err(CodecError::BadPayloadLength)
    } else {
        Ok(body.to_vec())
    }
}

/// A payload with where it sits in the chain bytes (generic header included), because the
/// hashes of RFC 2409 cover exact received bytes.
#[derive(Clone, Debug)]
pub struct ParsedPayload {
    pub payload: Payload,
    pub span: Range<usize>,
}

/// A decoded (and, if it was encrypted, decrypted) payload chain.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    pub bytes: Vec<u8>,
    pub payloads: Vec<ParsedPayload>,
    /// End of the last payload; anything after it is cipher padding.
    pub end: usize,
}

impl Chain {
    /// Walks the chain from `first`. `padded` allows bytes after the last payload (encrypted
    /// bodies are padded to the cipher block); plaintext messages must end exactly.
    pub fn parse(first: u8, bytes: Vec<u8>, padded: bool) -> Result<Chain, CodecError> {
        let mut payloads = Vec::new();
        let mut next = first;
        let mut at = 0usize;
        while next != pt::NONE {
            if payloads.len() >= MAX_PAYLOADS {
                return Err(CodecError::TooManyPayloads);
            }
            if bytes.len() - at < 4 {
                return Err(CodecError::Truncated);
            }
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            if len < 4 || len > bytes.len() - at {
                return Err(CodecError::BadPayloadLength);
            }
            let payload = Payload::parse(next, &bytes[at + 4..at + len])?;
            payloads.push(ParsedPayload {
                payload,
                span: at..at + len,
            });
            next = bytes[at];
            at += len;
        }
        if !padded && at != bytes.len() {
            return Err(CodecError::TrailingBytes);
        }
        Ok(Chain {
            bytes,
            payloads,
            end: at,
        })
    }

    /// The body (without generic header) of the i-th payload as received.
    pub fn raw_body(&self, index: usize) -> &[u8] {
        let span = &self.payloads[index].span;
        &self.bytes[span.start + 4..span.end]
    }

    pub fn find(&self, kind: u8) -> Option<usize> {
        self.payloads.iter().position(|p| p.payload.kind() == kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Payload> {
        self.payloads.iter().map(|p| &p.payload)
    }
}

/// Serialises payloads into a chain; returns the first payload's type for the header.
pub fn write_chain(payloads: &[Payload]) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let start = out.len();
        out.push(payloads.get(i + 1).map_or(pt::NONE, Payload::kind));
        out.extend_from_slice(&[0, 0, 0]);
        payload.write_body(&mut out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    (payloads.first().map_or(pt::NONE, Payload::kind), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_round_trips_and_rejects_trailing_bytes() {
        let payloads = vec![
            Payload::Nonce(vec![9; 32]),
            Payload::VendorId(vec![1; 16]),
            Payload::NatDiscovery {
                draft: true,
                hash: vec![2; 20],
            },
        ];
        let (first, bytes) = write_chain(&payloads);
        let chain = Chain::parse(first, bytes.clone(), false).unwrap();
        assert_eq!(chain.iter().cloned().collect::<Vec<_>>(), payloads);
        assert_eq!(chain.raw_body(0), &[9; 32][..]);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Chain::parse(first, longer.clone(), false).unwrap_err(),
            CodecError::TrailingBytes
        );
        assert!(Chain::parse(first, longer, true).is_ok());
        let mut zero_len = bytes;
        zero_len[2] = 0;
        zero_len[3] = 0;
        assert_eq!(
            Chain::parse(first, zero_len, false).unwrap_err(),
            CodecError::BadPayloadLength
        );
        assert_eq!(
            Chain::parse(99, vec![0, 0, 0, 4], false).unwrap_err(),
            CodecError::UnknownPayload(99)
        );
    }
}
