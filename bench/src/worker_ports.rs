//! The whole PIC worker loop through real DPDK ports: `run_worker` (rx burst → `process_burst`
//! → tx burst, table updates, hand-off, counters) runs on its own lcore over two `net_ring`
//! ports, and a generator on the main lcore plays the wire — it transmits frames into the ring
//! port joined back to back with the gateway's rx port and receives from the one joined with
//! its tx port. The worker is charged the CPU time of its thread (/proc schedstat); the
//! generator's work (filling frames, freeing what comes out) stands in for the NIC.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::pipeline::dpdk_loop::{run_worker, WorkerIo};
use dataplane::pipeline::{GatewaySas, PicWorker};
use dataplane::tables::{handoff_mesh, update_queue, PortId, UpdateSender};
use dpdk::{lcore, MbufBurst, Mempool, Port, PortConfig, RingSharing, RxQueue, TxQueue};

use crate::gateway_streams::{GatewayPorts, Size, Suite, Traffic, BURST};
use crate::testpmd::thread_schedstat_ns;

static RIGS: AtomicUsize = AtomicUsize::new(0);

/// The generator's end of one back-to-back ring link.
pub struct WireEnd {
    pub rx: RxQueue,
    pub tx: TxQueue,
}

/// Two ring links, outside and inside: the gateway's ends go to the worker, the generator keeps
/// the others.
pub struct RingRig {
    pub gateway: GatewayPorts,
    /// Joined with the gateway's outside port.
    pub outside_wire: WireEnd,
    /// Joined with the gateway's inside port.
    pub inside_wire: WireEnd,
    /// The gateway ends, handed to each worker loop in turn and taken back when it stops.
    worker_io: Option<WorkerIo>,
    /// Kept so that the workers' update queue stays connected.
    _updates: UpdateSender<GatewaySas>,
    ports: Vec<Port>,
}

fn start_port(port: &Port, pool: Mempool) -> Result<(RxQueue, TxQueue), String> {
    let mut queues = port
        .configure(&PortConfig::default(), pool)
        .map_err(|e| e.to_string())?;
    port.start().map_err(|e| e.to_string())?;
    match (queues.rx.pop(), queues.tx.pop()) {
        (Some(rx), Some(tx)) => Ok((rx, tx)),
        _ => Err(format!("{} has no queue pair", port.name())),
    }
}

impl RingRig {
    pub fn build(pool: Mempool, ring_slots: u32) -> Result<RingRig, String> {
        // DPDK ring and port names live as long as the EAL: every rig needs its own.
        let n = RIGS.fetch_add(1, Ordering::Relaxed);
        let (gw_out, wire_out) =
            Port::ring_pair(&format!("gwo{n}"), &format!("wio{n}"), ring_slots)
                .map_err(|e| e.to_string())?;
        let (gw_in, wire_in) = Port::ring_pair(&format!("gwi{n}"), &format!("wii{n}"), ring_slots)
            .map_err(|e| e.to_string())?;
        let gateway = GatewayPorts {
            outside: PortId(gw_out.id()),
            inside: PortId(gw_in.id()),
        };
        let (out_rx, out_tx) = start_port(&gw_out, pool)?;
        let (in_rx, in_tx) = start_port(&gw_in, pool)?;
        let (wo_rx, wo_tx) = start_port(&wire_out, pool)?;
        let (wi_rx, wi_tx) = start_port(&wire_in, pool)?;
        let (worker_io, updates) = worker_io(
            pool,
            vec![out_rx, in_rx],
            vec![(gateway.outside, out_tx), (gateway.inside, in_tx)],
        )?;
        Ok(RingRig {
            gateway,
            outside_wire: WireEnd {
                rx: wo_rx,
                tx: wo_tx,
            },
            inside_wire: WireEnd {
                rx: wi_rx,
                tx: wi_tx,
            },
            worker_io: Some(worker_io),
            _updates: updates,
            ports: vec![gw_out, gw_in, wire_out, wire_in],
        })
    }

