//! `dyntun run`: the gateway on DPDK. This module wires the parts together — EAL and ports,
//! one pinned poll-mode worker per core of each services PIC, and the control thread (IKE
//! responders, tunnel manager, ARP, the operational socket) — and takes them down again.

mod builder;
mod control_loop;
mod frames;
mod frames_v6;
mod neighbor_aging;
mod plan;
mod show;
mod signals;
pub mod socket;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::tunnels::TunnelManager;
use dataplane::pipeline::dpdk_loop::{run_worker, WorkerIo};
use dataplane::pipeline::{
    NeighborTable, PicWorker, PipelineCounters, PortSetup, Ports, ResolveRequests,
};
use dataplane::tables::{event_queue, handoff_mesh, PortId, VrfId, WorkerTables};
use dpdk::{Eal, Mempool, Port, PortConfig, RingSharing};

pub use control_loop::ControlLoop;

pub struct RunOptions {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub file_prefix: String,
    pub extra_eal: Vec<String>,
}

/// A started port, with the ring through which the control thread transmits on it.
pub struct RunningPort {
    pub port: Port,
    pub id: PortId,
    /// The configured interface it backs (`ge-0/0/0`).
    pub interface: String,
    pub control_tx: dpdk::Producer<dpdk::Mbuf>,
}

