//! The datagrams a reassembler is collecting, shared by IPv4 and IPv6: a fixed table allocated
//! once, each slot one datagram of at most `MAX_DATAGRAM` bytes with a bitmap of the 8-byte
//! units received, reused when its datagram completes, fails or times out.

use super::reassembly::MAX_DATAGRAM;

const UNITS: usize = MAX_DATAGRAM / 8;
const UNIT_WORDS: usize = UNITS.div_ceil(64);

/// One datagram being collected. `K` identifies it (addresses, identification); `H` is the
/// length of the fixed IP header kept from its first fragment.
pub(super) struct FragmentSlot<K, const H: usize> {
    pub key: Option<K>,
    pub started: u64,
    /// The IP header of the first fragment (offset 0), once it arrived.
    pub header: [u8; H],
    /// IPv6: the protocol after the Fragment header (IPv4 keeps it in `header`).
    pub next_header: u8,
    pub have_first: bool,
    /// Payload length, known once the last fragment arrived.
    pub total: Option<usize>,
    received: [u64; UNIT_WORDS],
    pub data: Box<[u8]>,
}

impl<K, const H: usize> FragmentSlot<K, H> {
    /// Whether any 8-byte unit in `first..end` has arrived already.
    pub fn covers_any(&self, first: usize, end: usize) -> bool {
        (first..end).any(|u| self.received[u / 64] & (1 << (u % 64)) != 0)
    }

    /// Whether every unit below `end` has arrived.
    pub fn covers_all(&self, end: usize) -> bool {
        (0..end).all(|u| self.received[u / 64] & (1 << (u % 64)) != 0)
    }

    /// Stores `payload` at byte `offset` (the caller checked it fits `MAX_DATAGRAM`).
    pub fn store(&mut self, offset: usize, payload: &[u8]) {
        let end = offset + payload.len();
        self.data[offset..end].copy_from_slice(payload);
        for unit in offset / 8..end.div_ceil(8) {
            self.received[unit / 64] |= 1 << (unit % 64);
        }
    }

    /// The whole payload once the first and last fragments and everything between arrived.
    pub fn complete_len(&self) -> Option<usize> {
        let total = self.total.filter(|_| self.have_first)?;
        self.covers_all(total.div_ceil(8)).then_some(total)
    }
}

pub(super) struct FragmentSlots<K, const H: usize> {
    slots: Vec<FragmentSlot<K, H>>,
    timeout_seconds: u64,
    /// Datagrams abandoned because they did not complete in time.
    pub timeouts: u64,
}

impl<K: Copy + PartialEq, const H: usize> FragmentSlots<K, H> {
    /// Allocates `slots` datagram buffers up front.
    pub fn new(slots: usize, timeout_seconds: u64) -> Self {
        FragmentSlots {
            slots: (0..slots)
                .map(|_| FragmentSlot {
                    key: None,
                    started: 0,
                    header: [0; H],
                    next_header: 0,
                    have_first: false,
                    total: None,
                    received: [0; UNIT_WORDS],
                    data: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
                })
                .collect(),
            timeout_seconds,
            timeouts: 0,
        }
    }

    /// The slot already collecting `key`, or a free or timed-out one (reset for `key`); `None`
    /// when every slot holds a live datagram.
    pub fn slot_for(&mut self, key: K, now: u64) -> Option<&mut FragmentSlot<K, H>> {
        let timeout = self.timeout_seconds;
        if let Some(i) = self.slots.iter().position(|s| s.key == Some(key)) {
            if now.saturating_sub(self.slots[i].started) < timeout {
                return Some(&mut self.slots[i]);
            }
        }
        let i = self.slots.iter().position(|s| {
            s.key.is_none() || s.key == Some(key) || now.saturating_sub(s.started) >= timeout
        })?;
        if self.slots[i].key.is_some() {
            self.timeouts += 1;
        }
        let slot = &mut self.slots[i];
        slot.key = Some(key);
        slot.started = now;
        slot.have_first = false;
        slot.total = None;
        slot.received = [0; UNIT_WORDS];
        Some(slot)
    }
}
