//! ESP (RFC 4303) and AH (RFC 4302) tunnel mode on bursts of packet buffers.
//!
//! The control plane turns each [`SaSpec`] into an [`OutboundSa`] or [`InboundSa`] once; the
//! owning worker then calls `encapsulate_burst` / `decapsulate_burst` with a coarse clock. Each
//! SA keeps its crypto engine, outer header template, sequence/anti-replay state, lifetime and
//! counters together; the burst functions pick a loop specialised for the SA's shape (IPv4/IPv6
//! outer, UDP or not, AH or not) once per burst, so the per-packet path neither allocates nor
//! branches on configuration. Buffers hold IP packets (no Ethernet header).
//!
//! ```text
//! outbound: inner IP            ──► outer IP | [UDP 4500] | [AH] | ESP | IV | inner IP | pad | ICV
//! inbound:  outer IP | [UDP] | [AH] | ESP ...   ──► inner IP
//! ```

mod ah;
pub mod counters;
pub mod fragment;
mod fragment_slots;
mod inbound;
mod keyed;
pub mod lifetime;
mod outbound;
mod outer;
pub(crate) mod prefetch;
pub mod reassembly;
pub mod reassembly_v6;
pub mod replay;
mod verdict;

pub use counters::{CounterSnapshot, SaCounters, SharedCounters};
pub use inbound::InboundSa;
pub use lifetime::{RaisedEvents, SaEventKind};
pub use outbound::OutboundSa;
pub use outer::OUTER_TTL;
pub use verdict::{DropReason, Verdict};

use crate::crypto::SetupError;
use crate::sa::{Direction, Encapsulation, Integrity, IpsecProtocol, SaSpec};
use crate::wire::{ip_proto, ipv4, ipv6};

/// Why an SA spec could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SaSetupError {
    #[error("crypto: {0}")]
    Crypto(#[from] SetupError),
    #[error("local and remote addresses are of different families")]
    AddressFamily,
    #[error("spec is for the other direction")]
    WrongDirection,
    #[error("protocol does not fit this constructor")]
    ProtocolMismatch,
    #[error("AH cannot cross NAT (no UDP encapsulation) and needs an integrity algorithm")]
    AhUnsupported,
    #[error("replay window larger than {}", replay::MAX_WINDOW)]
    ReplayWindow,
    #[error("SPI 0 is reserved")]
    ReservedSpi,
    #[error("the transform's IV, padding or ICV size does not fit the SA's framing")]
    TransformSizes,
}

/// An ESP transform's IV, padding and ICV sizes, kept next to its engine in an SA so that
/// framing reads them without a call through the engine's vtable. Bytes (each is at most 32
/// for every transform), so the SA stays few cache lines.
#[derive(Clone, Copy)]
struct TransformSizes {
    iv_len: u8,
    pad_align: u8,
    icv_len: u8,
}

impl TransformSizes {
    /// `None` if a size does not fit a byte (no transform has one; a new one would be refused
    /// at SA set-up rather than framed wrongly).
    fn of(transform: &dyn crate::crypto::EspTransform) -> Option<Self> {
        let byte = |n: usize| u8::try_from(n).ok();
        Some(TransformSizes {
            iv_len: byte(transform.iv_len())?,
            pad_align: byte(transform.pad_align()).filter(|&a| a > 0)?,
            icv_len: byte(transform.icv_len())?,
        })
    }

    fn iv_len(self) -> usize {
        usize::from(self.iv_len)
    }

    fn pad_align(self) -> usize {
        usize::from(self.pad_align)
    }

    fn icv_len(self) -> usize {
        usize::from(self.icv_len)
    }
}

fn validate_common(spec: &SaSpec, direction: Direction) -> Result<(), SaSetupError> {
    if spec.direction != direction {
        return Err(SaSetupError::WrongDirection);
    }
    if spec.replay_window > replay::MAX_WINDOW {
        return Err(SaSetupError::ReplayWindow);
    }
    if spec.spi == 0 {
        return Err(SaSetupError::ReservedSpi);
    }
    Ok(())
}

fn validate_ah(spec: &SaSpec, direction: Direction) -> Result<(), SaSetupError> {
    validate_common(spec, direction)?;
    if spec.protocol != IpsecProtocol::Ah
        || spec.integrity == Integrity::None
        || spec.encapsulation != Encapsulation::None
    {
        return Err(SaSetupError::AhUnsupported);
    }
    Ok(())
}

/// What the tunnel needs to know about an inner packet before wrapping it.
struct InnerInfo {
    /// IP total length (the buffer may carry trailing bytes beyond it).
    len: usize,
    /// DSCP and ECN, copied to the outer header.
    tos: u8,
    dont_fragment: bool,
    /// IPv4 without DF: too-big packets can be fragmented instead of refused.
    may_fragment: bool,
    next_header: u8,
}

fn inner_info(packet: &[u8]) -> Result<InnerInfo, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = ipv4::Ipv4Packet::new_checked(packet).map_err(|_| DropReason::BadHeader)?;
            Ok(InnerInfo {
                len: ip.total_len(),
                tos: ip.dscp_ecn(),
                dont_fragment: ip.dont_fragment(),
                may_fragment: !ip.dont_fragment(),
                next_header: ip_proto::IPV4_IN_IP,
            })
        }
        Some(6) => {
            let ip = ipv6::Ipv6Packet::new_checked(packet).map_err(|_| DropReason::BadHeader)?;
            Ok(InnerInfo {
                len: ip.total_len(),
                tos: ip.traffic_class(),
                // IPv6 is never fragmented on the path; an IPv4 outer header keeps DF set.
                dont_fragment: true,
                may_fragment: false,
                next_header: ip_proto::IPV6_IN_IP,
            })
        }
        _ => Err(DropReason::BadHeader),
    }
}
