//! The poll-mode loop of one PIC worker on DPDK: rx a burst, let [`PicWorker`] decide, then move
//! every mbuf to its tx burst, the punt ring, the owner's hand-off ring, or back to the pool.
//! Table updates are applied between bursts; an idle worker backs off so that a machine with few
//! cores still gives the control thread time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dpdk::{Consumer, Mbuf, MbufBurst, Mempool, Producer, RxQueue, TxQueue, BURST_SIZE};

use super::drops::{add, bump};
use super::worker::{fragment_frame, Disposition, GatewaySas, PicWorker};
use crate::tables::{HandoffPort, PortId, UpdateReceiver, WorkerEvent};

/// Everything a worker loop owns besides its tables.
pub struct WorkerIo {
    /// The rx queues this worker polls (one per port it serves).
    pub rx: Vec<RxQueue>,
    /// This worker's tx queue on each port, indexed by port id.
    pub tx: Vec<Option<TxQueue>>,
    pub punt: Producer<Mbuf>,
    /// Frames the control thread wants sent (ARP, IKE, ICMP replies), per port: PMDs such as
    /// net_af_packet have one tx queue per rx queue, so control borrows a worker's queue.
    pub injected: Vec<(PortId, Consumer<Mbuf>)>,
    pub handoff: HandoffPort<Mbuf>,
    pub updates: UpdateReceiver<GatewaySas>,
    /// Where fragments come from when a packet must be split before encryption.
    pub pool: Mempool,
    pub stop: Arc<AtomicBool>,
    /// Sleep after this many empty polls in a row...
    pub idle_polls_before_sleep: u32,
    /// ...for this long.
    pub idle_sleep: Duration,
}

/// A jumbo inner packet split for a ~1400-byte tunnel needs at most this many fragments.
const MAX_FRAGMENTS: usize = 8;

/// Updates applied per loop turn, so that a flood of tunnel installs cannot starve forwarding.
const UPDATE_BUDGET: usize = 256;

pub fn run_worker(worker: &mut PicWorker, io: &mut WorkerIo) {
    let tsc_hz = dpdk::lcore::tsc_hz().max(1);
    let mut rx_burst = MbufBurst::new();
    let mut tx_bursts: Vec<MbufBurst> = io.tx.iter().map(|_| MbufBurst::new()).collect();
    let mut idle_polls = 0u32;
    let mut last_counters_second = 0u64;
    while !io.stop.load(Ordering::Relaxed) {
        let worker_id = worker.worker();
        worker
            .tables
            .apply_pending(&mut io.updates, UPDATE_BUDGET, |kind, error| {
                tracing::warn!(worker = worker_id.0, update = kind, %error, "table update rejected");
            });
        let now = dpdk::lcore::tsc() / tsc_hz;
        if now != last_counters_second {
            last_counters_second = now;
            let counters = worker.tables.counters;
            let _ = worker.events().send(WorkerEvent::Counters {
                worker: worker_id,
                counters,
            });
        }
        let mut busy = false;
        for queue in 0..io.rx.len() {
            let received = io.rx[queue].rx(&mut rx_burst);
            if received == 0 {
                continue;
            }
            busy = true;
            let port = PortId(io.rx[queue].port().id());
            process_and_dispatch(worker, io, port, &mut rx_burst, &mut tx_bursts, now);
        }
        // Packets another worker received for SAs this one owns.
        let mut handed = 0;
        while handed < BURST_SIZE {
            let Some(mbuf) = receive_one(&mut io.handoff) else {
                break;
            };
            handed += 1;
            let port = PortId(mbuf.port());
            let _ = rx_burst.push(mbuf);
            process_and_dispatch(worker, io, port, &mut rx_burst, &mut tx_bursts, now);
        }
        busy |= handed > 0;
        for (port, ring) in io.injected.iter_mut() {
            let Some(tx) = tx_bursts.get_mut(usize::from(port.0)) else {
                continue;
            };
            while !tx.is_full() {
                let Some(mbuf) = ring.dequeue() else { break };
                busy = true;
                let _ = tx.push(mbuf);
            }
        }
        flush_tx(worker, io, &mut tx_bursts);
        if busy {
            idle_polls = 0;
        } else {
            idle_polls = idle_polls.saturating_add(1);
            if idle_polls >= io.idle_polls_before_sleep && !io.idle_sleep.is_zero() {
                std::thread::sleep(io.idle_sleep);
            }
        }
    }
}

