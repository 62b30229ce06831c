//! A fixed-size, inline array of owned mbufs: what rx fills, tx drains and rings carry.
//! No heap allocation, so it lives on a worker's stack or inside its state.

use std::mem::MaybeUninit;
use std::ptr;

use dpdk_sys::rte_mbuf;

use crate::mbuf::Mbuf;

/// The number of packets one burst holds (DPDK's customary burst size).
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] owned mbufs, in order. Mbufs still in the burst when it is dropped or
/// cleared are freed together with one bulk call.
pub struct MbufBurst {
    len: usize,
    slots: [MaybeUninit<Mbuf>; BURST_SIZE],
}

// SAFETY: it owns its mbufs, which are Send.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    pub const fn new() -> Self {
        MbufBurst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    #[inline]
    pub fn spare_capacity(&self) -> usize {
        BURST_SIZE - self.len
    }

    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: the first `len` slots are initialised and we hold `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Appends an mbuf; hands it back when the burst is full.
    #[inline]
    pub fn push(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(mbuf);
        }
        self.slots[self.len].write(mbuf);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live range.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Removes the mbuf at `index`, replacing it with the last one (order is not kept).
    pub fn swap_remove(&mut self, index: usize) -> Option<Mbuf> {
        if index >= self.len {
            return None;
        }
        let last = self.len - 1;
        self.as_mut_slice().swap(index, last);
        self.pop()
    }

    /// Keeps the mbufs for which `keep` is true, in order, and frees the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) {
        let old_len = self.len;
        // A panic in `keep` must not lead to a double free: while we shuffle, the burst owns
        // only the already-compacted prefix.
        self.len = 0;
        let base = self.slots.as_mut_ptr() as *mut Mbuf;
        for i in 0..old_len {
            // SAFETY: slots old_len > i >= kept are initialised and owned by this loop.
            unsafe {
                let slot = base.add(i);
                if keep(&mut *slot) {
                    if i != self.len {
                        ptr::copy_nonoverlapping(slot, base.add(self.len), 1);
                    }
                    self.len += 1;
                } else {
                    ptr::drop_in_place(slot);
                }
            }
        }
    }

    /// Moves every mbuf out, in order.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Frees every mbuf in one bulk call.
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let len = self.len;
        self.len = 0;
        // SAFETY: the first `len` slots are owned mbufs, now outside the live range.
        unsafe { dpdk_sys::dyntun_pktmbuf_free_bulk(self.slots_ptr(), len as u32) }
    }

    #[inline]
    pub(crate) fn slots_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.slots.as_mut_ptr() as *mut *mut rte_mbuf
    }

    /// Where a C function may write up to `spare_capacity()` new mbuf pointers.
    #[inline]
    pub(crate) fn spare_slots_ptr(&mut self) -> *mut *mut rte_mbuf {
        // SAFETY: len <= BURST_SIZE, so this is at most one past the end.
        unsafe { self.slots_ptr().add(self.len) }
    }

    /// Records that `count` spare slots now hold owned, non-null mbufs.
    ///
    /// # Safety
    /// The caller must have written `count` valid mbuf pointers at `spare_slots_ptr()`.
    #[inline]
    pub(crate) unsafe fn assume_filled(&mut self, count: usize) {
        debug_assert!(count <= self.spare_capacity());
        self.len += count;
    }

    /// Forgets the first `count` mbufs (now owned by someone else) and moves the rest to the
    /// front, keeping their order.
    ///
    /// # Safety
    /// Ownership of the first `count` mbufs must have passed elsewhere (tx queue, ring).
    #[inline]
    pub(crate) unsafe fn forget_front(&mut self, count: usize) {
        debug_assert!(count <= self.len);
        let rest = self.len - count;
        if rest > 0 && count > 0 {
            let base = self.slots_ptr();
            ptr::copy(base.add(count), base, rest);
        }
        self.len = rest;
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufBurst").field("len", &self.len).finish()
    }
}

/// The iterator of [`MbufBurst::drain`]; mbufs not taken are freed when it is dropped.
pub struct Drain<'a> {
    burst: &'a mut MbufBurst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: slots next..end are initialised and owned by the drain.
        let mbuf = unsafe { self.burst.slots[self.next].assume_init_read() };
        self.next += 1;
        Some(mbuf)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        let left = self.end - self.next;
        if left > 0 {
            // SAFETY: slots next..end are still owned mbufs nobody else will free.
            unsafe {
                dpdk_sys::dyntun_pktmbuf_free_bulk(
                    self.burst.slots_ptr().add(self.next),
                    left as u32,
                )
            }
        }
    }
}
