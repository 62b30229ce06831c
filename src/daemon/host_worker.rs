//! A PIC worker driven by an embedding host on the host's own lcore: the host hands it the
//! mbufs it received, the worker decides for each (transmit, punt to the control thread, hand
//! to the SA's owner worker, drop) and keeps the frames to transmit per output port until the
//! host takes them. Like the `dyntun run` loop it never locks or allocates per packet: the
//! per-port queues are allocated once, and a full queue is a counted drop.

use std::collections::VecDeque;

use dataplane::pipeline::drops::PipelineCounters;
use dataplane::pipeline::{fragment_frame, Disposition, GatewaySas, PicWorker};
use dataplane::tables::{HandoffPort, PortId, UpdateReceiver, WorkerEvent};
use dpdk::{Consumer, Mbuf, MbufBurst, Mempool, Producer, BURST_SIZE};

/// What became of one received frame, for a host that wants to know per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    /// Queued for transmission (take it with [`HostWorker::take_tx`]).
    Transmit = 0,
    /// Taken by the control thread (IKE, ARP, ND, ICMP to the gateway).
    Punted = 1,
    /// Taken by the worker that owns its SA.
    HandedOff = 2,
    /// Freed; the reason is counted in the worker's drop counters.
    Dropped = 3,
    /// Split into fragments that were processed in its place.
    Fragmented = 4,
}

/// Counts of one [`HostWorker::receive`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BurstOutcome {
    pub transmit: u32,
    pub consumed: u32,
    pub dropped: u32,
}

/// How many frames may wait per output port before the host takes them.
pub const TX_QUEUE_CAPACITY: usize = 4096;

/// A jumbo inner packet split for a ~1400-byte tunnel needs at most this many fragments.
const MAX_FRAGMENTS: usize = 8;

/// Table updates applied per poll, so that a flood of installs cannot starve forwarding.
const UPDATE_BUDGET: usize = 256;

pub struct HostWorker {
    worker: PicWorker,
    updates: UpdateReceiver<GatewaySas>,
    handoff: HandoffPort<Mbuf>,
    punt: Producer<Mbuf>,
    /// The control thread's frames (worker 0 only).
    injected: Vec<(PortId, Consumer<Mbuf>)>,
    pool: Mempool,
    /// Indexed by port id.
    tx: Vec<VecDeque<Mbuf>>,
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
            worker,
            updates,
            handoff,
            punt,
            injected,
            pool,
            tx: (0..slots)
                .map(|_| VecDeque::with_capacity(TX_QUEUE_CAPACITY))
                .collect(),
            last_counters_second: 0,
        }
    }

    pub fn counters(&self) -> &PipelineCounters {
        self.worker.counters()
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
        let mut handed = 0;
        while handed < BURST_SIZE {
            let mut taken = None;
            self.handoff.receive(1, |mbuf| taken = Some(mbuf));
            let Some(mbuf) = taken else { break };
            handed += 1;
            let port = PortId(mbuf.port());
            let mut burst = MbufBurst::new();
            let _ = burst.push(mbuf);
            let mut ignored = BurstOutcome::default();
            self.process(
                port,
                &mut burst,
                now,
                &mut ignored,
                &mut [Verdict::Dropped; 1],
            );
        }
        busy |= handed > 0;
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
        if taken > 0 {
            dataplane::pipeline::drops::add(&self.worker.counters().tx_packets, taken as u64);
        }
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
        let mut dispositions = [Disposition::Drop; BURST_SIZE];
        self.worker
            .process_burst(port, burst.as_mut_slice(), &mut dispositions, now);
        let counters = self.worker.counters().clone();
        let mut fragmented = Vec::new();
        for (index, (mbuf, disposition)) in burst.drain().zip(dispositions.iter()).enumerate() {
            let verdict = match *disposition {
                Disposition::Transmit(out) => match self.tx.get_mut(usize::from(out.0)) {
                    Some(queue) if queue.len() < TX_QUEUE_CAPACITY => {
                        queue.push_back(mbuf);
                        outcome.transmit += 1;
                        Verdict::Transmit
                    }
                    _ => {
                        dataplane::pipeline::drops::bump(&counters.drop_tx_full);
                        outcome.dropped += 1;
                        Verdict::Dropped
                    }
                },
                Disposition::Punt => match self.punt.enqueue(mbuf) {
                    Ok(()) => {
                        outcome.consumed += 1;
                        Verdict::Punted
                    }
                    Err(_) => {
                        dataplane::pipeline::drops::bump(&counters.drop_punt_full);
                        outcome.dropped += 1;
                        Verdict::Dropped
                    }
                },
                Disposition::HandOff(owner) => match self.handoff.send(owner, mbuf) {
                    Ok(()) => {
                        outcome.consumed += 1;
                        Verdict::HandedOff
                    }
                    Err(_) => {
                        dataplane::pipeline::drops::bump(&counters.drop_handoff_full);
                        outcome.dropped += 1;
                        Verdict::Dropped
                    }
                },
                Disposition::Drop => {
                    outcome.dropped += 1;
                    Verdict::Dropped
                }
                Disposition::Fragment { mtu } => {
                    let mut fragments = MbufBurst::new();
                    let split = if self.pool.alloc_into(&mut fragments, MAX_FRAGMENTS) {
                        fragment_frame(&mbuf, mtu, fragments.as_mut_slice()).ok()
                    } else {
                        None
                    };
                    match split {
                        Some(used) => {
                            while fragments.len() > used {
                                drop(fragments.pop());
                            }
                            // Rare (only inner packets too big for their tunnel): the
                            // fragments are processed once this burst is done.
                            fragmented.push(fragments);
                            Verdict::Fragmented
                        }
                        None => {
                            dataplane::pipeline::drops::bump(&counters.drop_fragmentation_failed);
                            outcome.dropped += 1;
                            Verdict::Dropped
                        }
                    }
                }
            };
            if let Some(slot) = verdicts.get_mut(index) {
                *slot = verdict;
            }
        }
        for mut fragments in fragmented {
            let mut ignored = [Verdict::Dropped; BURST_SIZE];
            // Each fragment now fits the tunnel, so this recursion is one level deep.
            self.process(port, &mut fragments, now, outcome, &mut ignored);
        }
    }
}
