//! The PIC worker's per-packet path: classify each frame, run it through routing, rules and
//! ESP/AH, and say where it goes. Everything here is generic over [`crate::buf::PacketBuf`], so
//! the DPDK loop, the C API and the tests share it.

pub mod dispatch;
pub mod dpdk_loop;
pub mod drops;
pub mod held;
pub mod neighbor;
pub mod ports;
pub mod worker;

pub use dispatch::{
    BurstOutcome, DispatchContext, FrameSink, Verdict, MAX_FRAGMENTS, UPDATE_BUDGET,
};
pub use drops::{PipelineCounters, PipelineSnapshot};
pub use held::{HeldFrames, NeighborWait};
pub use neighbor::NeighborTable;
pub use ports::{PortSetup, Ports, MAX_PORTS};
pub use worker::{
    fragment_frame, Disposition, GatewaySas, PicWorker, ResolveRequests, TunnelInbound,
    TunnelOutbound,
};
