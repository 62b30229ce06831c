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

    /// An AH+ESP bundle as one state (AH outside, ESP inside), so a packet is looked up once,
    /// by its AH SPI, and verified then decrypted in one pass. `None`: this builder keeps the
    /// two SAs as separate states (the worker then applies them one after the other).
    fn inbound_bundle(
        &self,
        _esp: &SaSpec,
        _ah: &SaSpec,
        _context: &SaContext,
    ) -> Option<Result<K::Inbound, String>> {
        None
    }

    /// The outbound side of [`inbound_bundle`](Self::inbound_bundle): one transform that
    /// encrypts with ESP and then authenticates with AH.
    fn outbound_bundle(
        &self,
        _esp: &SaSpec,
        _ah: &SaSpec,
        _context: &SaContext,
    ) -> Option<Result<K::Outbound, String>> {
        None
    }
}

/// The ESP and AH specs of a direction that negotiated exactly an AH+ESP bundle.
pub fn as_bundle(specs: &[SaSpec]) -> Option<(&SaSpec, &SaSpec)> {
    match specs {
        [a, b] => match (a.protocol, b.protocol) {
            (IpsecProtocol::Esp, IpsecProtocol::Ah) => Some((a, b)),
            (IpsecProtocol::Ah, IpsecProtocol::Esp) => Some((b, a)),
            _ => None,
        },
        _ => None,
    }
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
