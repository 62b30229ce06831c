//! One worker's SAs: inbound found by SPI slot (a flat array, O(1) for any tunnel count),
//! outbound bundles found by tunnel id (the rule's target). Generic over the SA state types so
//! the ESP engine's `InboundSa`/`OutboundSa` (or plain specs in tests) can be stored directly.

use arrayvec::ArrayVec;

use super::huge_pages::{grow_huge, huge_vec};
use super::ids::{TunnelId, WorkerId};
use super::spi::{spi_owner, spi_slot};

/// The state types a worker keeps per SA direction.
pub trait SaKinds: 'static {
    type Inbound: Send + 'static;
    type Outbound: Send + 'static;

    /// Where in an `Inbound` value the anti-replay word for a packet with sequence number `seq`
    /// lies, if it has one: `prefetch_inbound` brings that line in with the SA's first lines.
    fn inbound_replay_word(_seq: u32) -> Option<usize> {
        None
    }
}

/// At most two SAs per direction: ESP, AH, or an AH+ESP bundle (applied in the stored order).
pub type SaBundle<S> = ArrayVec<S, 2>;

/// An inbound table slot, on its own cache lines: the entry's first bytes start a line.
#[repr(align(64))]
struct InboundSlot<I>(Option<InboundEntry<I>>);

/// An outbound table slot, on its own cache lines: the first SA then spans the fewest lines a
/// packet's prefetch must bring in.
#[repr(align(64))]
struct OutboundSlot<O>(SaBundle<O>);

/// In C order, the SPI and tunnel in front of the SA state: a lookup reads them, and the SA's
/// first lines, in the slot's first lines.
#[repr(C)]
pub struct InboundEntry<I> {
    pub spi: u32,
    pub tunnel: TunnelId,
    pub sa: I,
}

pub enum InboundLookup<'a, I> {
    Owned(&'a mut InboundEntry<I>),
    /// The SPI belongs to another worker: hand the packet over.
    HandOff(WorkerId),
    /// No such SA here (deleted, or never allocated): a counted drop.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaTableError {
    #[error("SPI {spi:#010x} belongs to worker {owner:?}, not {this:?}")]
    NotOwned {
        spi: u32,
        owner: WorkerId,
        this: WorkerId,
    },
}

pub struct SaTable<K: SaKinds> {
    worker: WorkerId,
    inbound: Vec<InboundSlot<K::Inbound>>,
    /// By tunnel id; an empty bundle is no SA (an `Option` would put its tag in front of the
    /// first SA, pushing its end onto a further line).
    outbound: Vec<OutboundSlot<K::Outbound>>,
    inbound_count: usize,
    outbound_count: usize,
}

impl<K: SaKinds> SaTable<K> {
    pub fn new(worker: WorkerId) -> Self {
        SaTable {
            worker,
            inbound: Vec::new(),
            outbound: Vec::new(),
            inbound_count: 0,
            outbound_count: 0,
        }
    }

    /// Pre-sizes for `tunnels` tunnels so installing them does not reallocate.
    pub fn with_capacity(worker: WorkerId, tunnels: usize) -> Self {
        let mut table = Self::new(worker);
        table.inbound = huge_vec(tunnels * 2);
        table.outbound = huge_vec(tunnels);
        table
    }

    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// Installs an inbound SA; returns whatever stale entry held the slot.
    pub fn install_inbound(
        &mut self,
        spi: u32,
        tunnel: TunnelId,
        sa: K::Inbound,
    ) -> Result<Option<InboundEntry<K::Inbound>>, SaTableError> {
        let owner = spi_owner(spi);
        if owner != self.worker {
            return Err(SaTableError::NotOwned {
                spi,
                owner,
                this: self.worker,
            });
        }
        let slot = spi_slot(spi);
        grow_huge(&mut self.inbound, slot + 1, || InboundSlot(None));
        let previous = self.inbound[slot]
            .0
            .replace(InboundEntry { spi, tunnel, sa });
        if previous.is_none() {
            self.inbound_count += 1;
        }
        Ok(previous)
    }

    pub fn remove_inbound(&mut self, spi: u32) -> Option<InboundEntry<K::Inbound>> {
        if spi_owner(spi) != self.worker {
            return None;
        }
        let entry = &mut self.inbound.get_mut(spi_slot(spi))?.0;
        if entry.as_ref().is_some_and(|e| e.spi == spi) {
            self.inbound_count -= 1;
            entry.take()
        } else {
            None
        }
    }

