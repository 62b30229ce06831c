//! `dyntun run`: the gateway on DPDK. This module wires the parts together — EAL and ports,
//! one pinned poll-mode worker per core of each services PIC, and the control thread (IKE
//! responders, tunnel manager, ARP, the operational socket) — and takes them down again.

mod assembly;
mod builder;
mod control_frames;
mod control_loop;
pub mod embedded;
pub mod events;
mod frames;
mod frames_v6;
pub mod host_worker;
mod neighbor_aging;
mod plan;
mod show;
mod signals;
pub mod socket;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataplane::pipeline::dpdk_loop::{run_worker, WorkerIo};
use dataplane::tables::PortId;
use dpdk::{Eal, Mempool, Port, PortConfig};

use assembly::{assemble, PortBinding};
pub use control_loop::ControlLoop;

pub struct RunOptions {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub file_prefix: String,
    pub extra_eal: Vec<String>,
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
    let pool = Mempool::create("dyntun_mbufs", 16383, 256, plan.mbuf_data_room)
        .map_err(|e| e.to_string())?;

    // Ports: one rx queue per worker where the PMD has them (else worker 0 polls the single
    // queue) and one tx queue per worker; control's frames go out through worker 0.
    let mut started_ports = Vec::new();
    let mut bindings = Vec::new();
    let mut worker_rx: Vec<Vec<dpdk::RxQueue>> = (0..worker_count).map(|_| Vec::new()).collect();
    let mut worker_tx: Vec<Vec<Option<dpdk::TxQueue>>> =
        (0..worker_count).map(|_| Vec::new()).collect();
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
        tracing::info!(interface = %planned.interface, device = %planned.devargs, port = id.0,
            rx_queues, "port started");
        bindings.push(PortBinding {
            interface: planned.interface.clone(),
            id,
            mac,
        });
        started_ports.push(port);
    }
    let assembly = assemble(&plan, &bindings, "dyntun", pool, Some(&options.socket))?;
    let mut control = assembly.control;
    let mut injected = Some(assembly.injected);
    let stop = Arc::new(AtomicBool::new(false));
    let mut launched = LaunchedWorkers {
        stop: stop.clone(),
        handles: Vec::new(),
    };
    for assembled in assembly.workers {
        let index = usize::from(assembled.id.0);
        let mut worker = assembled.worker;
        let mut io = WorkerIo {
            rx: std::mem::take(&mut worker_rx[index]),
            tx: std::mem::take(&mut worker_tx[index]),
            punt: assembly
                .punt_tx
                .try_clone()
                .ok_or("punt ring is not multi-producer")?,
            handoff: assembled.handoff,
            // The first worker sends the control thread's frames.
            injected: injected.take().unwrap_or_default(),
            updates: assembled.updates,
            pool,
            stop: stop.clone(),
            idle_polls_before_sleep: 64,
            idle_sleep: Duration::from_micros(u64::from(plan.idle_backoff_us)),
        };
        let handle = dpdk::lcore::launch(assembled.lcore, move || {
            run_worker(&mut worker, &mut io);
            0
        })
        .map_err(|e| format!("pic {}: core {}: {e}", assembled.pic, assembled.core))?;
        tracing::info!(pic = %assembled.pic, core = assembled.core, worker = assembled.id.0, "worker started");
        launched.handles.push(handle);
    }

    tracing::info!(socket = %options.socket.display(), "dyntun running");
    let result = control.run(signals::stop_requested);

    tracing::info!("stopping: deleting tunnels, stopping workers and ports");
    control.shut_down();
    drop(launched);
    control.log_final_counters();
    for port in &started_ports {
        let _ = port.stop();
    }
    // The control rings go here, while DPDK still runs.
    drop(control);
    drop(assembly.punt_tx);
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
