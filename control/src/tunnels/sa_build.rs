//! How the manager turns negotiated `SaSpec`s into the state workers store. The ESP engine
//! provides the real builder; `SpecSas` stores the checked specs themselves (tests, benches,
//! and any worker that builds its crypto context from the spec).

use dataplane::sa::{IpsecProtocol, ProxyPair, SaSpec};
use dataplane::tables::{SaKinds, VrfId};

/// Where the SAs being built sit: what a worker needs around the crypto state, decided by the
/// manager once the tunnel has its service set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaContext {
    /// The tunnel's proxy pair (decrypted packets must match it).
    pub proxy: ProxyPair,
    /// Routing instance of the service set's inside interface (where decrypted packets go).
    pub inside_vrf: VrfId,
    /// Routing instance of the local gateway (where the outer packets are routed).
    pub outer_vrf: VrfId,
}

pub trait SaBuilder<K: SaKinds> {
    fn inbound(&self, spec: &SaSpec, context: &SaContext) -> Result<K::Inbound, String>;
    fn outbound(&self, spec: &SaSpec, context: &SaContext) -> Result<K::Outbound, String>;
}

pub struct SpecSas;

impl SaKinds for SpecSas {
    type Inbound = SaSpec;
    type Outbound = SaSpec;
}

/// Checks what can be checked without crypto (key lengths, algorithm combinations).
pub struct CheckedSpecs;

fn check(spec: &SaSpec) -> Result<SaSpec, String> {
    if spec.keys.encryption.len() != spec.cipher.key_len() {
        return Err(format!(
            "{} needs {} key bytes, got {}",
            spec.cipher.junos_name(),
            spec.cipher.key_len(),
            spec.keys.encryption.len()
        ));
    }
    if spec.keys.integrity.len() != spec.integrity.key_len() {
        return Err(format!(
            "{} needs {} key bytes, got {}",
            spec.integrity.junos_name(),
            spec.integrity.key_len(),
            spec.keys.integrity.len()
        ));
    }
    if spec.protocol == IpsecProtocol::Ah && spec.integrity.icv_len() == 0 {
        return Err("AH without an integrity algorithm".into());
    }
    Ok(spec.clone())
}

impl SaBuilder<SpecSas> for CheckedSpecs {
    fn inbound(&self, spec: &SaSpec, _context: &SaContext) -> Result<SaSpec, String> {
        check(spec)
    }

    fn outbound(&self, spec: &SaSpec, _context: &SaContext) -> Result<SaSpec, String> {
        check(spec)
    }
}
