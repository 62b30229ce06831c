//! Everything a gateway is made of once its ports exist, whoever owns them: the tunnel manager
//! with the configured routes and static rules, the port table, one [`PicWorker`] per planned
//! core with its update queue and hand-off port, the punt and control rings, and the control
//! loop. `dyntun run` launches the workers on its own lcores; an embedding host drives them.

use std::path::Path;
use std::sync::Arc;

use control::tunnels::TunnelManager;
use dataplane::pipeline::ports::ETHERNET_MTU;
use dataplane::pipeline::{
    GatewaySas, NeighborTable, PicWorker, PipelineCounters, PortSetup, Ports, ResolveRequests,
};
use dataplane::tables::{
    event_queue, handoff_mesh, HandoffPort, PortId, UpdateReceiver, VrfId, WorkerId, WorkerTables,
};
use dpdk::{Mbuf, Mempool, Producer};

use super::builder;
use super::control_frames::{InjectedRings, RingFrames};
use super::control_loop::{self, ControlLoop, InterfacePort};
use super::plan::{self, Plan};

/// A planned port as it runs: which DPDK port backs the interface, and its MAC.
pub struct PortBinding {
    pub interface: String,
    pub id: PortId,
    pub mac: [u8; 6],
}

/// One worker of a services PIC, ready to run on whatever thread its owner picks.
pub struct AssembledWorker {
    pub pic: String,
    /// The configured CPU and the EAL lcore `dyntun run` maps onto it.
    pub core: u32,
    pub lcore: u32,
    pub id: WorkerId,
    pub worker: PicWorker,
    pub updates: UpdateReceiver<GatewaySas>,
    pub handoff: HandoffPort<Mbuf>,
}

pub struct Assembly {
    pub control: ControlLoop,
    pub workers: Vec<AssembledWorker>,
    /// Workers punt into clones of this.
    pub punt_tx: Producer<Mbuf>,
    /// The control thread's frames per port, for the worker that transmits them.
    pub injected: InjectedRings,
}

/// Builds the gateway of `plan` over `bindings` (one per `plan.ports`, same order). Ring
/// names start with `ring_prefix`, which must be unique in the process.
pub fn assemble(
    plan: &Plan,
    bindings: &[PortBinding],
    ring_prefix: &str,
    pool: Mempool,
    socket: Option<&Path>,
) -> Result<Assembly, String> {
    let worker_count: usize = plan.pics.iter().map(|p| p.workers.len()).sum();
    let sa_counters = builder::SaCounterRegistry::default();
    let (mut manager, queues) = TunnelManager::new(
        plan.topology.clone(),
        builder::GatewayBuilder {
            counters: sa_counters.clone(),
        },
        4096,
    )
    .map_err(|e| format!("tunnel topology: {e}"))?;
    if let Some(far) = bindings
        .iter()
        .find(|b| usize::from(b.id.0) >= dataplane::pipeline::MAX_PORTS)
    {
        return Err(format!(
            "interface {}: DPDK port {} is beyond the {} ports a worker addresses",
            far.interface,
            far.id.0,
            dataplane::pipeline::MAX_PORTS
        ));
    }
    let port_ids: Vec<PortId> = bindings.iter().map(|b| b.id).collect();
    control_loop::install_configured_routes(&mut manager, plan, &port_ids)?;
    let static_tunnels = control_loop::install_static_rules(&mut manager, plan)?;
    let mut ports = Ports::new(plan.ports.iter().zip(bindings).map(|(planned, binding)| {
        let mut setup = planned_setup(planned, plan, binding.id, binding.mac);
        setup.vrf = manager.vrf_id(planned.vrf.as_deref()).unwrap_or(VrfId(0));
        setup
    }));
    // The configuration has no interface `mtu` (commit check refuses it), so every port is
    // plain Ethernet: sealed packets that would exceed it are split or answered with ICMP.
    for binding in bindings {
        ports.set_mtu(binding.id, ETHERNET_MTU);
    }

    let neighbors = Arc::new(NeighborTable::new(4096));
    let resolve = Arc::new(ResolveRequests::new(1024));
    let rings = RingFrames::create(ring_prefix, &port_ids, pool)?;
    let mut handoffs = handoff_mesh(worker_count, 1024);
    let mut event_receivers = Vec::new();
    let mut worker_counters = Vec::new();
    let mut workers = Vec::new();
    let mut queues: Vec<_> = queues.into_iter().map(Some).collect();
    for pic in &plan.pics {
        for ((core, lcore), worker_id) in pic.cores.iter().zip(&pic.lcores).zip(&pic.workers) {
            let index = usize::from(worker_id.0);
            let updates = queues
                .iter_mut()
                .find(|q| q.as_ref().is_some_and(|q| q.worker == *worker_id))
                .and_then(Option::take)
                .ok_or_else(|| format!("worker {index} has no update queue"))?
                .updates;
            let (events, events_rx) = event_queue(1024);
            let counters = Arc::new(PipelineCounters::default());
            event_receivers.push(events_rx);
            worker_counters.push((pic.name.clone(), *worker_id, *core, counters.clone()));
            let worker = PicWorker::new(
                WorkerTables::new(*worker_id),
                ports.clone(),
                neighbors.clone(),
                resolve.clone(),
                events,
                counters,
                worker_count as u16,
            );
            workers.push(AssembledWorker {
                pic: pic.name.clone(),
                core: *core,
                lcore: *lcore,
                id: *worker_id,
                worker,
                updates,
                handoff: handoffs.remove(0),
            });
        }
    }
    let interface_ports = bindings
        .iter()
        .map(|b| InterfacePort {
            id: b.id,
            interface: b.interface.clone(),
        })
        .collect();
    let control = ControlLoop::new(
        plan,
        manager,
        sa_counters,
        static_tunnels,
        interface_ports,
        ports,
        neighbors,
        resolve,
        Box::new(rings.punted),
        Box::new(rings.sink),
        event_receivers,
        worker_counters,
        socket,
    )?;
    Ok(Assembly {
        control,
        workers,
        punt_tx: rings.punt_tx,
        injected: rings.injected,
    })
}

fn planned_setup(planned: &plan::PlannedPort, plan: &Plan, id: PortId, mac: [u8; 6]) -> PortSetup {
    let mut addresses: arrayvec::ArrayVec<_, 8> = arrayvec::ArrayVec::new();
    for (addr, _) in &planned.addresses {
        let _ = addresses.try_push(*addr);
    }
    // A local gateway inside one of this port's subnets is answered on this port too.
    for responder in &plan.responders {
        let gateway = responder.local_gateway;
        if planned
            .addresses
            .iter()
            .any(|(_, subnet)| subnet.contains(gateway))
            && !addresses.contains(&gateway)
        {
            let _ = addresses.try_push(gateway);
        }
    }
    PortSetup {
        port: id,
        mac,
        vrf: VrfId(0),
        addresses,
    }
}