pub fn run(options: RunOptions) -> Result<(), String> {
    let text = std::fs::read_to_string(&options.config)
        .map_err(|e| format!("{}: {e}", options.config.display()))?;
    let config = control::config::parse(&text).map_err(|errors| {
        let file = options.config.display().to_string();
        errors.render(&file)
    })?;
    let plan = plan::plan(&config, &options.file_prefix, &options.extra_eal)?;
    signals::install();

    tracing::info!(args = %plan.eal_args.join(" "), "starting EAL");
    // Declared before the EAL so that it goes after it, on every way out of this function.
    let _runtime_dir = RuntimeDir(format!("/var/run/dpdk/{}", options.file_prefix));
    let eal = Eal::init(&plan.eal_args).map_err(|e| format!("EAL: {e}"))?;
    let worker_count: usize = plan.pics.iter().map(|p| p.workers.len()).sum();
    let pool = Mempool::create("dyntun_mbufs", 16383, 256, Mempool::DEFAULT_DATA_ROOM)
        .map_err(|e| e.to_string())?;

    // Ports: one rx queue per worker where the PMD has them (else worker 0 polls the single
    // queue) and one tx queue per worker; control's frames go out through worker 0.
    let mut running_ports = Vec::new();
    let mut worker_rx: Vec<Vec<dpdk::RxQueue>> = (0..worker_count).map(|_| Vec::new()).collect();
    let mut worker_tx: Vec<Vec<Option<dpdk::TxQueue>>> =
        (0..worker_count).map(|_| Vec::new()).collect();
    let mut setups = Vec::new();
    let mut injected_rings = Vec::new();
    for planned in &plan.ports {
        let port = Port::by_name(&planned.devargs).map_err(|e| {
            format!(
                "interface {}: device {}: {e}",
                planned.interface, planned.devargs
            )
        })?;
        let info = port.info().map_err(|e| e.to_string())?;
        let rx_queues = (worker_count as u16).min(info.max_rx_queues.max(1));
        let tx_queues = worker_count as u16;
        if info.max_tx_queues < tx_queues || info.max_rx_queues < 1 {
            return Err(format!(
                "interface {}: device {} has {} tx queues, dyntun needs {tx_queues} (one per worker; for net_af_packet add qpairs={tx_queues})",
                planned.interface, planned.devargs, info.max_tx_queues
            ));
        }
        let config = PortConfig {
            rx_queues,
            tx_queues,
            rss: rx_queues > 1,
            ..PortConfig::default()
        };
        let mut queues = port
            .configure(&config, pool)
            .map_err(|e| format!("interface {}: {e}", planned.interface))?;
        port.start()
            .map_err(|e| format!("interface {}: {e}", planned.interface))?;
        let _ = port.set_promiscuous(true);
        let mac = port.mac_address().map_err(|e| e.to_string())?;
        let id = PortId(port.id());
        let (control_tx, injected) = dpdk::ring::<dpdk::Mbuf>(
            &format!("dyntun_ctl_tx{}", id.0),
            1024,
            RingSharing {
                multi_producer: false,
                multi_consumer: false,
            },
        )
        .map_err(|e| e.to_string())?;
        injected_rings.push((id, injected));
        for (worker, rx) in queues.rx.drain(..).enumerate() {
            worker_rx[worker].push(rx);
        }
        for (worker, tx) in queues.tx.drain(..).enumerate() {
            let slots = &mut worker_tx[worker];
            while slots.len() <= usize::from(id.0) {
                slots.push(None);
            }
            slots[usize::from(id.0)] = Some(tx);
        }
        setups.push((planned.vrf.clone(), planned_setup(planned, &plan, id, mac)));
        tracing::info!(interface = %planned.interface, device = %planned.devargs, port = id.0,
            rx_queues, "port started");
        running_ports.push(RunningPort {
            port,
            id,
            interface: planned.interface.clone(),
            control_tx,
        });
    }
    let sa_counters = builder::SaCounterRegistry::default();
    let (mut manager, queues) = TunnelManager::new(
        plan.topology.clone(),
        builder::GatewayBuilder {
            counters: sa_counters.clone(),
        },
        4096,
    )
    .map_err(|e| format!("tunnel topology: {e}"))?;
    let port_ids: Vec<PortId> = running_ports.iter().map(|p| p.id).collect();
    control_loop::install_configured_routes(&mut manager, &plan, &port_ids)?;
    let static_tunnels = control_loop::install_static_rules(&mut manager, &plan)?;
    let ports = Ports::new(setups.into_iter().map(
        |(planned_vrf, mut setup): (Option<String>, PortSetup)| {
            setup.vrf = manager.vrf_id(planned_vrf.as_deref()).unwrap_or(VrfId(0));
            setup
        },
    ));

    let neighbors = Arc::new(NeighborTable::new(4096));
    let resolve = Arc::new(ResolveRequests::new(1024));
    let (punt_tx, punt_rx) = dpdk::ring::<dpdk::Mbuf>(
        "dyntun_punt",
        4096,
        RingSharing {
            multi_producer: true,
            multi_consumer: false,
        },
    )
    .map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut handoffs = handoff_mesh(worker_count, 1024);
    let mut event_receivers = Vec::new();
    let mut worker_counters = Vec::new();
    let mut launched = LaunchedWorkers {
        stop: stop.clone(),
        handles: Vec::new(),
    };
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
            let mut worker = PicWorker::new(
                WorkerTables::new(*worker_id),
                ports.clone(),
                neighbors.clone(),
                resolve.clone(),
                events,
                counters,
                worker_count as u16,
            );
            let mut io = WorkerIo {
                rx: std::mem::take(&mut worker_rx[index]),
                tx: std::mem::take(&mut worker_tx[index]),
                punt: punt_tx
                    .try_clone()
                    .ok_or("punt ring is not multi-producer")?,
                handoff: handoffs.remove(0),
                // The first worker sends the control thread's frames.
                injected: std::mem::take(&mut injected_rings),
                updates,
                pool,
                stop: stop.clone(),
                idle_polls_before_sleep: 64,
                idle_sleep: Duration::from_micros(u64::from(plan.idle_backoff_us)),
            };
            let handle = dpdk::lcore::launch(*lcore, move || {
                run_worker(&mut worker, &mut io);
                0
            })
            .map_err(|e| format!("pic {}: core {core}: {e}", pic.name))?;
            tracing::info!(pic = %pic.name, core, worker = worker_id.0, "worker started");
            launched.handles.push(handle);
        }
    }

    let mut control = ControlLoop::new(
        &plan,
        manager,
        sa_counters,
        static_tunnels,
        running_ports,
        ports,
        neighbors,
        resolve,
        punt_rx,
        pool,
        event_receivers,
        worker_counters,
        &options.socket,
    )?;
    tracing::info!(socket = %options.socket.display(), "dyntun running");
    let result = control.run(signals::stop_requested);

    tracing::info!("stopping: deleting tunnels, stopping workers and ports");
    control.shut_down();
    drop(launched);
    control.log_final_counters();
    let ports = control.into_ports();
    for running in ports {
        let _ = running.port.stop();
        // The control ring goes here, while DPDK still runs.
        drop(running);
    }
    drop(punt_tx);
    let _ = eal.cleanup();
    result
}

/// DPDK's runtime directory for our `--file-prefix`: EAL leaves it behind, we do not.
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Workers stop and are joined whenever this goes, including on an early error return, so a
/// failed start-up never leaves a polling lcore behind.
struct LaunchedWorkers {
    stop: Arc<AtomicBool>,
    handles: Vec<dpdk::lcore::LaunchedWorker>,
}

impl Drop for LaunchedWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.handles.drain(..) {
            handle.wait();
        }
    }
}

fn planned_setup(
    planned: &plan::PlannedPort,
    plan: &plan::Plan,
    id: PortId,
    mac: [u8; 6],
) -> PortSetup {
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
