//! Tunnel state on the control thread: service PIC choice, `ipsec-interface-id` pools,
//! implicit dynamic rules, reverse routes, and their publication to the workers.

pub mod directory;
pub mod manager;
pub mod placement;
pub mod pools;
pub mod refusal;
pub mod reservations;
pub mod sa_build;
pub mod topology;
pub mod view;

pub use manager::{ChildSaUp, SaDown, TunnelManager, WorkerQueue};
pub use placement::{PeerKey, Placement, PlacementError};
pub use pools::{PoolError, PoolView};
pub use refusal::TunnelRefusal;
pub use reservations::SpiBroker;
pub use sa_build::{CheckedSpecs, SaBuilder, SaContext, SpecSas};
pub use topology::{
    PicId, PicInfo, PoolInfo, ServiceSetInfo, ServicesInterface, TopologyError, TunnelTopology,
    UnitInfo, UnitMode,
};
pub use view::{RouteLine, RouteTableView, TunnelView, TunnelsView};