    /// Sets the outbound bundle of `tunnel` (a rekey replaces the previous one, returned); an
    /// empty bundle is no SA, so installing one removes what was there.
    pub fn install_outbound(
        &mut self,
        tunnel: TunnelId,
        bundle: SaBundle<K::Outbound>,
    ) -> Option<SaBundle<K::Outbound>> {
        if bundle.is_empty() {
            return self.remove_outbound(tunnel);
        }
        let index = tunnel.0 as usize;
        grow_huge(&mut self.outbound, index + 1, || {
            OutboundSlot(SaBundle::new())
        });
        let previous = std::mem::replace(&mut self.outbound[index].0, bundle);
        if previous.is_empty() {
            self.outbound_count += 1;
            return None;
        }
        Some(previous)
    }

    pub fn remove_outbound(&mut self, tunnel: TunnelId) -> Option<SaBundle<K::Outbound>> {
        let removed = std::mem::take(&mut self.outbound.get_mut(tunnel.0 as usize)?.0);
        if removed.is_empty() {
            return None;
        }
        self.outbound_count -= 1;
        Some(removed)
    }

    #[inline]
    pub fn inbound(&mut self, spi: u32) -> InboundLookup<'_, K::Inbound> {
        let owner = spi_owner(spi);
        if owner != self.worker {
            return InboundLookup::HandOff(owner);
        }
        match self.inbound.get_mut(spi_slot(spi)).map(|slot| &mut slot.0) {
            Some(Some(entry)) if entry.spi == spi => InboundLookup::Owned(entry),
            _ => InboundLookup::Unknown,
        }
    }

    /// Starts loading the first line of `tunnel`'s slot, which tells whether the tunnel has an
    /// SA: a burst's lookup calls this for every packet before touching any slot.
    #[inline]
    pub fn prefetch_outbound(&self, tunnel: TunnelId) {
        self.prefetch_outbound_bytes(tunnel, 1);
    }

    /// Starts loading the whole of `tunnel`'s first SA (its state lies inline in the slot), for
    /// the encryption: the worker asks a few packets ahead of sealing, so that the lines of
    /// many packets are not all requested at once.
    #[inline]
    pub fn prefetch_outbound_sa(&self, tunnel: TunnelId) {
        self.prefetch_outbound_bytes(tunnel, first_sa_span::<K::Outbound>());
    }

    #[inline]
    fn prefetch_outbound_bytes(&self, tunnel: TunnelId, bytes: usize) {
        let index = tunnel.0 as usize;
        if index < self.outbound.len() {
            let slot = self.outbound.as_ptr().wrapping_add(index);
            crate::esp::prefetch::prefetch_bytes(slot as *const u8, bytes);
        }
    }

    /// Starts loading the table slot of inbound `spi` for a packet with sequence number `seq`,
    /// without reading it: the slot's first three lines (all a gateway packet reads but its
    /// replay word, a layout test in `esp::inbound` checks), and the replay bitmap word of
    /// `seq` (the whole window would be a dozen lines).
    #[inline]
    pub fn prefetch_inbound(&self, spi: u32, seq: u32) {
        let index = spi_slot(spi);
        if index < self.inbound.len() {
            let slot = self.inbound.as_ptr().wrapping_add(index) as *const u8;
            crate::esp::prefetch::prefetch_bytes(
                slot,
                std::mem::size_of::<Option<InboundEntry<K::Inbound>>>().min(3 * 64),
            );
            if let Some(word) = K::inbound_replay_word(seq) {
                let at = std::mem::offset_of!(InboundEntry<K::Inbound>, sa) + word;
                crate::esp::prefetch::prefetch_bytes(slot.wrapping_add(at), 8);
            }
        }
    }

    #[inline]
    pub fn outbound(&mut self, tunnel: TunnelId) -> Option<&mut SaBundle<K::Outbound>> {
        self.outbound
            .get_mut(tunnel.0 as usize)
            .map(|slot| &mut slot.0)
            .filter(|bundle| !bundle.is_empty())
    }

    pub fn inbound_count(&self) -> usize {
        self.inbound_count
    }

    pub fn outbound_count(&self) -> usize {
        self.outbound_count
    }

    /// SPIs of every inbound SA held, for `show` and leak checks.
    pub fn inbound_spis(&self) -> Vec<u32> {
        self.inbound
            .iter()
            .filter_map(|slot| slot.0.as_ref())
            .map(|e| e.spi)
            .collect()
    }
}

