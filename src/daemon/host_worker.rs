//! A PIC worker driven by an embedding host on the host's own lcore: the host hands it the
//! mbufs it received, the worker decides for each (transmit, punt to the control thread, hand
//! to the SA's owner worker, drop) and keeps the frames to transmit per output port until the
//! host takes them. Like the `dyntun run` loop it never locks or allocates per packet: the
//! per-port queues are allocated once, and a full queue is a counted drop.

use std::collections::VecDeque;
use std::sync::Arc;

use dataplane::pipeline::dispatch::{
    dispatch_burst, dispatch_handed_off, take_handed_off, transmit_ready, DispatchContext,
    FrameSink, UPDATE_BUDGET,
};
use dataplane::pipeline::drops::PipelineCounters;
use dataplane::pipeline::{GatewaySas, HeldFrames, NeighborWait, PicWorker};
use dataplane::tables::{
    HandoffPort, HandoffRefused, PortId, UpdateReceiver, WorkerEvent, WorkerId,
};
use dpdk::{Consumer, Mbuf, MbufBurst, Mempool, Producer, BURST_SIZE};

pub use dataplane::pipeline::dispatch::{BurstOutcome, Verdict};

/// How many frames may wait per output port before the host takes them.
pub const TX_QUEUE_CAPACITY: usize = 4096;

pub struct HostWorker {
    worker: PicWorker,
    /// The worker's counters, held apart so that dispatch can bump them while the worker is
    /// borrowed to process.
    counters: Arc<PipelineCounters>,
    updates: UpdateReceiver<GatewaySas>,
    handoff: HandoffPort<Mbuf>,
    punt: Producer<Mbuf>,
    /// The control thread's frames (worker 0 only).
    injected: Vec<(PortId, Consumer<Mbuf>)>,
    pool: Mempool,
    /// Indexed by port id.
    tx: Vec<VecDeque<Mbuf>>,
    /// Frames waiting for their next hop's MAC; sent by a later `poll`.
    held: HeldFrames<Mbuf>,
    last_counters_second: u64,
}

