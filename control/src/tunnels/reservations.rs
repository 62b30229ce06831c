//! Peer placement and inbound SPIs, shared by the tunnel manager and the IKE responder.
//!
//! The responder picks its inbound SPI while answering Quick Mode, before the tunnel exists;
//! the SPI must already name the worker that will own the SAs, so the peer is placed (PIC and
//! worker) at that moment and the placement is held until the tunnel is installed or the SPI
//! released. Both users live on the control thread; the mutex only makes the shared handle
//! `Send` for the responder's boxed allocator and is never contended.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dataplane::sa::PeerEndpoint;
use dataplane::tables::SpiAllocator;

use super::placement::{PeerKey, PicBalancer, Placement, PlacementError};
use super::refusal::TunnelRefusal;
use super::topology::{PicInfo, ServiceSetInfo};

pub struct Reservations {
    balancer: PicBalancer,
    spis: SpiAllocator,
    reserved: HashMap<u32, PeerKey>,
    /// Local gateway address → access profile of the service sets terminating there.
    profiles: HashMap<IpAddr, String>,
}

impl Reservations {
    pub fn new(pics: &[PicInfo], service_sets: &[ServiceSetInfo]) -> Self {
        let mut reservations = Reservations {
            balancer: PicBalancer::new(pics, &[]),
            // Every worker an SPI can name, so PICs added later need no new allocator.
            spis: SpiAllocator::new(dataplane::tables::spi::MAX_WORKERS),
            reserved: HashMap::new(),
            profiles: HashMap::new(),
        };
        for set in service_sets {
            reservations.add_service_set(set);
        }
        reservations
    }

    pub fn add_pic(&mut self, pic: &PicInfo) {
        self.balancer.add_pic(pic);
    }

    pub fn add_service_set(&mut self, set: &ServiceSetInfo) {
        self.balancer.add_service_set(set);
        // A static-only set answers no IKE: it must not claim its gateway address.
        if !set.access_profile.is_empty() {
            self.profiles
                .entry(set.local_gateway)
                .or_insert_with(|| set.access_profile.clone());
        }
    }

    /// Places the peer (or reuses its placement) and allocates an SPI on its worker.
    pub fn reserve(&mut self, peer: PeerKey) -> Result<u32, TunnelRefusal> {
        let placement = self.balancer.hold(&peer)?;
        match self.spis.allocate(placement.worker) {
            Ok(spi) => {
                self.reserved.insert(spi, peer);
                Ok(spi)
            }
            Err(e) => {
                self.balancer.release(&peer);
                Err(e.into())
            }
        }
    }

    /// Gives back an SPI reserved but never used by a tunnel.
    pub fn release_reserved(&mut self, spi: u32) -> bool {
        let Some(peer) = self.reserved.remove(&spi) else {
            return false;
        };
        self.spis.release(spi);
        self.balancer.release(&peer);
        true
    }

    pub fn is_reserved_for(&self, spi: u32, peer: &PeerKey) -> bool {
        self.reserved.get(&spi) == Some(peer)
    }

    /// Ends a reservation after `child_sa_up`: the SPI now belongs to the tunnel (kept) or,
    /// after a refusal, is freed.
    pub fn settle(&mut self, spi: u32, peer: &PeerKey, keep_spi: bool) {
        if self.is_reserved_for(spi, peer) {
            self.reserved.remove(&spi);
            self.balancer.release(peer);
            if !keep_spi {
                self.spis.release(spi);
            }
        }
    }

    pub fn hold(&mut self, peer: &PeerKey) -> Result<Placement, PlacementError> {
        self.balancer.hold(peer)
    }

    pub fn release_hold(&mut self, peer: &PeerKey) -> bool {
        self.balancer.release(peer)
    }

    pub fn release_spi(&mut self, spi: u32) -> bool {
        self.spis.release(spi)
    }

    pub fn balancer(&self) -> &PicBalancer {
        &self.balancer
    }

    pub fn reserved_count(&self) -> usize {
        self.reserved.len()
    }

    pub fn allocated_count(&self) -> u32 {
        self.spis.total_in_use()
    }

    fn profile_for(&self, local_gateway: IpAddr) -> Option<String> {
        self.profiles.get(&local_gateway).cloned()
    }
}

/// The IKE responder's handle for inbound SPIs (it maps onto the responder's `SpiAllocator`
/// trait one to one); the access profile is found from the local gateway address, which all
/// service sets sharing a profile have in common.
#[derive(Clone)]
pub struct SpiBroker {
    shared: Arc<Mutex<Reservations>>,
}

pub(super) fn lock(shared: &Mutex<Reservations>) -> MutexGuard<'_, Reservations> {
    // A panic while holding the guard cannot leave the maps half-updated in a way later
    // callers could not live with (each method restores its invariants before returning).
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpiBroker {
    pub(super) fn new(shared: Arc<Mutex<Reservations>>) -> Self {
        SpiBroker { shared }
    }

    /// An inbound SPI for a Quick Mode with `peer`; `None` when no service set terminates at
    /// the local address or no SPI is left (the responder answers NO-PROPOSAL-CHOSEN).
    pub fn allocate(&self, peer: &PeerEndpoint) -> Option<u32> {
        let mut reservations = lock(&self.shared);
        let access_profile = reservations.profile_for(peer.local.ip())?;
        reservations
            .reserve(PeerKey {
                access_profile,
                remote: peer.remote.ip(),
            })
            .ok()
    }

    pub fn allocate_for_profile(
        &self,
        access_profile: &str,
        remote: IpAddr,
    ) -> Result<u32, TunnelRefusal> {
        lock(&self.shared).reserve(PeerKey {
            access_profile: access_profile.to_string(),
            remote,
        })
    }

    /// Frees an SPI whose Quick Mode failed; false if it is not (or no longer) reserved.
    pub fn release(&self, spi: u32) -> bool {
        lock(&self.shared).release_reserved(spi)
    }
}
