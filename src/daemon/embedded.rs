//! dyntun inside a host's DPDK process (a vRouter): the host owns the EAL, the ports, the
//! lcores and the mbufs. The gateway is built from configuration text with each configured
//! interface bound to one of the host's port ids; the control thread is a thread of ours; the
//! PIC workers are [`HostWorker`]s the host drives on its own lcores.
//!
//! Frames the workers punt reach the control thread through a DPDK ring inside the gateway, and
//! the control thread's own frames (IKE, ARP, ND, ICMP replies) come back through worker 0's
//! per-port transmit queues, next to the forwarded traffic, so the host has one path to tx.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use control::config::Device;
use dataplane::pipeline::PipelineCounters;
use dataplane::tables::PortId;
use dpdk::{Mbuf, Mempool, Producer};

use super::assembly::{assemble, PortBinding};
use super::control_loop::{ControlLoop, OperationalRequest};
use super::events::EventObserver;
use super::host_worker::HostWorker;
use super::plan;
use super::socket::Request;

/// What the host says when it creates a gateway.
pub struct EmbeddedOptions {
    pub config_text: String,
    /// Names the configuration in error messages (`NAME:LINE:COL: error: …`).
    pub config_name: String,
    /// Each configured physical interface (`ge-0/0/0`) and the host's DPDK port id behind it.
    pub ports: Vec<(String, u16)>,
    /// The operational socket `dyntun show` talks to, if the host wants one.
    pub socket: Option<PathBuf>,
}

/// The commit check alone: every error as `NAME:LINE:COL: error: PATH: WHAT`.
pub fn check_config(text: &str, name: &str) -> Result<(), String> {
    control::config::parse(text)
        .map(|_| ())
        .map_err(|errors| errors.render(name))
}

pub struct EmbeddedGateway {
    /// Here until the control thread starts, and again once it has stopped.
    control: Option<ControlLoop>,
    thread: Option<JoinHandle<ControlLoop>>,
    control_thread: Option<ThreadId>,
    stop: Arc<AtomicBool>,
    requests: crossbeam::channel::Sender<OperationalRequest>,
    workers: Vec<Option<HostWorker>>,
    /// Each worker's counters, kept here so any thread can read them while the host drives
    /// the worker itself.
    worker_counters: Vec<Arc<PipelineCounters>>,
    ports: Vec<PortId>,
    /// Workers punt into clones; kept so that the ring outlives every worker's handle.
    _punt_tx: Producer<Mbuf>,
}

/// Gateways created in this process, so that pool and ring names never collide.
static CREATED: AtomicU32 = AtomicU32::new(0);