    /// Starts `worker`'s poll loop on `lcore` with this rig's gateway ports; `land` takes them
    /// back for the next worker.
    pub fn launch(&mut self, worker: PicWorker, lcore_id: u32) -> Result<RunningWorker, String> {
        let mut io = self
            .worker_io
            .take()
            .ok_or("the previous worker has not landed")?;
        io.stop.store(false, Ordering::Relaxed);
        let stop = io.stop.clone();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (home_tx, home) = std::sync::mpsc::channel();
        let launched = lcore::launch(lcore_id, move || {
            let _ = tid_tx.send(current_tid());
            let mut worker = worker;
            run_worker(&mut worker, &mut io);
            let _ = home_tx.send((worker, io));
            0
        })
        .map_err(|e| e.to_string())?;
        let tid = tid_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the worker lcore did not start".to_string())?;
        Ok(RunningWorker {
            launched: Some(launched),
            stop,
            tid,
            home,
        })
    }

    /// Stops `running` and takes the gateway ports back; returns its worker (None if the loop
    /// panicked, in which case the ports are lost to this rig).
    pub fn land(&mut self, mut running: RunningWorker) -> Option<PicWorker> {
        running.stop.store(true, Ordering::Relaxed);
        running.launched.take()?.wait();
        let (worker, io) = running.home.try_recv().ok()?;
        self.worker_io = Some(io);
        Some(worker)
    }

    pub fn stop_ports(&self) {
        for p in &self.ports {
            let _ = p.stop();
        }
    }
}

fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// A worker loop running on its lcore.
pub struct RunningWorker {
    launched: Option<lcore::LaunchedWorker>,
    stop: Arc<AtomicBool>,
    tid: u32,
    home: Receiver<(PicWorker, WorkerIo)>,
}

impl RunningWorker {
    /// CPU time of the worker's thread so far.
    pub fn cpu_ns(&self) -> u64 {
        thread_schedstat_ns(std::process::id(), self.tid).unwrap_or(0)
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(l) = self.launched.take() {
            l.wait();
        }
    }
}

/// What one row through the ports achieved.
#[derive(Clone, Debug, Default)]
pub struct PortRow {
    /// Frames the generator got back from the gateway's tx port.
    pub delivered: u64,
    /// Frames the gateway's rx ring accepted.
    pub accepted: u64,
    /// LAN-side bytes (FCS included) of the accepted frames.
    pub accepted_bytes: f64,
    pub worker_cpu_s: f64,
    pub wall_s: f64,
    /// Share of the generator's transmit calls that found the ring full: near 1 means the
    /// worker, not the generator, set the pace.
    pub backpressure: f64,
    pub verified: u64,
    pub verify_errors: Vec<String>,
}

impl PortRow {
    pub fn mpps_per_worker_cpu_s(&self) -> f64 {
        self.delivered as f64 / self.worker_cpu_s.max(1e-9) / 1e6
    }
    pub fn gbps_per_worker_cpu_s(&self) -> f64 {
        let mean = self.accepted_bytes / self.accepted.max(1) as f64;
        self.delivered as f64 * mean * 8.0 / self.worker_cpu_s.max(1e-9) / 1e9
    }
    pub fn wall_mpps(&self) -> f64 {
        self.delivered as f64 / self.wall_s.max(1e-9) / 1e6
    }
}

