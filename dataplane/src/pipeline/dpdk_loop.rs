//! The poll-mode loop of one PIC worker on DPDK: rx a burst, let [`PicWorker`] decide, then move
//! every mbuf to its tx burst, the punt ring, the owner's hand-off ring, or back to the pool.
//! Table updates are applied between bursts; an idle worker backs off so that a machine with few
//! cores still gives the control thread time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dpdk::{Consumer, Mbuf, MbufBurst, Mempool, Producer, RxQueue, TxQueue};

use super::dispatch::{
    dispatch_burst, dispatch_handed_off, take_handed_off, transmit_ready, BurstOutcome,
    DispatchContext, FrameSink, UPDATE_BUDGET,
};
use super::drops::{add, PipelineCounters};
use super::held::{HeldFrames, NeighborWait};
use super::worker::{GatewaySas, PicWorker};
use crate::tables::{HandoffPort, HandoffRefused, PortId, UpdateReceiver, WorkerEvent, WorkerId};

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

pub fn run_worker(worker: &mut PicWorker, io: &mut WorkerIo) {
    let tsc_hz = dpdk::lcore::tsc_hz().max(1);
    // The loop's own handle: dispatch bumps counters while the worker is borrowed to process.
    let counters = Arc::clone(worker.counters());
    let mut rx_burst = MbufBurst::new();
    let mut tx_bursts: Vec<MbufBurst> = io.tx.iter().map(|_| MbufBurst::new()).collect();
    let mut held = HeldFrames::default();
    let mut idle_polls = 0u32;
    let mut last_counters_second = 0u64;
    // The clock in seconds, recomputed only when the TSC passes the next second: a division
    // per poll showed in the worker's profile.
    let (mut now, mut next_second_tsc) = (0u64, 0u64);
    while !io.stop.load(Ordering::Relaxed) {
        let worker_id = worker.worker();
        worker
            .tables
            .apply_pending(&mut io.updates, UPDATE_BUDGET, |kind, error| {
                tracing::warn!(worker = worker_id.0, update = kind, %error, "table update rejected");
            });
        let tsc = dpdk::lcore::tsc();
        if tsc >= next_second_tsc {
            now = tsc / tsc_hz;
            next_second_tsc = now.saturating_add(1).saturating_mul(tsc_hz);
        }
        if now != last_counters_second {
            last_counters_second = now;
            let counters = worker.tables.counters;
            let _ = worker.events().send(WorkerEvent::Counters {
                worker: worker_id,
                counters,
            });
        }
        let context = DispatchContext {
            counters: &counters,
            pool: &io.pool,
            now,
        };
        // The loop does not report per-frame results; the counters say it all.
        let mut outcome = BurstOutcome::default();
        let ready = held.take_ready(worker, now);
        let mut sink = LoopSink {
            tx: &mut io.tx,
            tx_bursts: &mut tx_bursts,
            punt: &mut io.punt,
            handoff: &mut io.handoff,
            held: &mut held,
            counters: &counters,
        };
        let mut busy = transmit_ready(&mut sink, ready, &counters) > 0;
        for queue in 0..io.rx.len() {
            let received = io.rx[queue].rx(&mut rx_burst);
            if received == 0 {
                continue;
            }
            busy = true;
            let port = PortId(io.rx[queue].port().id());
            dispatch_burst(
                worker,
                &mut sink,
                &context,
                port,
                &mut rx_burst,
                &mut [],
                &mut outcome,
            );
        }
        // Packets another worker received for SAs this one owns.
        if take_handed_off(sink.handoff, &mut rx_burst) > 0 {
            busy = true;
            dispatch_handed_off(worker, &mut sink, &context, &mut rx_burst, &mut outcome);
        }
        for (port, ring) in io.injected.iter_mut() {
            let Some(tx) = sink.tx_bursts.get_mut(usize::from(port.0)) else {
                continue;
            };
            while !tx.is_full() {
                let Some(mbuf) = ring.dequeue() else { break };
                busy = true;
                let _ = tx.push(mbuf);
            }
        }
        sink.flush();
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

/// Frames to transmit wait in a burst per port, which goes to the port's tx queue when it is
/// full and at the end of every loop turn.
struct LoopSink<'a> {
    tx: &'a mut [Option<TxQueue>],
    tx_bursts: &'a mut [MbufBurst],
    punt: &'a mut Producer<Mbuf>,
    handoff: &'a mut HandoffPort<Mbuf>,
    held: &'a mut HeldFrames<Mbuf>,
    counters: &'a PipelineCounters,
}

impl LoopSink<'_> {
    fn flush(&mut self) {
        for (queue, burst) in self.tx.iter_mut().zip(self.tx_bursts.iter_mut()) {
            send(queue.as_mut(), burst, self.counters);
        }
    }
}

impl FrameSink for LoopSink<'_> {
    fn transmit(&mut self, port: PortId, mbuf: Mbuf) -> Result<(), Mbuf> {
        let index = usize::from(port.0);
        let Some(burst) = self.tx_bursts.get_mut(index) else {
            return Err(mbuf);
        };
        burst.push(mbuf).or_else(|mbuf| {
            send(
                self.tx.get_mut(index).and_then(Option::as_mut),
                burst,
                self.counters,
            );
            burst.push(mbuf)
        })
    }

    fn punt(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        self.punt.enqueue(mbuf)
    }

    fn hand_off(&mut self, owner: WorkerId, mbuf: Mbuf) -> Result<(), Mbuf> {
        self.handoff
            .send(owner, mbuf)
            .map_err(HandoffRefused::into_packet)
    }

    fn hold(&mut self, mbuf: Mbuf, wait: NeighborWait, now: u64) -> Result<(), Mbuf> {
        self.held.hold(mbuf, wait, now)
    }
}

/// Gives `burst` to `queue`; what the queue did not take is dropped here, counted, never leaked.
fn send(queue: Option<&mut TxQueue>, burst: &mut MbufBurst, counters: &PipelineCounters) {
    if burst.is_empty() {
        return;
    }
    if let Some(queue) = queue {
        queue.tx(burst);
    }
    add(&counters.drop_tx_full, burst.len() as u64);
    burst.clear();
}
