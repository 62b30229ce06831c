//! How the control thread exchanges frames with the dataplane: punted frames in, its own frames
//! (ARP, ND, ICMP replies, IKE) out. Behind two small traits so that the same control loop serves
//! `dyntun run` and a host process embedding dyntun through the C API; both use DPDK rings
//! today, and a test can stand in with memory.

use dataplane::tables::PortId;
use dpdk::{Consumer, Mbuf, Mempool, Producer};

/// Where punted frames come from.
pub trait PuntedFrames: Send {
    /// Hands `handle` each punted frame waiting, at most `budget`; returns how many there were.
    fn receive(&mut self, budget: usize, handle: &mut dyn FnMut(PortId, &[u8])) -> usize;
}

/// Where the control thread's own frames go.
pub trait FrameSink: Send {
    /// Queues `frame` to leave on `port`; `false` when it could not be queued (the caller
    /// never retries: ARP and IKE retransmit on their own).
    fn transmit(&mut self, port: PortId, frame: &[u8]) -> bool;
    /// Whether frames queued by `transmit` still wait for a worker to send them.
    fn transmit_pending(&self) -> bool;
}

/// Punted mbufs arrive on one multi-producer ring; frames to send go into one ring per port,
/// which a worker (worker 0 in `dyntun run`, the host's worker 0 when embedded) drains into its
/// tx burst, because PMDs such as net_af_packet give every queue to a worker.
pub struct PuntRing(pub Consumer<Mbuf>);

pub struct TransmitRings {
    pub rings: Vec<(PortId, Producer<Mbuf>)>,
    pub pool: Mempool,
}

/// Both halves, the producer side workers punt into, and the per-port rings a worker drains.
pub struct RingFrames {
    pub punted: PuntRing,
    pub sink: TransmitRings,
    pub punt_tx: Producer<Mbuf>,
    pub injected: InjectedRings,
}

/// The per-port rings a worker drains, paired with the [`RingFrames`] that fills them.
pub type InjectedRings = Vec<(PortId, Consumer<Mbuf>)>;

impl RingFrames {
    /// Rings named after `prefix` (unique per gateway in the process) for `ports`.
    pub fn create(prefix: &str, ports: &[PortId], pool: Mempool) -> Result<RingFrames, String> {
        let (punt_tx, punt) = dpdk::ring::<Mbuf>(
            &format!("{prefix}_punt"),
            4096,
            dpdk::RingSharing {
                multi_producer: true,
                multi_consumer: false,
            },
        )
        .map_err(|e| e.to_string())?;
        let mut transmit = Vec::new();
        let mut injected = Vec::new();
        for &port in ports {
            let (tx, rx) = dpdk::ring::<Mbuf>(
                &format!("{prefix}_ctl_tx{}", port.0),
                1024,
                dpdk::RingSharing {
                    multi_producer: false,
                    multi_consumer: false,
                },
            )
            .map_err(|e| e.to_string())?;
            transmit.push((port, tx));
            injected.push((port, rx));
        }
        Ok(RingFrames {
            punted: PuntRing(punt),
            sink: TransmitRings {
                rings: transmit,
                pool,
            },
            punt_tx,
            injected,
        })
    }
}

impl PuntedFrames for PuntRing {
    fn receive(&mut self, budget: usize, handle: &mut dyn FnMut(PortId, &[u8])) -> usize {
        let mut handled = 0;
        while handled < budget {
            let Some(mbuf) = self.0.dequeue() else {
                break;
            };
            handled += 1;
            handle(PortId(mbuf.port()), mbuf.data());
        }
        handled
    }
}

impl FrameSink for TransmitRings {
    fn transmit(&mut self, port: PortId, frame: &[u8]) -> bool {
        let Some((_, ring)) = self.rings.iter_mut().find(|(id, _)| *id == port) else {
            return false;
        };
        let Some(mut mbuf) = self.pool.alloc() else {
            tracing::warn!("mbuf pool empty: control frame dropped");
            return false;
        };
        match mbuf.append(frame.len()) {
            Some(room) => room.copy_from_slice(frame),
            None => return false,
        }
        if ring.enqueue(mbuf).is_err() {
            tracing::warn!(port = port.0, "control tx ring full: frame dropped");
            return false;
        }
        true
    }

    fn transmit_pending(&self) -> bool {
        self.rings.iter().any(|(_, ring)| !ring.is_empty())
    }
}
