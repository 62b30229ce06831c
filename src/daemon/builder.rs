//! Builds the worker-side SA state (ESP/AH engine plus the routing context around it) from the
//! specs the IKE responder negotiated or the configuration gave, for the tunnel manager.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use control::tunnels::{SaBuilder, SaContext};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa, SharedCounters};
use dataplane::pipeline::{GatewaySas, TunnelInbound, TunnelOutbound};
use dataplane::sa::{Direction, SaSpec};

use super::control_loop::coarse_now;

/// Every installed SA's counters, for `show … statistics` (read without stopping workers).
/// Keyed by direction too: manual SAs often use one SPI both ways.
pub type SaCounterRegistry = Arc<Mutex<HashMap<(Direction, u32), SharedCounters>>>;

pub struct GatewayBuilder {
    pub counters: SaCounterRegistry,
}

impl GatewayBuilder {
    fn register(&self, direction: Direction, spi: u32, counters: SharedCounters) {
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

    fn inbound_bundle(
        &self,
        esp: &SaSpec,
        ah: &SaSpec,
        context: &SaContext,
    ) -> Option<Result<TunnelInbound, String>> {
        let built = InboundSa::new_bundle(esp, ah, coarse_now(), Backend::Fastest)
            .map_err(|e| e.to_string())
            .map(|sa| {
                // One state, one set of counters: `show` finds it under either SPI.
                self.register(Direction::Inbound, esp.spi, sa.counters());
                self.register(Direction::Inbound, ah.spi, sa.counters());
                TunnelInbound {
                    sa,
                    inside_vrf: context.inside_vrf,
                    proxy: context.proxy,
                }
            });
        Some(built)
    }

    fn outbound_bundle(
        &self,
        esp: &SaSpec,
        ah: &SaSpec,
        context: &SaContext,
    ) -> Option<Result<TunnelOutbound, String>> {
        let built = OutboundSa::new_bundle(esp, ah, coarse_now(), Backend::Fastest)
            .map_err(|e| e.to_string())
            .map(|sa| {
                self.register(Direction::Outbound, esp.spi, sa.counters());
                self.register(Direction::Outbound, ah.spi, sa.counters());
                TunnelOutbound {
                    sa,
                    outer_vrf: context.outer_vrf,
                }
            });
        Some(built)
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
