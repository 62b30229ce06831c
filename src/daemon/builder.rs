//! Builds the worker-side SA state (ESP/AH engine plus the routing context around it) from the
//! specs the IKE responder negotiated, for the tunnel manager.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use control::tunnels::SaBuilder;
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa, SaCounters};
use dataplane::pipeline::{GatewaySas, TunnelInbound, TunnelOutbound};
use dataplane::sa::{Direction, ProxyPair, SaSpec};
use dataplane::tables::VrfId;

/// What the SAs of the tunnel being installed need besides their spec; the control loop sets
/// it just before it hands the tunnel to the manager.
#[derive(Clone, Copy, Debug)]
pub struct TunnelContext {
    pub inside_vrf: VrfId,
    pub outer_vrf: VrfId,
    pub proxy: ProxyPair,
    /// Seconds on the workers' coarse clock, for the SA's lifetime start.
    pub now: u64,
}

/// Every installed SA's counters by SPI, for `show … statistics` (read without stopping workers).
/// Keyed by direction too: manual SAs often use one SPI both ways.
pub type SaCounterRegistry = Arc<Mutex<HashMap<(Direction, u32), Arc<SaCounters>>>>;

pub struct GatewayBuilder {
    pub context: Arc<Mutex<Option<TunnelContext>>>,
    pub counters: SaCounterRegistry,
}

impl GatewayBuilder {
    fn register(&self, direction: Direction, spi: u32, counters: Arc<SaCounters>) {
        if let Ok(mut registry) = self.counters.lock() {
            registry.insert((direction, spi), counters);
        }
    }

    fn context(&self) -> Result<TunnelContext, String> {
        self.context
            .lock()
            .map_err(|_| "tunnel context lock poisoned".to_string())?
            .ok_or_else(|| "no tunnel context set".to_string())
    }
}

impl SaBuilder<GatewaySas> for GatewayBuilder {
    fn inbound(&self, spec: &SaSpec) -> Result<TunnelInbound, String> {
        let context = self.context()?;
        let sa = InboundSa::new(spec, context.now, Backend::Fastest).map_err(|e| e.to_string())?;
        self.register(Direction::Inbound, spec.spi, sa.counters());
        Ok(TunnelInbound {
            sa,
            inside_vrf: context.inside_vrf,
            proxy: context.proxy,
        })
    }

    fn outbound(&self, spec: &SaSpec) -> Result<TunnelOutbound, String> {
        let context = self.context()?;
        let sa = OutboundSa::new(spec, context.now, Backend::Fastest).map_err(|e| e.to_string())?;
        self.register(Direction::Outbound, spec.spi, sa.counters());
        Ok(TunnelOutbound {
            sa,
            outer_vrf: context.outer_vrf,
        })
    }
}