impl EmbeddedGateway {
    /// Checks the configuration (errors exactly as `dyntun check` prints them), binds its
    /// interfaces to the host's ports and builds everything but the control thread. The EAL
    /// must be initialised and the ports configured and started by the host.
    pub fn create(options: EmbeddedOptions) -> Result<EmbeddedGateway, String> {
        let mut config = control::config::parse(&options.config_text)
            .map_err(|errors| errors.render(&options.config_name))?;
        let mut devices = BTreeMap::new();
        for (interface, port) in &options.ports {
            if !config.interfaces.contains_key(interface) {
                return Err(format!(
                    "{}: port binding: interface {interface} is not configured",
                    options.config_name
                ));
            }
            if devices
                .insert(
                    interface.clone(),
                    Device::Virtual(format!("host port {port}")),
                )
                .is_some()
            {
                return Err(format!(
                    "{}: port binding: interface {interface} is bound twice",
                    options.config_name
                ));
            }
        }
        // The host's bindings replace the `dataplane interface … device` entries: its ports
        // exist already. PICs and their core counts still come from the configuration.
        config.dataplane.devices = devices;
        let plan = plan::plan(&config, "embedded", &[])?;
        let known = dpdk::Port::all();
        let mut bindings = Vec::new();
        for planned in &plan.ports {
            let Some((_, id)) = options.ports.iter().find(|(i, _)| *i == planned.interface) else {
                return Err(format!("interface {}: no host port", planned.interface));
            };
            let port = known.iter().find(|p| p.id() == *id).ok_or_else(|| {
                format!(
                    "interface {}: DPDK port {id} does not exist in this process",
                    planned.interface
                )
            })?;
            let mac = port
                .mac_address()
                .map_err(|e| format!("interface {}: {e}", planned.interface))?;
            bindings.push(PortBinding {
                interface: planned.interface.clone(),
                id: PortId(*id),
                mac,
            });
        }
        let serial = CREATED.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("dtemb{serial}");
        let pool = Mempool::create(
            &format!("{prefix}_pool"),
            8191,
            256,
            Mempool::DEFAULT_DATA_ROOM,
        )
        .map_err(|e| e.to_string())?;
        let assembly = assemble(&plan, &bindings, &prefix, pool, options.socket.as_deref())?;
        let ports: Vec<PortId> = bindings.iter().map(|b| b.id).collect();
        let mut injected = Some(assembly.injected);
        let mut workers = Vec::new();
        for assembled in assembly.workers {
            let punt = assembly
                .punt_tx
                .try_clone()
                .ok_or("punt ring is not multi-producer")?;
            workers.push(Some(HostWorker::new(
                assembled.worker,
                assembled.updates,
                assembled.handoff,
                punt,
                // Worker 0 (the first planned) carries the control thread's frames.
                injected.take().unwrap_or_default(),
                pool,
                &ports,
            )));
        }
        let worker_counters = workers
            .iter()
            .flatten()
            .map(|w| w.counters().clone())
            .collect();
        let (requests, requests_rx) = crossbeam::channel::unbounded();
        let mut control = assembly.control;
        control.serve_requests(requests_rx);
        Ok(EmbeddedGateway {
            control: Some(control),
            thread: None,
            control_thread: None,
            stop: Arc::new(AtomicBool::new(false)),
            requests,
            workers,
            worker_counters,
            ports,
            _punt_tx: assembly.punt_tx,
        })
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    pub fn ports(&self) -> &[PortId] {
        &self.ports
    }

    /// Worker `index`'s counters, readable while the worker runs.
    pub fn worker_counters(&self, index: usize) -> Option<Arc<PipelineCounters>> {
        self.worker_counters.get(index).cloned()
    }

    /// Hands worker `index` to the caller, once.
    pub fn take_worker(&mut self, index: usize) -> Option<HostWorker> {
        self.workers.get_mut(index).and_then(Option::take)
    }

    /// Registers the tunnel and route observer; only before [`start`](Self::start).
    pub fn observe(&mut self, observer: EventObserver) -> Result<(), String> {
        match self.control.as_mut() {
            Some(control) if self.thread.is_none() => {
                control.observe(observer);
                Ok(())
            }
            _ => Err("the event callback must be set before the control thread starts".into()),
        }
    }

    /// Starts the control thread (IKE, tunnels, ARP/ND, the operational socket).
    pub fn start(&mut self) -> Result<(), String> {
        if self.thread.is_some() {
            return Err("the control thread is already running".into());
        }
        let Some(mut control) = self.control.take() else {
            return Err("the gateway has been stopped".into());
        };
        if self.stop.load(Ordering::SeqCst) {
            self.control = Some(control);
            return Err("the gateway has been stopped".into());
        }
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("dyntun-control".into())
            .spawn(move || {
                if let Err(e) = control.run(|| stop.load(Ordering::Relaxed)) {
                    tracing::warn!(error = %e, "control loop ended with an error");
                }
                control.shut_down();
                control
            })
            .map_err(|e| format!("control thread: {e}"))?;
        self.control_thread = Some(thread.thread().id());
        self.thread = Some(thread);
        Ok(())
    }

    /// Asks the control thread to delete every tunnel (telling the peers) and stop; returns at
    /// once. The deletes leave through worker 0's transmit queues.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the control thread has finished (or never ran).
    pub fn is_stopped(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the control thread and waits for it.
    pub fn stop(&mut self) -> Result<(), String> {
        self.request_stop();
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(control) => self.control = Some(control),
                Err(_) => return Err("the control thread panicked".into()),
            }
        }
        Ok(())
    }

    /// Answers a `show …` / `clear …` command like `dyntun show` does (`json` as `--json`).
    /// Not from the control thread itself (e.g. inside the event observer).
    pub fn ask(&mut self, command: &str, json: bool) -> Result<String, String> {
        let request = Request {
            words: command.split_whitespace().map(str::to_string).collect(),
            json,
        };
        if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            self.stop()?;
        }
        if let Some(control) = self.control.as_mut() {
            return Ok(control.answer(&request));
        }
        if self.control_thread == Some(std::thread::current().id()) {
            return Err("operational requests cannot be made from the control thread".into());
        }
        let (reply, answer) = crossbeam::channel::bounded(1);
        self.requests
            .send(OperationalRequest { request, reply })
            .map_err(|_| "the control thread has stopped".to_string())?;
        answer
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the control thread did not answer within 10 s".to_string())
    }
}

impl Drop for EmbeddedGateway {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
