//! What the tunnel manager needs to know about the configuration, in its own small terms (the
//! lead maps the Junos configuration onto these): service PICs and their workers, the
//! next-hop service sets that share an IKE access profile, and the `ipsec-interface-id` pools.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use dataplane::tables::WorkerId;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PicId(pub u16);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PicInfo {
    pub id: PicId,
    /// e.g. `ms-1/0/0`.
    pub name: String,
    /// The poll-mode workers emulating this PIC.
    pub workers: Vec<WorkerId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServicesInterface {
    /// An `ms-` interface on one PIC.
    Pic(PicId),
    /// An aggregated multiservices interface: tunnels spread over its member PICs.
    Ams { name: String, members: Vec<PicId> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSetInfo {
    pub name: String,
    pub interface: ServicesInterface,
    /// `next-hop-service inside-service-interface`, e.g. `ms-1/0/0.1`.
    pub inside_unit: String,
    pub outside_unit: String,
    /// The routing instance holding the inside interface; `None` is the default (`inet.0`).
    pub vrf: Option<String>,
    /// Reverse routes are only inserted for next-hop-style service sets.
    pub next_hop_style: bool,
    /// The `ike-access-profile` its dynamic peers come through; empty for a set with static
    /// rules only.
    pub access_profile: String,
    pub local_gateway: IpAddr,
    /// `local-gateway … routing-instance R`: where outer packets are routed (`None`: default).
    pub local_gateway_vrf: Option<String>,
    /// `ipsec-interface-id` of the pool its dynamic tunnels take units from; without one,
    /// every tunnel uses the inside unit (policy-based, shared).
    pub pool_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UnitMode {
    Dedicated,
    Shared,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitInfo {
    /// e.g. `ms-1/0/0.10`; the part before the dot names the services interface it is on.
    pub name: String,
    pub mode: UnitMode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    pub id: String,
    pub units: Vec<UnitInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelTopology {
    pub pics: Vec<PicInfo>,
    pub service_sets: Vec<ServiceSetInfo>,
    pub pools: Vec<PoolInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("service set {service_set}: PIC {pic:?} is not defined")]
    UnknownPic { service_set: String, pic: PicId },
    #[error("PIC {0} has no worker")]
    PicWithoutWorkers(String),
    #[error("worker {0:?} belongs to more than one PIC")]
    SharedWorker(WorkerId),
    #[error("worker {0:?} is beyond the 256 workers an SPI can name")]
    WorkerOutOfRange(WorkerId),
    #[error("service set {service_set}: pool {pool} is not defined")]
    UnknownPool { service_set: String, pool: String },
    #[error("pool {0}: units must be all dedicated or all shared")]
    MixedPool(String),
    #[error("pool {pool}: more than one shared unit on interface {interface}")]
    SeveralSharedUnits { pool: String, interface: String },
    #[error("service set {service_set}: pool {pool} has no unit on interface {interface}")]
    PoolNotOnInterface {
        service_set: String,
        pool: String,
        interface: String,
    },
    #[error("service set {service_set}: AMS interface {interface} has no member PIC")]
    EmptyAms {
        service_set: String,
        interface: String,
    },
    #[error("service set {0} is defined twice")]
    DuplicateServiceSet(String),
}

/// The services interface a unit is on: `ms-1/0/0.10` → `ms-1/0/0`.
pub fn interface_of(unit: &str) -> &str {
    unit.rsplit_once('.')
        .map_or(unit, |(interface, _)| interface)
}

impl TunnelTopology {
    /// Checks the rules the reference text states for dynamic-endpoint service sets and pools.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let mut seen_workers = HashSet::new();
        for pic in &self.pics {
            if pic.workers.is_empty() {
                return Err(TopologyError::PicWithoutWorkers(pic.name.clone()));
            }
            for worker in &pic.workers {
                if usize::from(worker.0) >= dataplane::tables::spi::MAX_WORKERS {
                    return Err(TopologyError::WorkerOutOfRange(*worker));
                }
                if !seen_workers.insert(*worker) {
                    return Err(TopologyError::SharedWorker(*worker));
                }
            }
        }
        let pics: HashSet<PicId> = self.pics.iter().map(|p| p.id).collect();
        let pools: HashMap<&str, &PoolInfo> =
            self.pools.iter().map(|p| (p.id.as_str(), p)).collect();
        for pool in &self.pools {
            let first = pool.units.first().map(|u| u.mode);
            if pool.units.iter().any(|u| Some(u.mode) != first) {
                return Err(TopologyError::MixedPool(pool.id.clone()));
            }
            if first == Some(UnitMode::Shared) {
                let mut interfaces = HashSet::new();
                for unit in &pool.units {
                    if !interfaces.insert(interface_of(&unit.name)) {
                        return Err(TopologyError::SeveralSharedUnits {
                            pool: pool.id.clone(),
                            interface: interface_of(&unit.name).to_string(),
                        });
                    }
                }
            }
        }
        let mut names = HashSet::new();
        for set in &self.service_sets {
            if !names.insert(set.name.as_str()) {
                return Err(TopologyError::DuplicateServiceSet(set.name.clone()));
            }
            let members: Vec<PicId> = match &set.interface {
                ServicesInterface::Pic(pic) => vec![*pic],
                ServicesInterface::Ams { name, members } => {
                    if members.is_empty() {
                        return Err(TopologyError::EmptyAms {
                            service_set: set.name.clone(),
                            interface: name.clone(),
                        });
                    }
                    members.clone()
                }
            };
            if let Some(pic) = members.iter().find(|p| !pics.contains(p)) {
                return Err(TopologyError::UnknownPic {
                    service_set: set.name.clone(),
                    pic: *pic,
                });
            }
            if let Some(pool_id) = &set.pool_id {
                let pool =
                    pools
                        .get(pool_id.as_str())
                        .ok_or_else(|| TopologyError::UnknownPool {
                            service_set: set.name.clone(),
                            pool: pool_id.clone(),
                        })?;
                let interface = interface_of(&set.inside_unit);
                if !pool
                    .units
                    .iter()
                    .any(|u| interface_of(&u.name) == interface)
                {
                    return Err(TopologyError::PoolNotOnInterface {
                        service_set: set.name.clone(),
                        pool: pool_id.clone(),
                        interface: interface.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> TunnelTopology {
        TunnelTopology {
            pics: vec![PicInfo {
                id: PicId(0),
                name: "ms-1/0/0".into(),
                workers: vec![WorkerId(0)],
            }],
            service_sets: vec![ServiceSetInfo {
                name: "sset".into(),
                interface: ServicesInterface::Pic(PicId(0)),
                inside_unit: "ms-1/0/0.1".into(),
                outside_unit: "ms-1/0/0.2".into(),
                vrf: None,
                next_hop_style: true,
                access_profile: "dyn".into(),
                local_gateway: "10.1.1.1".parse().unwrap(),
                local_gateway_vrf: None,
                pool_id: Some("1".into()),
            }],
            pools: vec![PoolInfo {
                id: "1".into(),
                units: vec![
                    UnitInfo {
                        name: "ms-1/0/0.10".into(),
                        mode: UnitMode::Dedicated,
                    },
                    UnitInfo {
                        name: "ms-1/0/0.11".into(),
                        mode: UnitMode::Dedicated,
                    },
                ],
            }],
        }
    }

    #[test]
    fn accepts_a_consistent_topology_and_names_each_error() {
        assert_eq!(topology().validate(), Ok(()));
        let mut mixed = topology();
        mixed.pools[0].units[1].mode = UnitMode::Shared;
        assert_eq!(mixed.validate(), Err(TopologyError::MixedPool("1".into())));
        let mut elsewhere = topology();
        elsewhere.service_sets[0].inside_unit = "ms-2/0/0.1".into();
        assert!(matches!(
            elsewhere.validate(),
            Err(TopologyError::PoolNotOnInterface { .. })
        ));
        let mut unknown = topology();
        unknown.service_sets[0].interface = ServicesInterface::Pic(PicId(5));
        assert!(matches!(
            unknown.validate(),
            Err(TopologyError::UnknownPic { .. })
        ));
        let mut shared_twice = topology();
        for unit in &mut shared_twice.pools[0].units {
            unit.mode = UnitMode::Shared;
        }
        assert!(matches!(
            shared_twice.validate(),
            Err(TopologyError::SeveralSharedUnits { .. })
        ));
        assert_eq!(interface_of("ams0.7"), "ams0");
    }
}
