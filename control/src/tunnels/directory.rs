//! Name ↔ number maps for services units and routing instances: workers index by number,
//! operators read names.

use std::collections::HashMap;

use dataplane::tables::{UnitId, VrfId};

#[derive(Default)]
pub struct UnitDirectory {
    names: Vec<String>,
    ids: HashMap<String, UnitId>,
}

impl UnitDirectory {
    /// The id of `name`, assigned on first sight.
    pub fn intern(&mut self, name: &str) -> UnitId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = UnitId(self.names.len() as u32);
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    pub fn id(&self, name: &str) -> Option<UnitId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: UnitId) -> &str {
        self.names.get(id.0 as usize).map_or("?", String::as_str)
    }
}

/// Routing instances; `VrfId::DEFAULT` is the master instance (`inet.0`, `inet6.0`).
pub struct VrfDirectory {
    names: Vec<Option<String>>,
}

impl Default for VrfDirectory {
    fn default() -> Self {
        VrfDirectory { names: vec![None] }
    }
}

impl VrfDirectory {
    pub fn intern(&mut self, vrf: Option<&str>) -> VrfId {
        let Some(name) = vrf else {
            return VrfId::DEFAULT;
        };
        if let Some(index) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return VrfId(index as u16);
        }
        self.names.push(Some(name.to_string()));
        VrfId((self.names.len() - 1) as u16)
    }

    pub fn id(&self, vrf: Option<&str>) -> Option<VrfId> {
        match vrf {
            None => Some(VrfId::DEFAULT),
            Some(name) => self
                .names
                .iter()
                .position(|n| n.as_deref() == Some(name))
                .map(|i| VrfId(i as u16)),
        }
    }

    /// Junos table name: `inet.0`, `inet6.0`, `VPN-A.inet.0`, ...
    pub fn table_name(&self, vrf: VrfId, ipv6: bool) -> String {
        let family = if ipv6 { "inet6.0" } else { "inet.0" };
        match self
            .names
            .get(usize::from(vrf.0))
            .and_then(|n| n.as_deref())
        {
            Some(name) => format!("{name}.{family}"),
            None => family.to_string(),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = VrfId> {
        (0..self.names.len()).map(|i| VrfId(i as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tables_follow_junos() {
        let mut units = UnitDirectory::default();
        let a = units.intern("ms-1/0/0.10");
        assert_eq!(units.intern("ms-1/0/0.10"), a);
        assert_ne!(units.intern("ms-1/0/0.11"), a);
        assert_eq!(units.name(a), "ms-1/0/0.10");
        let mut vrfs = VrfDirectory::default();
        let vpn = vrfs.intern(Some("VPN-A"));
        assert_eq!(vrfs.intern(None), VrfId::DEFAULT);
        assert_eq!(vrfs.table_name(VrfId::DEFAULT, false), "inet.0");
        assert_eq!(vrfs.table_name(VrfId::DEFAULT, true), "inet6.0");
        assert_eq!(vrfs.table_name(vpn, false), "VPN-A.inet.0");
        assert_eq!(vrfs.id(Some("VPN-A")), Some(vpn));
        assert_eq!(vrfs.id(Some("nope")), None);
    }
}
