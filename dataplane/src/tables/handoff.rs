//! Worker-to-worker hand-off of packets whose SA another worker owns (RSS spreads inbound ESP
//! by outer addresses, so a tunnel's packets may land anywhere). One SPSC ring per ordered pair
//! of workers keeps every ring single-producer; a full ring is a counted drop and the packet is
//! given back so the caller frees its buffer.

use super::ids::WorkerId;

pub struct HandoffPort<P> {
    me: WorkerId,
    outgoing: Vec<Option<rtrb::Producer<P>>>,
    incoming: Vec<rtrb::Consumer<P>>,
    sent: u64,
    ring_full: u64,
}

/// The ports of `workers` workers, index = worker id.
pub fn handoff_mesh<P: Send>(workers: usize, capacity: usize) -> Vec<HandoffPort<P>> {
    let mut ports: Vec<HandoffPort<P>> = (0..workers)
        .map(|i| HandoffPort {
            me: WorkerId(i as u16),
            outgoing: (0..workers).map(|_| None).collect(),
            incoming: Vec::new(),
            sent: 0,
            ring_full: 0,
        })
        .collect();
    for from in 0..workers {
        for to in 0..workers {
            if from == to {
                continue;
            }
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            ports[from].outgoing[to] = Some(producer);
            ports[to].incoming.push(consumer);
        }
    }
    ports
}

#[derive(Debug, PartialEq, Eq)]
pub enum HandoffRefused<P> {
    RingFull(P),
    /// Not a worker of this mesh, or this worker itself.
    NoRing(P),
}

impl<P> HandoffRefused<P> {
    pub fn into_packet(self) -> P {
        match self {
            HandoffRefused::RingFull(p) | HandoffRefused::NoRing(p) => p,
        }
    }
}

impl<P> HandoffPort<P> {
    pub fn worker(&self) -> WorkerId {
        self.me
    }

    #[inline]
    pub fn send(&mut self, to: WorkerId, packet: P) -> Result<(), HandoffRefused<P>> {
        let Some(Some(ring)) = self.outgoing.get_mut(usize::from(to.0)) else {
            return Err(HandoffRefused::NoRing(packet));
        };
        match ring.push(packet) {
            Ok(()) => {
                self.sent += 1;
                Ok(())
            }
            Err(rtrb::PushError::Full(packet)) => {
                self.ring_full += 1;
                Err(HandoffRefused::RingFull(packet))
            }
        }
    }

    /// Takes up to `max` handed-over packets, round-robin over the senders; returns the count.
    #[inline]
    pub fn receive(&mut self, max: usize, mut deliver: impl FnMut(P)) -> usize {
        let mut taken = 0;
        for ring in &mut self.incoming {
            while taken < max {
                match ring.pop() {
                    Ok(packet) => {
                        deliver(packet);
                        taken += 1;
                    }
                    Err(_) => break,
                }
            }
        }
        taken
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn ring_full_drops(&self) -> u64 {
        self.ring_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_reach_the_owner_and_a_full_ring_is_counted() {
        let mut ports = handoff_mesh::<u32>(3, 2);
        let mut owner = ports.remove(2);
        let mut other = ports.remove(0);
        other.send(WorkerId(2), 1).unwrap();
        other.send(WorkerId(2), 2).unwrap();
        assert_eq!(other.send(WorkerId(2), 3), Err(HandoffRefused::RingFull(3)));
        assert_eq!(other.send(WorkerId(0), 4), Err(HandoffRefused::NoRing(4)));
        assert_eq!(other.send(WorkerId(7), 5), Err(HandoffRefused::NoRing(5)));
        assert_eq!((other.sent(), other.ring_full_drops()), (2, 1));
        let mut got = Vec::new();
        assert_eq!(owner.receive(8, |p| got.push(p)), 2);
        assert_eq!(got, vec![1, 2]);
        let receiver = std::thread::spawn(move || {
            let mut total = 0u64;
            let mut count = 0;
            while count < 1000 {
                count += owner.receive(16, |p| total += u64::from(p));
            }
            total
        });
        let mut next = 0u32;
        while next < 1000 {
            if other.send(WorkerId(2), next).is_ok() {
                next += 1;
            }
        }
        assert_eq!(receiver.join().unwrap(), 999 * 1000 / 2);
    }
}
