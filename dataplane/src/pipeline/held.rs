//! Frames waiting for their next hop's MAC address. When a route's neighbour is not resolved
//! yet, the worker asks the control thread to resolve it and the loop keeps the frame here
//! (routers queue a few packets per unresolved neighbour rather than lose the first packet of
//! every new flow, such as the first ping after a neighbour ages out). A bounded array, no
//! allocation; a frame that waited too long, or finds the array full, is a counted drop.

use std::net::IpAddr;

use arrayvec::ArrayVec;

use super::worker::PicWorker;
use crate::buf::PacketBuf;
use crate::tables::PortId;

/// Frames one worker holds at most (all neighbours together).
pub const HOLD_CAPACITY: usize = 64;

/// Seconds a frame may wait; while it does, the neighbour is asked for again every second
/// (the control thread sends at most one ARP request / neighbour solicitation per neighbour
/// and half second, so one lost request does not lose the frame).
pub const HOLD_SECONDS: u64 = 3;

/// What a held frame waits for: the MAC of `neighbor` on `port`. `has_l2` says whether the
/// buffer still starts with the received Ethernet header (rewritten) or is a bare IP packet
/// (a header is put in front).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborWait {
    pub port: PortId,
    pub neighbor: IpAddr,
    pub has_l2: bool,
}

struct Held<M> {
    frame: M,
    wait: NeighborWait,
    since: u64,
    /// When the neighbour was last asked for on this frame's behalf.
    asked: u64,
}

pub struct HeldFrames<M> {
    frames: ArrayVec<Held<M>, HOLD_CAPACITY>,
}

impl<M> Default for HeldFrames<M> {
    fn default() -> Self {
        HeldFrames {
            frames: ArrayVec::new(),
        }
    }
}

impl<M: PacketBuf> HeldFrames<M> {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Keeps `frame` until its neighbour is known; gives it back when every slot is taken.
    pub fn hold(&mut self, frame: M, wait: NeighborWait, now: u64) -> Result<(), M> {
        self.frames
            .try_push(Held {
                frame,
                wait,
                since: now,
                asked: now,
            })
            .map_err(|full| full.element().frame)
    }

    /// The frames whose neighbour is now known, framed for it and in the order they were held.
    /// Frames that waited [`HOLD_SECONDS`] or more are dropped and counted (`drop_no_neighbor`)
    /// by `worker`, as are frames that cannot be framed.
    pub fn take_ready(
        &mut self,
        worker: &mut PicWorker,
        now: u64,
    ) -> ArrayVec<(PortId, M), HOLD_CAPACITY> {
        let mut ready = ArrayVec::new();
        let mut index = 0;
        while index < self.frames.len() {
            let held = &mut self.frames[index];
            match worker.frame_held(&mut held.frame, held.wait) {
                Some(true) => {
                    let held = self.frames.remove(index);
                    // Never full: it holds at most what `frames` held.
                    let _ = ready.try_push((held.wait.port, held.frame));
                }
                Some(false) => {
                    self.frames.remove(index);
                }
                None if now.saturating_sub(held.since) >= HOLD_SECONDS => {
                    self.frames.remove(index);
                    worker.count_unresolved();
                }
                None => {
                    if now > held.asked {
                        held.asked = now;
                        worker.request_resolve(held.wait.port, held.wait.neighbor);
                    }
                    index += 1;
                }
            }
        }
        let frames = &self.frames;
        worker.forget_awaited(|port, neighbor| {
            frames
                .iter()
                .any(|h| h.wait.port == port && h.wait.neighbor == neighbor)
        });
        ready
    }
}