fn receive_one(handoff: &mut HandoffPort<Mbuf>) -> Option<Mbuf> {
    let mut taken = None;
    handoff.receive(1, |mbuf| taken = Some(mbuf));
    taken
}

/// Runs the worker over `burst` and moves every mbuf where the worker said.
fn process_and_dispatch(
    worker: &mut PicWorker,
    io: &mut WorkerIo,
    port: PortId,
    burst: &mut MbufBurst,
    tx_bursts: &mut [MbufBurst],
    now: u64,
) {
    let mut dispositions = [Disposition::Drop; BURST_SIZE];
    worker.process_burst(port, burst.as_mut_slice(), &mut dispositions, now);
    dispatch(worker, io, port, burst, &dispositions, tx_bursts, now);
}

fn dispatch(
    worker: &mut PicWorker,
    io: &mut WorkerIo,
    port: PortId,
    burst: &mut MbufBurst,
    dispositions: &[Disposition],
    tx_bursts: &mut [MbufBurst],
    now: u64,
) {
    let counters = worker.counters().clone();
    for (mbuf, disposition) in burst.drain().zip(dispositions.iter()) {
        match *disposition {
            Disposition::Transmit(port) => {
                let Some(tx) = tx_bursts.get_mut(usize::from(port.0)) else {
                    bump(&counters.drop_tx_full);
                    continue;
                };
                if let Err(mbuf) = tx.push(mbuf) {
                    // The per-port burst is full: send what we have and queue this one.
                    send_port(io, tx_bursts, usize::from(port.0), &counters);
                    let _ = tx_bursts[usize::from(port.0)].push(mbuf);
                }
            }
            Disposition::Punt => {
                if io.punt.enqueue(mbuf).is_err() {
                    bump(&counters.drop_punt_full);
                }
            }
            Disposition::HandOff(owner) => {
                if io.handoff.send(owner, mbuf).is_err() {
                    bump(&counters.drop_handoff_full);
                }
            }
            Disposition::Drop => drop(mbuf),
            Disposition::Fragment { mtu } => {
                let mut fragments = MbufBurst::new();
                let split = if io.pool.alloc_into(&mut fragments, MAX_FRAGMENTS) {
                    fragment_frame(&mbuf, mtu, fragments.as_mut_slice()).ok()
                } else {
                    None
                };
                drop(mbuf);
                let Some(used) = split else {
                    bump(&counters.drop_fragmentation_failed);
                    continue;
                };
                while fragments.len() > used {
                    drop(fragments.pop());
                }
                // Each fragment now fits the tunnel, so this recursion is one level deep.
                process_and_dispatch(worker, io, port, &mut fragments, tx_bursts, now);
            }
        }
    }
}

fn send_port(
    io: &mut WorkerIo,
    tx_bursts: &mut [MbufBurst],
    port: usize,
    counters: &super::drops::PipelineCounters,
) {
    let burst = &mut tx_bursts[port];
    if burst.is_empty() {
        return;
    }
    if let Some(tx) = io.tx.get_mut(port).and_then(Option::as_mut) {
        tx.tx(burst);
    }
    // What the queue did not take is dropped here, counted, never leaked.
    add(&counters.drop_tx_full, burst.len() as u64);
    burst.clear();
}

fn flush_tx(worker: &PicWorker, io: &mut WorkerIo, tx_bursts: &mut [MbufBurst]) {
    let counters = worker.counters().clone();
    for port in 0..tx_bursts.len() {
        send_port(io, tx_bursts, port, &counters);
    }
}
