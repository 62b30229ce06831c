//! What happens to a burst once the PIC worker has decided on each frame: every mbuf moves to
//! a tx queue, the punt ring, its SA owner's hand-off ring or back to its pool, and frames too
//! big for their tunnel come back as fragments. The `dyntun run` poll loop and the
//! host-driven worker share this, so a frame is counted the same way (and only once) whichever
//! loop carried it; what differs between them is only where "transmit" puts a frame.

use std::sync::atomic::AtomicU64;

use arrayvec::ArrayVec;

use dpdk::{Mbuf, MbufBurst, Mempool, BURST_SIZE};

use super::drops::{bump, PipelineCounters};
use super::held::{NeighborWait, HOLD_CAPACITY};
use super::worker::{fragment_frame, Disposition, PicWorker};
use crate::tables::{HandoffPort, PortId, WorkerId};

/// A jumbo inner packet split for a ~1400-byte tunnel needs at most this many fragments.
pub const MAX_FRAGMENTS: usize = 8;

/// Table updates applied per loop turn, so that a flood of tunnel installs cannot starve
/// forwarding.
pub const UPDATE_BUDGET: usize = 256;

/// What became of one received frame, for a host that wants to know per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    /// Queued for transmission.
    Transmit = 0,
    /// Taken by the control thread (IKE, ARP, ND, ICMP to the gateway).
    Punted = 1,
    /// Taken by the worker that owns its SA.
    HandedOff = 2,
    /// Freed; the reason is counted in the worker's drop counters.
    Dropped = 3,
    /// Split into fragments that were processed in its place.
    Fragmented = 4,
    /// Kept until its next hop's MAC is known, then transmitted by a later loop turn (or
    /// dropped, counted, if no answer comes).
    Held = 5,
}

/// Frames of one or more dispatched bursts, by what became of them. A fragmented frame is not
/// counted itself; its fragments are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BurstOutcome {
    pub transmit: u32,
    pub consumed: u32,
    pub dropped: u32,
}

impl BurstOutcome {
    fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Transmit => self.transmit = self.transmit.saturating_add(1),
            Verdict::Punted | Verdict::HandedOff | Verdict::Held => {
                self.consumed = self.consumed.saturating_add(1)
            }
            Verdict::Dropped => self.dropped = self.dropped.saturating_add(1),
            Verdict::Fragmented => {}
        }
    }
}

/// Where a loop puts the frames its worker decided on. Each method either takes the mbuf or
/// gives it back, and a frame given back is freed and counted by the dispatch.
pub trait FrameSink {
    /// Queues `mbuf` for transmission on `port`; refused when there is no such port or no room.
    fn transmit(&mut self, port: PortId, mbuf: Mbuf) -> Result<(), Mbuf>;
    fn punt(&mut self, mbuf: Mbuf) -> Result<(), Mbuf>;
    fn hand_off(&mut self, owner: WorkerId, mbuf: Mbuf) -> Result<(), Mbuf>;
    /// Keeps `mbuf` until its neighbour is resolved (the loop's [`HeldFrames`](super::held::HeldFrames)).
    fn hold(&mut self, mbuf: Mbuf, wait: NeighborWait, now: u64) -> Result<(), Mbuf>;
}

/// Transmits frames whose neighbour got resolved (from [`HeldFrames::take_ready`](super::held::HeldFrames::take_ready), called
/// before the sink borrowed the loop's held frames); returns how many there were.
pub fn transmit_ready<S: FrameSink>(
    sink: &mut S,
    ready: ArrayVec<(PortId, Mbuf), HOLD_CAPACITY>,
    counters: &PipelineCounters,
) -> usize {
    let count = ready.len();
    for (port, mbuf) in ready {
        settle(
            sink.transmit(port, mbuf),
            Verdict::Transmit,
            &counters.drop_tx_full,
        );
    }
    count
}

/// What a dispatch reads besides the worker and the sink.
pub struct DispatchContext<'a> {
    /// The worker's own counters, held by the loop so that they can be bumped while the worker
    /// is borrowed for processing.
    pub counters: &'a PipelineCounters,
    /// Where fragments come from when a packet must be split before encryption.
    pub pool: &'a Mempool,
    /// The coarse clock (seconds) the worker's lifetimes and reassembly run on.
    pub now: u64,
}

