//! What a worker knows about the ports it forwards between: their MAC, the routing instance of
//! the interface unit behind them, the addresses the gateway owns on them, and their MTU.

use std::net::{IpAddr, Ipv4Addr};

use arrayvec::ArrayVec;

use crate::tables::{PortId, VrfId};

/// Every port id DPDK can hand out (`RTE_MAX_ETHPORTS` of Debian's DPDK 22.11), so whatever a
/// host binds is addressable; the assembly refuses ids beyond it rather than drop their frames.
pub const MAX_PORTS: usize = 32;
pub const MAX_ADDRESSES_PER_PORT: usize = 8;
/// Ethernet's MTU, what an interface has unless configured otherwise.
pub const ETHERNET_MTU: u16 = 1500;
/// The MTU of a port nobody gave one: no limit is checked before sending.
pub const UNKNOWN_MTU: u16 = u16::MAX;

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
#[derive(Clone, Debug)]
pub struct Ports {
    by_id: ArrayVec<Option<PortSetup>, MAX_PORTS>,
    /// Largest IP packet each port sends. Kept beside the setups rather than in them so that
    /// callers that build `PortSetup`s by hand keep compiling; [`UNKNOWN_MTU`] until set.
    mtu: [u16; MAX_PORTS],
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            by_id: ArrayVec::new(),
            mtu: [UNKNOWN_MTU; MAX_PORTS],
        }
    }
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

    /// Sets the largest IP packet `port` may send (without its Ethernet header); ports beyond
    /// the table are ignored, as in [`new`](Self::new).
    pub fn set_mtu(&mut self, port: PortId, mtu: u16) {
        if let Some(slot) = self.mtu.get_mut(usize::from(port.0)) {
            *slot = mtu;
        }
    }

    /// The largest IP packet `port` may send; [`UNKNOWN_MTU`] when nobody said.
    #[inline]
    pub fn mtu(&self, port: PortId) -> u16 {
        self.mtu
            .get(usize::from(port.0))
            .copied()
            .unwrap_or(UNKNOWN_MTU)
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