impl HostWorker {
    pub fn new(
        worker: PicWorker,
        updates: UpdateReceiver<GatewaySas>,
        handoff: HandoffPort<Mbuf>,
        punt: Producer<Mbuf>,
        injected: Vec<(PortId, Consumer<Mbuf>)>,
        pool: Mempool,
        port_ids: &[PortId],
    ) -> HostWorker {
        let slots = port_ids
            .iter()
            .map(|p| usize::from(p.0) + 1)
            .max()
            .unwrap_or(0);
        HostWorker {
            counters: Arc::clone(worker.counters()),
            worker,
            updates,
            handoff,
            punt,
            injected,
            pool,
            tx: (0..slots)
                .map(|_| VecDeque::with_capacity(TX_QUEUE_CAPACITY))
                .collect(),
            held: HeldFrames::default(),
            last_counters_second: 0,
        }
    }

    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// Takes every mbuf of `frames`, received on `port`, and processes them in bursts.
    /// `verdicts`, when given, receives one [`Verdict`] (as its `u8` value) per frame.
    pub fn receive(
        &mut self,
        port: PortId,
        frames: impl IntoIterator<Item = Mbuf>,
        mut verdicts: Option<&mut [u8]>,
    ) -> BurstOutcome {
        let now = self.clock();
        let mut outcome = BurstOutcome::default();
        let mut burst = MbufBurst::new();
        let mut first = 0;
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            while !burst.is_full() {
                let Some(mbuf) = frames.next() else { break };
                // The punt and hand-off paths read the receiving port from the mbuf, and a
                // host may hand over mbufs that did not come straight from its PMD.
                // SAFETY: we own the mbuf; `port` is a plain field of its header.
                unsafe { (*mbuf.as_raw()).port = port.0 };
                let _ = burst.push(mbuf);
            }
            let count = burst.len();
            let mut chunk = [Verdict::Dropped; BURST_SIZE];
            self.process(port, &mut burst, now, &mut outcome, &mut chunk);
            if let Some(out) = verdicts.as_deref_mut() {
                let end = (first + count).min(out.len());
                for (slot, verdict) in out[first.min(end)..end].iter_mut().zip(&chunk) {
                    *slot = *verdict as u8;
                }
            }
            first += count;
        }
        outcome
    }

    /// Applies table updates, reports counters once a second, processes frames other workers
    /// handed over, and queues the control thread's frames. Returns whether there was work.
    pub fn poll(&mut self) -> bool {
        let worker_id = self.worker.worker();
        let applied = self.worker.tables.apply_pending(
            &mut self.updates,
            UPDATE_BUDGET,
            |kind, error| {
                tracing::warn!(worker = worker_id.0, update = kind, %error, "table update rejected");
            },
        );
        let mut busy = applied > 0;
        let now = self.clock();
        if now != self.last_counters_second {
            self.last_counters_second = now;
            let counters = self.worker.tables.counters;
            let _ = self.worker.events().send(WorkerEvent::Counters {
                worker: worker_id,
                counters,
            });
        }
        if !self.held.is_empty() {
            let ready = self.held.take_ready(&mut self.worker, now);
            let (_, mut sink, context) = self.dispatch_parts(now);
            busy |= transmit_ready(&mut sink, ready, context.counters) > 0;
        }
        let mut handed = MbufBurst::new();
        if take_handed_off(&mut self.handoff, &mut handed) > 0 {
            busy = true;
            let (worker, mut sink, context) = self.dispatch_parts(now);
            // The host asked for none of these frames, so their outcome is not reported.
            let mut ignored = BurstOutcome::default();
            dispatch_handed_off(worker, &mut sink, &context, &mut handed, &mut ignored);
        }
        for index in 0..self.injected.len() {
            let port = usize::from(self.injected[index].0 .0);
            while self
                .tx
                .get(port)
                .is_some_and(|q| q.len() < TX_QUEUE_CAPACITY)
            {
                let Some(mbuf) = self.injected[index].1.dequeue() else {
                    break;
                };
                busy = true;
                self.tx[port].push_back(mbuf);
            }
        }
        busy
    }

    /// Moves up to `out.len()` frames waiting for `port` into `out`, oldest first, and returns
    /// how many. The caller owns them from then on.
    pub fn take_tx(&mut self, port: PortId, out: &mut [*mut dpdk::sys::rte_mbuf]) -> usize {
        let Some(queue) = self.tx.get_mut(usize::from(port.0)) else {
            return 0;
        };
        let mut taken = 0;
        while taken < out.len() {
            let Some(mbuf) = queue.pop_front() else { break };
            out[taken] = mbuf.into_raw();
            taken += 1;
        }
        // `tx_packets` was counted when the pipeline queued the frame, as in `dyntun run`;
        // frames the control thread injected are not pipeline output and are not counted.
        taken
    }

    /// Frames waiting for `port`.
    pub fn tx_pending(&self, port: PortId) -> usize {
        self.tx.get(usize::from(port.0)).map_or(0, VecDeque::len)
    }

    fn clock(&self) -> u64 {
        dpdk::lcore::tsc() / dpdk::lcore::tsc_hz().max(1)
    }

    fn process(
        &mut self,
        port: PortId,
        burst: &mut MbufBurst,
        now: u64,
        outcome: &mut BurstOutcome,
        verdicts: &mut [Verdict],
    ) {
        let (worker, mut sink, context) = self.dispatch_parts(now);
        dispatch_burst(worker, &mut sink, &context, port, burst, verdicts, outcome);
    }

    /// The worker, where its frames go, and what dispatch reads, borrowed side by side.
    fn dispatch_parts(&mut self, now: u64) -> (&mut PicWorker, HostSink<'_>, DispatchContext<'_>) {
        let sink = HostSink {
            tx: &mut self.tx,
            punt: &mut self.punt,
            handoff: &mut self.handoff,
            held: &mut self.held,
        };
        let context = DispatchContext {
            counters: &self.counters,
            pool: &self.pool,
            now,
        };
        (&mut self.worker, sink, context)
    }
}

/// Frames to transmit wait in the per-port queues until the host takes them.
struct HostSink<'a> {
    tx: &'a mut [VecDeque<Mbuf>],
    punt: &'a mut Producer<Mbuf>,
    handoff: &'a mut HandoffPort<Mbuf>,
    held: &'a mut HeldFrames<Mbuf>,
}

impl FrameSink for HostSink<'_> {
    fn transmit(&mut self, port: PortId, mbuf: Mbuf) -> Result<(), Mbuf> {
        match self.tx.get_mut(usize::from(port.0)) {
            // Below the capacity it was created with, so pushing does not allocate.
            Some(queue) if queue.len() < TX_QUEUE_CAPACITY => {
                queue.push_back(mbuf);
                Ok(())
            }
            _ => Err(mbuf),
        }
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
