//! Builds the worker-side SA state (ESP/AH engine plus the routing context around it) from the
//! specs the IKE responder negotiated or the configuration gave, for the tunnel manager.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use control::tunnels::{SaBuilder, SaContext};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa, SaCounters};
use dataplane::pipeline::{GatewaySas, TunnelInbound, TunnelOutbound};
use dataplane::sa::{Direction, SaSpec};

use super::control_loop::coarse_now;

/// Every installed SA's counters, for `show … statistics` (read without stopping workers).
/// Keyed by direction too: manual SAs often use one SPI both ways.
pub type SaCounterRegistry = Arc<Mutex<HashMap<(Direction, u32), Arc<SaCounters>>>>;

pub struct GatewayBuilder {
    pub counters: SaCounterRegistry,
}

impl GatewayBuilder {
    fn register(&self, direction: Direction, spi: u32, counters: Arc<SaCounters>) {
        if let Ok(mut registry) = self.counters.lock() {
            registry.insert((direction, spi), counters);
        }
    }
}

impl SaBuilder<GatewaySas> for GatewayBuilder {
    fn inbound(&self, spec: &SaSpec, context: &SaContext) -> Result<TunnelInbound, String> {
        let sa = InboundSa::new(spec, coarse_now(), Backend::Fastest).map_err(|e| e.to_string())?;
        self.register(Direction::Inbound, spec.spi, sa.counters());
        Ok(TunnelInbound {
            sa,
            inside_vrf: context.inside_vrf,
            proxy: context.proxy,
        })
    }

    fn outbound(&self, spec: &SaSpec, context: &SaContext) -> Result<TunnelOutbound, String> {
        let sa =
            OutboundSa::new(spec, coarse_now(), Backend::Fastest).map_err(|e| e.to_string())?;
        self.register(Direction::Outbound, spec.spi, sa.counters());
        Ok(TunnelOutbound {
            sa,
            outer_vrf: context.outer_vrf,
        })
    }
}
