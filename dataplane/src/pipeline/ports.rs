//! What a worker knows about the ports it forwards between: their MAC, the routing instance of
//! the interface unit behind them, and the addresses the gateway owns on them.

use std::net::{IpAddr, Ipv4Addr};

use arrayvec::ArrayVec;

use crate::tables::{PortId, VrfId};

pub const MAX_PORTS: usize = 16;
pub const MAX_ADDRESSES_PER_PORT: usize = 8;

#[derive(Clone, Debug)]
pub struct PortSetup {
    pub port: PortId,
    pub mac: [u8; 6],
    pub vrf: VrfId,
    /// The gateway's own addresses on this port (interface addresses and local gateways).
    pub addresses: ArrayVec<IpAddr, MAX_ADDRESSES_PER_PORT>,
}

impl PortSetup {
    pub fn first_ipv6(&self) -> Option<std::net::Ipv6Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        })
    }

    pub fn first_ipv4(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }
}

/// The port table, indexed by `PortId` (DPDK port ids are small and dense).
#[derive(Clone, Debug, Default)]
pub struct Ports {
    by_id: ArrayVec<Option<PortSetup>, MAX_PORTS>,
}

impl Ports {
    pub fn new(setups: impl IntoIterator<Item = PortSetup>) -> Self {
        let mut ports = Ports::default();
        for setup in setups {
            let index = usize::from(setup.port.0);
            if index >= MAX_PORTS {
                continue;
            }
            while ports.by_id.len() <= index {
                ports.by_id.push(None);
            }
            ports.by_id[index] = Some(setup);
        }
        ports
    }

    #[inline]
    pub fn get(&self, port: PortId) -> Option<&PortSetup> {
        self.by_id.get(usize::from(port.0)).and_then(Option::as_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PortSetup> {
        self.by_id.iter().flatten()
    }

    /// True when `addr` belongs to the gateway on any port.
    #[inline]
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.iter().any(|p| p.addresses.contains(&addr))
    }
}
