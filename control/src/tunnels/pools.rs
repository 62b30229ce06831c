//! `ipsec-interface-id` pools: a dedicated unit per link-type tunnel (refuse when none is
//! free), or the pool's one shared unit per services interface for policy-based tunnels.

use std::collections::{BTreeSet, HashMap};

use dataplane::tables::{TunnelId, UnitId};
use serde::Serialize;

use super::directory::UnitDirectory;
use super::topology::{interface_of, PoolInfo, UnitMode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("ipsec-interface-id pool {0} is not defined")]
    UnknownPool(String),
    #[error("ipsec-interface-id pool {pool} has no free dedicated unit on {interface}")]
    Exhausted { pool: String, interface: String },
}

struct PoolUnit {
    name: String,
    unit: UnitId,
    /// Dedicated: at most one. Shared: every tunnel on the unit.
    holders: Vec<TunnelId>,
}

struct Pool {
    mode: UnitMode,
    units: Vec<PoolUnit>,
    /// Dedicated pools: indices of free units per services interface, lowest first, so a
    /// take is O(log n) in pools of many thousand units and reuse is deterministic.
    free: HashMap<String, BTreeSet<usize>>,
    index_of: HashMap<UnitId, usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolUnitView {
    pub name: String,
    pub holders: Vec<TunnelId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolView {
    pub id: String,
    pub mode: UnitMode,
    pub units: Vec<PoolUnitView>,
}

#[derive(Default)]
pub struct InterfacePools {
    pools: HashMap<String, Pool>,
    order: Vec<String>,
}

impl InterfacePools {
    pub fn new(infos: &[PoolInfo], units: &mut UnitDirectory) -> Self {
        let mut pools = InterfacePools::default();
        for info in infos {
            let mode = info.units.first().map_or(UnitMode::Dedicated, |u| u.mode);
            let pool_units: Vec<PoolUnit> = info
                .units
                .iter()
                .map(|u| PoolUnit {
                    name: u.name.clone(),
                    unit: units.intern(&u.name),
                    holders: Vec::new(),
                })
                .collect();
            let mut free: HashMap<String, BTreeSet<usize>> = HashMap::new();
            if mode == UnitMode::Dedicated {
                for (index, unit) in info.units.iter().enumerate() {
                    free.entry(interface_of(&unit.name).to_string())
                        .or_default()
                        .insert(index);
                }
            }
            let index_of = pool_units_index(&pool_units);
            pools.order.push(info.id.clone());
            pools.pools.insert(
                info.id.clone(),
                Pool {
                    mode,
                    units: pool_units,
                    free,
                    index_of,
                },
            );
        }
        pools
    }

    /// Gives `tunnel` a unit of `pool` on services interface `interface`.
    pub fn take(
        &mut self,
        pool_id: &str,
        interface: &str,
        tunnel: TunnelId,
    ) -> Result<UnitId, PoolError> {
        let pool = self
            .pools
            .get_mut(pool_id)
            .ok_or_else(|| PoolError::UnknownPool(pool_id.to_string()))?;
        let exhausted = || PoolError::Exhausted {
            pool: pool_id.to_string(),
            interface: interface.to_string(),
        };
        let index = match pool.mode {
            UnitMode::Dedicated => pool
                .free
                .get_mut(interface)
                .and_then(BTreeSet::pop_first)
                .ok_or_else(exhausted)?,
            UnitMode::Shared => pool
                .units
                .iter()
                .position(|u| interface_of(&u.name) == interface)
                .ok_or_else(exhausted)?,
        };
        let unit = &mut pool.units[index];
        unit.holders.push(tunnel);
        Ok(unit.unit)
    }

    /// Returns `tunnel`'s hold on `unit`; false if it held none (a bug, reported by the caller).
    pub fn give_back(&mut self, pool_id: &str, unit: UnitId, tunnel: TunnelId) -> bool {
        let Some(pool) = self.pools.get_mut(pool_id) else {
            return false;
        };
        let Some(&index) = pool.index_of.get(&unit) else {
            return false;
        };
        let pool_unit = &mut pool.units[index];
        let before = pool_unit.holders.len();
        pool_unit.holders.retain(|t| *t != tunnel);
        if pool_unit.holders.len() == before {
            return false;
        }
        if pool.mode == UnitMode::Dedicated {
            pool.free
                .entry(interface_of(&pool_unit.name).to_string())
                .or_default()
                .insert(index);
        }
        true
    }

    /// Units of every pool with their holders, in configuration order.
    pub fn view(&self) -> Vec<PoolView> {
        self.order
            .iter()
            .filter_map(|id| {
                let pool = self.pools.get(id)?;
                Some(PoolView {
                    id: id.clone(),
                    mode: pool.mode,
                    units: pool
                        .units
                        .iter()
                        .map(|u| PoolUnitView {
                            name: u.name.clone(),
                            holders: u.holders.clone(),
                        })
                        .collect(),
                })
            })
            .collect()
    }

    pub fn holds(&self) -> usize {
        self.pools
            .values()
            .flat_map(|p| p.units.iter())
            .map(|u| u.holders.len())
            .sum()
    }
}

fn pool_units_index(units: &[PoolUnit]) -> HashMap<UnitId, usize> {
    units.iter().enumerate().map(|(i, u)| (u.unit, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::topology::UnitInfo;
    use super::*;

    fn pool(mode: UnitMode, names: &[&str]) -> PoolInfo {
        PoolInfo {
            id: "7".into(),
            units: names
                .iter()
                .map(|n| UnitInfo {
                    name: n.to_string(),
                    mode,
                })
                .collect(),
        }
    }

    #[test]
    fn dedicated_units_go_one_per_tunnel_and_come_back() {
        let mut units = UnitDirectory::default();
        let mut pools = InterfacePools::new(
            &[pool(
                UnitMode::Dedicated,
                &["ms-1/0/0.10", "ms-1/0/0.11", "ms-2/0/0.10"],
            )],
            &mut units,
        );
        let a = pools.take("7", "ms-1/0/0", TunnelId(0)).unwrap();
        let b = pools.take("7", "ms-1/0/0", TunnelId(1)).unwrap();
        assert_ne!(a, b);
        assert!(matches!(
            pools.take("7", "ms-1/0/0", TunnelId(2)),
            Err(PoolError::Exhausted { .. })
        ));
        assert_eq!(
            units.name(pools.take("7", "ms-2/0/0", TunnelId(3)).unwrap()),
            "ms-2/0/0.10"
        );
        assert!(pools.give_back("7", a, TunnelId(0)));
        assert!(!pools.give_back("7", a, TunnelId(0)));
        assert_eq!(pools.take("7", "ms-1/0/0", TunnelId(2)), Ok(a));
        assert!(matches!(
            pools.take("8", "ms-1/0/0", TunnelId(4)),
            Err(PoolError::UnknownPool(_))
        ));
    }

    #[test]
    fn a_shared_unit_takes_every_tunnel() {
        let mut units = UnitDirectory::default();
        let mut pools = InterfacePools::new(&[pool(UnitMode::Shared, &["ms-1/0/0.5"])], &mut units);
        let holders: Vec<UnitId> = (0..5)
            .map(|t| pools.take("7", "ms-1/0/0", TunnelId(t)).unwrap())
            .collect();
        assert!(holders.iter().all(|u| *u == holders[0]));
        assert_eq!(pools.view()[0].units[0].holders.len(), 5);
        for t in 0..5 {
            assert!(pools.give_back("7", holders[0], TunnelId(t)));
        }
        assert_eq!(pools.holds(), 0);
    }
}
