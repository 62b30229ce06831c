//! Per-packet outcome of ESP/AH processing: accepted, or a named reason the pipeline counts.

/// Why a packet was not passed on. Every variant has a counter somewhere (per SA or per worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DropReason {
    /// Outer or inner header malformed, wrong protocol/port, or inner version unknown
    /// (counted with `Truncated` as `bad_header`).
    BadHeader,
    /// SPI does not belong to this SA (the pipeline sent it to the wrong one).
    WrongSpi,
    /// Shorter than the transform's minimum, or ciphertext not block aligned.
    Truncated,
    /// Sequence number already seen or left of the anti-replay window.
    Replay,
    /// ICV did not verify.
    Authentication,
    /// Padding bytes or pad length inconsistent after decryption.
    BadPadding,
    /// Outer packet is a fragment: reassemble before handing it to the SA.
    Fragment,
    /// Not enough head- or tailroom in the buffer for the outer headers or trailer.
    NoRoom,
    /// Hard lifetime (seconds or kilobytes) reached; the SA passes nothing more.
    Expired,
    /// The sequence number space is used up; the SA must be rekeyed.
    SequenceExhausted,
    /// The encapsulated packet would exceed the tunnel MTU. `mtu` is the largest inner packet
    /// that fits; `may_fragment` is true for IPv4 inner packets without DF, which the pipeline
    /// fragments (see [`crate::esp::fragment`]) and resubmits, else it answers with ICMP
    /// fragmentation-needed / packet-too-big carrying `mtu`.
    TooBig { mtu: u16, may_fragment: bool },
}

/// Result for one packet of a burst: `Ok(())` means the buffer now holds the output packet.
pub type Verdict = Result<(), DropReason>;
