//! Encrypting and decrypting ISAKMP bodies with CBC IV chaining (RFC 2409 appendix B), and the
//! message hashes of Quick Mode and Informational exchanges.

use super::codec_error::CodecError;
use super::crypto::CipherError;
use super::events::FailureReason;
use super::header::{Header, HEADER_LEN};
use super::keys::Phase1Keys;
use super::payload::{write_chain, Chain, Payload};

/// An encrypted message and the last ciphertext block, which seeds the next IV of the chain.
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub last_block: Vec<u8>,
}

pub fn seal(
    keys: &Phase1Keys,
    iv: &[u8],
    mut header: Header,
    payloads: &[Payload],
) -> Result<Sealed, CipherError> {
    let (first, mut body) = write_chain(payloads);
    let block = keys.cipher.block_len();
    let pad = (block - body.len() % block) % block;
    body.resize(body.len() + pad, 0);
    keys.cipher.encrypt(&keys.encryption, iv, &mut body)?;
    header.next_payload = first;
    header.flags |= super::numbers::flags::ENCRYPTION;
    header.length = (HEADER_LEN + body.len()) as u32;
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
    header.write(&mut bytes);
    let last_block = body[body.len() - block..].to_vec();
    bytes.extend_from_slice(&body);
    Ok(Sealed { bytes, last_block })
}

#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Not a whole number of blocks: malformed before any key is involved.
    NotBlockAligned,
    /// Decrypted bytes do not form a payload chain: wrong key or corruption.
    Garbage(CodecError),
}

pub struct Opened {
    pub chain: Chain,
    pub last_block: Vec<u8>,
}

pub fn open(
    keys: &Phase1Keys,
    iv: &[u8],
    header: &Header,
    message: &[u8],
) -> Result<Opened, OpenError> {
    let block = keys.cipher.block_len();
    let mut body = message[HEADER_LEN..].to_vec();
    if body.is_empty() || !body.len().is_multiple_of(block) {
        return Err(OpenError::NotBlockAligned);
    }
    let last_block = body[body.len() - block..].to_vec();
    keys.cipher
        .decrypt(&keys.encryption, iv, &mut body)
        .map_err(|_| OpenError::NotBlockAligned)?;
    let chain = Chain::parse(header.next_payload, body, true).map_err(OpenError::Garbage)?;
    Ok(Opened { chain, last_block })
}

/// `open`, with its errors as the failure reasons every exchange logs and counts.
pub fn open_or_fail(
    keys: &Phase1Keys,
    iv: &[u8],
    header: &Header,
    message: &[u8],
) -> Result<Opened, FailureReason> {
    open(keys, iv, header, message).map_err(|e| match e {
        OpenError::NotBlockAligned => FailureReason::Malformed(CodecError::LengthMismatch),
        OpenError::Garbage(_) => FailureReason::DecryptionFailed,
    })
}

/// Checks the leading HASH of a Quick Mode first message or an Informational message:
/// `prf(SKEYID_a, M-ID | everything after the HASH payload)` (RFC 2409 §5.5, §5.7).
pub fn check_leading_hash(
    keys: &Phase1Keys,
    message_id: u32,
    chain: &Chain,
    name: &'static str,
) -> Result<(), FailureReason> {
    let (Some(Payload::Hash(hash)), Some(rest)) = (
        chain.payloads.first().map(|p| &p.payload),
        after_first_payload(chain),
    ) else {
        return Err(FailureReason::MissingPayload(name));
    };
    let expected = keys
        .hash
        .prf(keys.skeyid_a.expose(), &[&message_id.to_be_bytes(), rest]);
    if same(&expected, hash) {
        Ok(())
    } else {
        Err(FailureReason::HashMismatch)
    }
}

/// The bytes a Quick Mode/Informational HASH covers: every payload after the leading HASH,
/// with generic headers, without cipher padding.
pub fn after_first_payload(chain: &Chain) -> Option<&[u8]> {
    let first = chain.payloads.first()?;
    Some(&chain.bytes[first.span.end..chain.end])
}

/// Builds [HASH, rest...] where HASH = prf(SKEYID_a, prefix | M-ID | rest) as RFC 2409 5.5/5.7
/// define; `prefix` is empty except for HASH(3)'s leading zero octet.
pub fn hashed_payloads(
    keys: &Phase1Keys,
    message_id: u32,
    rest: Vec<Payload>,
    extra: &[&[u8]],
) -> Vec<Payload> {
    let (_, rest_bytes) = write_chain(&rest);
    let mut parts: Vec<&[u8]> = Vec::new();
    let mid = message_id.to_be_bytes();
    parts.push(&mid);
    parts.extend_from_slice(extra);
    parts.push(&rest_bytes);
    let hash = keys.hash.prf(keys.skeyid_a.expose(), &parts);
    let mut all = vec![Payload::Hash(hash)];
    all.extend(rest);
    all
}

/// Constant-time comparison for received hashes.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
