//! Forwarding state of a worker and the way it changes: per-VRF FIBs with longest-prefix match,
//! static-then-dynamic IPsec rules, SAs by SPI, the lock-free update and event queues between
//! control and workers, and the worker-to-worker hand-off rings.
//!
//! Everything here is built for a single owner thread: control builds updates, the worker
//! applies them between bursts (`WorkerTables::apply_pending`) and looks up without locking or
//! allocating.

pub mod fast_hash;
pub mod fib;
pub mod handoff;
pub mod huge_pages;
pub mod huge_slab;
pub mod ids;
pub mod lpm_v4;
pub mod lpm_v6;
pub mod prefetch_index;
pub mod queue;
pub mod rules;
pub mod sa_table;
pub mod spi;
pub mod update;
pub mod worker_tables;

pub use fib::{Fib, Fibs, NextHop, Route, RouteOrigin, RouteView};
pub use handoff::{handoff_mesh, HandoffPort, HandoffRefused};
pub use ids::{DynamicRuleId, PortId, ServiceSetId, TunnelId, UnitId, VrfId, WorkerId};
pub use queue::{
    event_queue, update_queue, EventReceiver, EventSender, UpdateReceiver, UpdateSender,
};
pub use rules::{
    DynamicRule, RuleMatch, RuleTable, RuleTarget, StaticRule, StaticTerm, TermAction,
};
pub use sa_table::{InboundEntry, InboundLookup, SaBundle, SaKinds, SaTable};
pub use spi::{spi_owner, spi_slot, SpiAllocator, SpiError};
pub use update::{TableUpdate, WorkerCounters, WorkerEvent};
pub use worker_tables::{OutboundDecision, OutboundVerdict, UpdateError, WorkerTables};
