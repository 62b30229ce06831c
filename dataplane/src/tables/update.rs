//! The messages between the control thread and a worker: table updates one way, lifetime and
//! counter events the other. Payloads are built (and allocated) by control; a worker only moves
//! them into its tables between bursts.

use serde::Serialize;

use super::fib::Route;
use super::ids::{DynamicRuleId, ServiceSetId, TunnelId, UnitId, VrfId, WorkerId};
use super::rules::{DynamicRule, StaticRule};
use super::sa_table::{SaBundle, SaKinds};
use crate::sa::Direction;

pub enum TableUpdate<K: SaKinds> {
    /// Inbound SAs (by SPI, all owned by the receiving worker) and the tunnel's outbound bundle;
    /// for an existing tunnel (rekey) the inbound SAs are added and the outbound replaced.
    AddSaPair {
        tunnel: TunnelId,
        inbound: Vec<(u32, K::Inbound)>,
        outbound: SaBundle<K::Outbound>,
    },
    /// Inbound SAs of an older generation of a still-up tunnel.
    RemoveInbound {
        spis: Vec<u32>,
    },
    RemoveSaPair {
        tunnel: TunnelId,
        inbound_spis: Vec<u32>,
    },
    AddRule(DynamicRule),
    RemoveRule(DynamicRuleId),
    SetStaticRules {
        service_set: ServiceSetId,
        rules: Vec<StaticRule>,
    },
    BindUnit {
        unit: UnitId,
        service_set: ServiceSetId,
    },
    AddRoute {
        vrf: VrfId,
        route: Route,
    },
    RemoveRoute {
        vrf: VrfId,
        route: Route,
    },
}

impl<K: SaKinds> TableUpdate<K> {
    /// A short name for logs (never the payload: it may carry keys).
    pub fn kind(&self) -> &'static str {
        match self {
            TableUpdate::AddSaPair { .. } => "add-sa-pair",
            TableUpdate::RemoveInbound { .. } => "remove-inbound",
            TableUpdate::RemoveSaPair { .. } => "remove-sa-pair",
            TableUpdate::AddRule(_) => "add-rule",
            TableUpdate::RemoveRule(_) => "remove-rule",
            TableUpdate::SetStaticRules { .. } => "set-static-rules",
            TableUpdate::BindUnit { .. } => "bind-unit",
            TableUpdate::AddRoute { .. } => "add-route",
            TableUpdate::RemoveRoute { .. } => "remove-route",
        }
    }
}

/// Per-worker counters; every drop on the tables' path has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerCounters {
    pub updates_applied: u64,
    pub updates_rejected: u64,
    pub no_route: u64,
    pub no_rule: u64,
    pub rule_discard: u64,
    pub route_discard: u64,
    pub no_sa: u64,
    pub handoff_sent: u64,
    pub handoff_ring_full: u64,
    pub events_lost: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum WorkerEvent {
    SoftLifetime {
        worker: WorkerId,
        spi: u32,
        direction: Direction,
    },
    /// The SA is no longer used; control tears down (or finishes rekeying) the tunnel.
    HardLifetime {
        worker: WorkerId,
        spi: u32,
        direction: Direction,
    },
    SequenceExhausted {
        worker: WorkerId,
        spi: u32,
    },
    UpdateRejected {
        worker: WorkerId,
        update: &'static str,
        reason: String,
    },
    Counters {
        worker: WorkerId,
        counters: WorkerCounters,
    },
}