/// Runs `worker` over `burst`, received on `port`, and moves every mbuf where it said; `burst`
/// is empty afterwards. `verdicts[i]`, where it exists, says what became of frame `i`.
pub fn dispatch_burst<S: FrameSink>(
    worker: &mut PicWorker,
    sink: &mut S,
    context: &DispatchContext<'_>,
    port: PortId,
    burst: &mut MbufBurst,
    verdicts: &mut [Verdict],
    outcome: &mut BurstOutcome,
) {
    dispatch(worker, sink, context, port, burst, verdicts, outcome, true);
}

/// Takes up to a burst's room of frames that other workers handed to this one; returns how
/// many.
pub fn take_handed_off(handoff: &mut HandoffPort<Mbuf>, into: &mut MbufBurst) -> usize {
    let room = into.spare_capacity();
    handoff.receive(room, |mbuf| {
        // Never refused: `receive` delivers at most `room` frames.
        let _ = into.push(mbuf);
    })
}

/// Dispatches frames handed over by other workers, which may have been received on different
/// ports: one burst per port, each port's frames in the order they came. `handed` is empty
/// afterwards. Returns how many bursts that took.
pub fn dispatch_handed_off<S: FrameSink>(
    worker: &mut PicWorker,
    sink: &mut S,
    context: &DispatchContext<'_>,
    handed: &mut MbufBurst,
    outcome: &mut BurstOutcome,
) -> usize {
    let mut bursts = 0;
    while let Some(port) = handed.as_slice().first().map(Mbuf::port) {
        bursts += 1;
        if handed.as_slice().iter().all(|m| m.port() == port) {
            dispatch(
                worker,
                sink,
                context,
                PortId(port),
                handed,
                &mut [],
                outcome,
                true,
            );
        } else {
            let mut group = MbufBurst::new();
            take_port(handed, port, &mut group);
            dispatch(
                worker,
                sink,
                context,
                PortId(port),
                &mut group,
                &mut [],
                outcome,
                true,
            );
        }
    }
    bursts
}

/// Moves the frames of `from` received on `port` to the empty `group`, keeping their order; the
/// others stay in `from`, in their order.
fn take_port(from: &mut MbufBurst, port: u16, group: &mut MbufBurst) {
    debug_assert!(group.is_empty());
    let mut rest = MbufBurst::new();
    for mbuf in from.drain() {
        let target = if mbuf.port() == port {
            &mut *group
        } else {
            &mut rest
        };
        // Never refused: between them the two hold what `from` held.
        let _ = target.push(mbuf);
    }
    std::mem::swap(from, &mut rest);
}

#[allow(clippy::too_many_arguments)]
fn dispatch<S: FrameSink>(
    worker: &mut PicWorker,
    sink: &mut S,
    context: &DispatchContext<'_>,
    port: PortId,
    burst: &mut MbufBurst,
    verdicts: &mut [Verdict],
    outcome: &mut BurstOutcome,
    may_fragment: bool,
) {
    let counters = context.counters;
    let mut dispositions = [Disposition::Drop; BURST_SIZE];
    worker.process_burst(port, burst.as_mut_slice(), &mut dispositions, context.now);
    for (index, (mbuf, disposition)) in burst.drain().zip(dispositions).enumerate() {
        let verdict = match disposition {
            Disposition::Transmit(out) => settle(
                sink.transmit(out, mbuf),
                Verdict::Transmit,
                &counters.drop_tx_full,
            ),
            Disposition::Punt => settle(sink.punt(mbuf), Verdict::Punted, &counters.drop_punt_full),
            Disposition::HandOff(owner) => settle(
                sink.hand_off(owner, mbuf),
                Verdict::HandedOff,
                &counters.drop_handoff_full,
            ),
            // The worker counted the reason; the mbuf goes back to its pool here.
            Disposition::Drop => Verdict::Dropped,
            Disposition::AwaitNeighbor(wait) => settle(
                sink.hold(mbuf, wait, context.now),
                Verdict::Held,
                &counters.drop_no_neighbor,
            ),
            Disposition::Fragment { mtu } => {
                let mut fragments = MbufBurst::new();
                // Fragments fit their tunnel by construction; one asking to be split again
                // would be a worker bug, and recursing on it could never end.
                if may_fragment && split(context.pool, &mbuf, mtu, &mut fragments) {
                    // Usually `port`; a packet out of a tunnel was framed as from the port on
                    // its protected side.
                    let arrival = PortId(mbuf.port());
                    drop(mbuf);
                    // In place of the original, so the frames after it stay behind its pieces.
                    dispatch(
                        worker,
                        sink,
                        context,
                        arrival,
                        &mut fragments,
                        &mut [],
                        outcome,
                        false,
                    );
                    Verdict::Fragmented
                } else {
                    bump(&counters.drop_fragmentation_failed);
                    Verdict::Dropped
                }
            }
        };
        outcome.count(verdict);
        if let Some(slot) = verdicts.get_mut(index) {
            *slot = verdict;
        }
    }
}