/// Bytes from the start of an outbound slot that cover its first SA: bundles are rare, so the
/// second SA of a slot is left to a demand miss rather than doubling every prefetch. The slot
/// is the bundle's length (wherever the compiler puts it) and two SAs: all but the last SA's
/// bytes reach at least to the end of the first.
pub const fn first_sa_span<O>() -> usize {
    std::mem::size_of::<SaBundle<O>>() - std::mem::size_of::<O>()
}

#[cfg(test)]
mod tests {
    use super::super::spi::SpiAllocator;
    use super::*;

    struct Labels;
    impl SaKinds for Labels {
        type Inbound = &'static str;
        type Outbound = &'static str;
    }

    #[test]
    fn inbound_by_spi_hands_off_foreign_and_forgets_removed() {
        let mut spis = SpiAllocator::new(2);
        let mine = spis.allocate(WorkerId(1)).unwrap();
        let theirs = spis.allocate(WorkerId(0)).unwrap();
        let mut table = SaTable::<Labels>::new(WorkerId(1));
        assert!(table.install_inbound(theirs, TunnelId(0), "x").is_err());
        table.install_inbound(mine, TunnelId(4), "in-4").unwrap();
        match table.inbound(mine) {
            InboundLookup::Owned(entry) => {
                assert_eq!((entry.sa, entry.tunnel), ("in-4", TunnelId(4)))
            }
            _ => panic!("own SA not found"),
        }
        assert!(matches!(
            table.inbound(theirs),
            InboundLookup::HandOff(WorkerId(0))
        ));
        // Same slot, older generation: not this SA.
        spis.release(mine);
        let successor = spis.allocate(WorkerId(1)).unwrap();
        assert!(matches!(table.inbound(successor), InboundLookup::Unknown));
        assert!(table.remove_inbound(successor).is_none());
        assert_eq!(table.remove_inbound(mine).map(|e| e.sa), Some("in-4"));
        assert!(matches!(table.inbound(mine), InboundLookup::Unknown));
        assert_eq!(table.inbound_count(), 0);
    }

    #[test]
    fn the_outbound_prefetch_span_covers_the_first_sa_of_a_slot() {
        /// As wide and as aligned as an outbound SA.
        #[repr(align(64))]
        struct Wide(#[allow(dead_code)] [u8; 320]);
        fn check<O>(first: O) {
            let mut slot = SaBundle::new();
            slot.push(first);
            let start = &slot as *const _ as usize;
            let sa = &slot[0] as *const O as usize;
            let end = sa + std::mem::size_of::<O>();
            assert!(end - start <= first_sa_span::<O>(), "{}", end - start);
            assert!(first_sa_span::<O>() <= std::mem::size_of_val(&slot));
        }
        check(Wide([0; 320]));
        check(0u64);
        check("esp");
    }

    /// Every packet prefetches its tunnel's first SA (`prefetch_outbound`); with 100,000
    /// tunnels each of those lines is a miss, so growing the gateway's SA past four lines
    /// should be a decision, not an accident.
    #[test]
    fn a_gateway_tunnels_first_sa_ends_within_four_lines_of_an_aligned_slot() {
        use crate::pipeline::worker::TunnelOutbound;
        assert!(
            first_sa_span::<TunnelOutbound>() <= 4 * 64,
            "{} bytes",
            first_sa_span::<TunnelOutbound>()
        );
        assert_eq!(std::mem::align_of::<OutboundSlot<TunnelOutbound>>(), 64);
        assert_eq!(
            std::mem::align_of::<InboundSlot<crate::pipeline::worker::TunnelInbound>>(),
            64
        );
    }

    #[test]
    fn outbound_bundle_by_tunnel() {
        let mut table = SaTable::<Labels>::new(WorkerId(0));
        let mut bundle = SaBundle::new();
        bundle.push("esp");
        bundle.push("ah");
        assert!(table.install_outbound(TunnelId(9), bundle).is_none());
        assert_eq!(table.outbound(TunnelId(9)).map(|b| b.len()), Some(2));
        assert!(table.outbound(TunnelId(8)).is_none());
        assert!(table.remove_outbound(TunnelId(9)).is_some());
        assert_eq!(table.outbound_count(), 0);
    }
}
