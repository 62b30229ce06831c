//! Why a tunnel was not installed. The IKE side turns each into a notify to the peer and one
//! log line; nothing of the refused tunnel remains installed.

use dataplane::prefix::Prefix;
use dataplane::tables::{SpiError, WorkerId};

use super::placement::PlacementError;
use super::pools::PoolError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelRefusal {
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Spi(#[from] SpiError),
    #[error("unusable SA set: {0}")]
    BadSaSet(&'static str),
    #[error("proxy pair {local} - {remote} mixes address families")]
    MixedFamilies { local: Prefix, remote: Prefix },
    #[error("inbound SPI {spi:#010x} was not reserved for this peer")]
    SpiNotReserved { spi: u32 },
    #[error("inbound SPI {spi:#010x} is owned by worker {owner:?}, the peer is on {placed:?}")]
    SpiOnWrongWorker {
        spi: u32,
        owner: WorkerId,
        placed: WorkerId,
    },
    #[error("SA {spi:#010x} cannot be built: {reason}")]
    SaBuild { spi: u32, reason: String },
    #[error("reverse route {prefix}: {reason}")]
    ReverseRoute { prefix: Prefix, reason: String },
    #[error("no tunnel id left")]
    TooManyTunnels,
}