/// Plays `traffic` into the gateway for `row_time` and counts what comes back. Every 64th
/// received burst has its first frame checked by content.
#[allow(clippy::too_many_arguments)]
pub fn drive(
    rig: &mut RingRig,
    worker: &RunningWorker,
    pool: &Mempool,
    traffic: &Traffic,
    suite: Suite,
    size: Size,
    row_time: Duration,
    seq: &mut u64,
) -> PortRow {
    let into_gateway_is_inside = traffic.rx_port(rig.gateway) == rig.gateway.inside;
    let (send, receive) = if into_gateway_is_inside {
        (&mut rig.inside_wire.tx, &mut rig.outside_wire.rx)
    } else {
        (&mut rig.outside_wire.tx, &mut rig.inside_wire.rx)
    };
    let mut row = PortRow::default();
    let mut pending = MbufBurst::new();
    let mut pending_lens = [0usize; BURST];
    let mut received = MbufBurst::new();
    let (mut tx_calls, mut tx_full, mut rx_bursts) = (0u64, 0u64, 0u64);
    let cpu_start = worker.cpu_ns();
    let started = Instant::now();
    while started.elapsed() < row_time {
        if pending.is_empty() && pool.alloc_into(&mut pending, BURST) {
            for (i, m) in pending.as_mut_slice().iter_mut().enumerate() {
                traffic.fill(size, *seq, m);
                pending_lens[i] = size.frame_len(*seq);
                *seq += 1;
            }
        }
        if !pending.is_empty() {
            let before = pending.len();
            let sent = send.tx(&mut pending);
            tx_calls += 1;
            if sent < before {
                tx_full += 1;
            }
            // `pending_lens` follows the burst: unsent frames stay at its front.
            row.accepted += sent as u64;
            row.accepted_bytes += pending_lens[..sent].iter().sum::<usize>() as f64;
            pending_lens.copy_within(sent..before, 0);
        }
        // Empty the gateway's tx ring before sending more, so that the worker never finds it
        // full (it would count drop_tx_full after doing all the work).
        loop {
            let got = receive.rx(&mut received);
            if got == 0 {
                break;
            }
            row.delivered += got as u64;
            if rx_bursts & 63 == 0 {
                match traffic.verify_by_content(suite, received.as_slice()[0].data()) {
                    Ok(()) => row.verified += 1,
                    Err(e) => row.verify_errors.push(e),
                }
            }
            rx_bursts += 1;
            received.clear();
        }
    }
    row.worker_cpu_s = (worker.cpu_ns() - cpu_start) as f64 / 1e9;
    row.wall_s = started.elapsed().as_secs_f64();
    row.backpressure = tx_full as f64 / tx_calls.max(1) as f64;
    pending.clear();
    // Let what is still in the rings come out, uncounted, so the next row starts empty. A slow
    // suite (3DES) needs tens of ms for a ring, and on a shared machine the worker may be off
    // its CPU for longer still: wait for a long quiet spell.
    let mut quiet = Instant::now();
    let give_up = Instant::now() + Duration::from_secs(10);
    while quiet.elapsed() < Duration::from_millis(200) && Instant::now() < give_up {
        if receive.rx(&mut received) > 0 {
            received.clear();
            quiet = Instant::now();
        }
    }
    row
}

/// The worker's I/O: both gateway ports, a punt ring nobody reads (nothing in these streams is
/// punted), no hand-off peers, and no idle back-off (a dedicated poll-mode core).
fn worker_io(
    pool: Mempool,
    rx: Vec<RxQueue>,
    gateway_tx: Vec<(PortId, TxQueue)>,
) -> Result<(WorkerIo, UpdateSender<GatewaySas>), String> {
    let highest = gateway_tx.iter().map(|(p, _)| p.0).max().unwrap_or(0);
    let mut tx: Vec<Option<TxQueue>> = (0..=highest).map(|_| None).collect();
    for (port, queue) in gateway_tx {
        tx[usize::from(port.0)] = Some(queue);
    }
    let (punt, _) = dpdk::ring(
        &format!("punt{}", RIGS.fetch_add(1, Ordering::Relaxed)),
        1024,
        RingSharing {
            multi_producer: true,
            multi_consumer: false,
        },
    )
    .map_err(|e| e.to_string())?;
    let (updates_tx, updates) = update_queue::<GatewaySas>(1024);
    let handoff = handoff_mesh(1, 64)
        .pop()
        .ok_or("hand-off mesh of one worker")?;
    Ok((
        WorkerIo {
            rx,
            tx,
            punt,
            injected: Vec::new(),
            handoff,
            updates,
            pool,
            stop: Arc::new(AtomicBool::new(false)),
            idle_polls_before_sleep: u32::MAX,
            idle_sleep: Duration::ZERO,
        },
        updates_tx,
    ))
}
