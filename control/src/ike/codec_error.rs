//! Why a message could not be decoded; each variant is a counted drop reason.

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("message truncated")]
    Truncated,
    #[error("message longer than the accepted maximum")]
    Oversized,
    #[error("unsupported ISAKMP version {0:#x}")]
    BadVersion(u8),
    #[error("header length does not match the datagram")]
    LengthMismatch,
    #[error("payload length field is wrong")]
    BadPayloadLength,
    #[error("payload chain too long")]
    TooManyPayloads,
    #[error("unknown payload type {0}")]
    UnknownPayload(u8),
    #[error("bytes after the last payload")]
    TrailingBytes,
    #[error("malformed SA, proposal or transform")]
    BadSa,
    #[error("malformed attribute")]
    BadAttribute,
    #[error("malformed identification payload")]
    BadIdentity,
    #[error("malformed notify or delete payload")]
    BadNotify,
}
