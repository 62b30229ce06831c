//! Small integer identities shared by control and workers, so that tables index arrays instead
//! of hashing names on the per-packet path. Control keeps the name ↔ id maps for `show`.

use serde::Serialize;

/// A poll-mode worker, numbered across all emulated service PICs (the number an SPI carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct WorkerId(pub u16);

/// A services logical interface unit (e.g. `ms-1/0/0.10`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UnitId(pub u32);

/// A routing instance; `VrfId::DEFAULT` holds `inet.0` and `inet6.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VrfId(pub u16);

impl VrfId {
    pub const DEFAULT: VrfId = VrfId(0);
}

/// A tunnel (one proxy pair of one peer); outbound SA bundles are indexed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TunnelId(pub u32);

/// A service set, the owner of an ordered list of static rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServiceSetId(pub u16);

/// A dataplane port (DPDK port id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortId(pub u16);

/// One implicit dynamic rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DynamicRuleId(pub u32);