/// A refused frame is freed as it goes out of scope here, counted under `refused`.
fn settle(result: Result<(), Mbuf>, taken: Verdict, refused: &AtomicU64) -> Verdict {
    match result {
        Ok(()) => taken,
        Err(_) => {
            bump(refused);
            Verdict::Dropped
        }
    }
}

/// Splits `frame` into fresh mbufs of `pool`, left in `fragments`; `false` (and `fragments`
/// empty) when the pool has none to spare or the frame cannot be split.
fn split(pool: &Mempool, frame: &Mbuf, mtu: u16, fragments: &mut MbufBurst) -> bool {
    if !pool.alloc_into(fragments, MAX_FRAGMENTS) {
        return false;
    }
    match fragment_frame(frame, mtu, fragments.as_mut_slice()) {
        Ok(used) => {
            while fragments.len() > used {
                drop(fragments.pop());
            }
            for fragment in fragments.as_mut_slice() {
                fragment.set_port(frame.port());
            }
            true
        }
        Err(_) => {
            fragments.clear();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk::Eal;

    fn pool() -> Mempool {
        Eal::init_global_in_memory(128).unwrap_or_else(|e| panic!("EAL for dispatch tests: {e}"));
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Mempool::create(&format!("dispatch{n}"), 63, 0, Mempool::DEFAULT_DATA_ROOM).expect("pool")
    }

    /// An mbuf received on `port` whose one data byte names it.
    fn frame(pool: &Mempool, port: u16, tag: u8) -> Mbuf {
        let mut mbuf = pool.alloc().expect("mbuf");
        mbuf.append(1).expect("room")[0] = tag;
        // SAFETY: we own the mbuf; `port` is a plain field of its header.
        unsafe { (*mbuf.as_raw()).port = port };
        mbuf
    }

    fn tags(burst: &MbufBurst) -> Vec<(u16, u8)> {
        burst
            .as_slice()
            .iter()
            .map(|m| (m.port(), m.data()[0]))
            .collect()
    }

    #[test]
    fn a_ports_frames_leave_together_in_order_and_the_others_keep_theirs() {
        let pool = pool();
        let mut handed = MbufBurst::new();
        for (port, tag) in [(1, 10), (2, 20), (1, 11), (3, 30), (2, 21), (1, 12)] {
            handed.push(frame(&pool, port, tag)).unwrap();
        }
        let mut group = MbufBurst::new();
        take_port(&mut handed, 1, &mut group);
        assert_eq!(tags(&group), vec![(1, 10), (1, 11), (1, 12)]);
        assert_eq!(tags(&handed), vec![(2, 20), (3, 30), (2, 21)]);
        let mut second = MbufBurst::new();
        take_port(&mut handed, 2, &mut second);
        assert_eq!(tags(&second), vec![(2, 20), (2, 21)]);
        assert_eq!(tags(&handed), vec![(3, 30)]);
        drop((group, second, handed));
        assert_eq!(pool.in_use(), 0, "every mbuf is owned exactly once");
    }
}
