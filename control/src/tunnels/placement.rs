//! Which service set, PIC and worker a peer's tunnels live on: the least loaded of the service
//! sets sharing the peer's access profile (then the least loaded member PIC of an AMS interface,
//! then the least loaded worker of that PIC). A peer keeps its placement while it holds
//! anything (tunnels or SPIs reserved during Quick Mode), so rekeys and extra proxy pairs stay
//! together, and a PIC added later only attracts new peers.

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::tables::WorkerId;

use super::topology::{PicId, PicInfo, ServiceSetInfo, ServicesInterface};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Index into the topology's service sets.
    pub service_set: usize,
    pub pic: PicId,
    pub worker: WorkerId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no service set uses IKE access profile {0}")]
    NoServiceSet(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub access_profile: String,
    pub remote: IpAddr,
}

struct PeerRecord {
    placement: Placement,
    holds: u32,
}

struct Candidate {
    access_profile: String,
    members: Vec<PicId>,
}

#[derive(Default)]
pub struct PicBalancer {
    sets: Vec<Candidate>,
    pic_workers: HashMap<PicId, Vec<WorkerId>>,
    set_load: Vec<u32>,
    pic_load: HashMap<PicId, u32>,
    worker_load: HashMap<WorkerId, u32>,
    peers: HashMap<PeerKey, PeerRecord>,
}

fn members_of(set: &ServiceSetInfo) -> Vec<PicId> {
    match &set.interface {
        ServicesInterface::Pic(pic) => vec![*pic],
        ServicesInterface::Ams { members, .. } => members.clone(),
    }
}

impl PicBalancer {
    pub fn new(pics: &[PicInfo], service_sets: &[ServiceSetInfo]) -> Self {
        let mut balancer = PicBalancer::default();
        for pic in pics {
            balancer.add_pic(pic);
        }
        for set in service_sets {
            balancer.add_service_set(set);
        }
        balancer
    }

    pub fn add_pic(&mut self, pic: &PicInfo) {
        self.pic_workers.insert(pic.id, pic.workers.clone());
    }

    /// A service set appended at run time (new PIC hardware): existing peers do not move.
    pub fn add_service_set(&mut self, set: &ServiceSetInfo) {
        self.sets.push(Candidate {
            access_profile: set.access_profile.clone(),
            members: members_of(set),
        });
        self.set_load.push(0);
    }

    pub fn placement_of(&self, peer: &PeerKey) -> Option<Placement> {
        self.peers.get(peer).map(|r| r.placement)
    }

    /// Takes one hold for `peer`, placing it first if it holds nothing yet.
    pub fn hold(&mut self, peer: &PeerKey) -> Result<Placement, PlacementError> {
        let placement = match self.peers.get_mut(peer) {
            Some(record) => {
                record.holds += 1;
                record.placement
            }
            None => {
                let placement = self.choose(&peer.access_profile)?;
                self.peers.insert(
                    peer.clone(),
                    PeerRecord {
                        placement,
                        holds: 1,
                    },
                );
                placement
            }
        };
        self.set_load[placement.service_set] += 1;
        *self.pic_load.entry(placement.pic).or_default() += 1;
        *self.worker_load.entry(placement.worker).or_default() += 1;
        Ok(placement)
    }

    /// Gives back one hold; the peer is forgotten when it holds nothing. False if it held none.
    pub fn release(&mut self, peer: &PeerKey) -> bool {
        let Some(record) = self.peers.get_mut(peer) else {
            return false;
        };
        let placement = record.placement;
        record.holds -= 1;
        if record.holds == 0 {
            self.peers.remove(peer);
        }
        self.set_load[placement.service_set] -= 1;
        if let Some(load) = self.pic_load.get_mut(&placement.pic) {
            *load -= 1;
        }
        if let Some(load) = self.worker_load.get_mut(&placement.worker) {
            *load -= 1;
        }
        true
    }

    pub fn pic_load(&self, pic: PicId) -> u32 {
        self.pic_load.get(&pic).copied().unwrap_or(0)
    }

    pub fn worker_load(&self, worker: WorkerId) -> u32 {
        self.worker_load.get(&worker).copied().unwrap_or(0)
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    fn choose(&self, access_profile: &str) -> Result<Placement, PlacementError> {
        // Ties go to the earlier service set / PIC / worker, so placement is deterministic.
        let service_set = self
            .sets
            .iter()
            .enumerate()
            .filter(|(_, c)| c.access_profile == access_profile)
            .min_by_key(|(i, _)| self.set_load[*i])
            .map(|(i, _)| i)
            .ok_or_else(|| PlacementError::NoServiceSet(access_profile.to_string()))?;
        let pic = *self.sets[service_set]
            .members
            .iter()
            .min_by_key(|p| self.pic_load(**p))
            .ok_or_else(|| PlacementError::NoServiceSet(access_profile.to_string()))?;
        let worker = *self
            .pic_workers
            .get(&pic)
            .and_then(|workers| workers.iter().min_by_key(|w| self.worker_load(**w)))
            .ok_or_else(|| PlacementError::NoServiceSet(access_profile.to_string()))?;
        Ok(Placement {
            service_set,
            pic,
            worker,
        })
    }
}
