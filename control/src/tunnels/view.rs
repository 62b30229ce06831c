//! The operational view `show` prints: tunnels with their PIC, inside unit and dynamic rule,
//! routes per table, and pool units with their holders.

use std::net::{IpAddr, SocketAddr};

use dataplane::prefix::Prefix;
use dataplane::tables::{TunnelId, WorkerId};
use serde::Serialize;

use super::pools::PoolView;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReverseRouteView {
    pub table: String,
    pub prefix: Prefix,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelView {
    pub id: TunnelId,
    pub service_set: String,
    pub pic: String,
    pub worker: WorkerId,
    pub local_gateway: IpAddr,
    pub peer: SocketAddr,
    pub access_profile: String,
    pub inside_interface: String,
    pub rule: String,
    pub term: String,
    pub rule_type: &'static str,
    pub match_direction: &'static str,
    pub source_address: Prefix,
    pub destination_address: Prefix,
    /// Newest generation last.
    pub inbound_spis: Vec<u32>,
    pub outbound_spis: Vec<u32>,
    pub reverse_route: Option<ReverseRouteView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteLine {
    pub prefix: Prefix,
    pub protocol: &'static str,
    pub preference: u32,
    pub next_hop: String,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteTableView {
    pub table: String,
    pub routes: Vec<RouteLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelsView {
    pub tunnels: Vec<TunnelView>,
    pub route_tables: Vec<RouteTableView>,
    pub pools: Vec<PoolView>,
}

impl TunnelsView {
    pub fn table(&self, name: &str) -> Option<&RouteTableView> {
        self.route_tables.iter().find(|t| t.table == name)
    }
}
