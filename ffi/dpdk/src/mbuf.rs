//! An owned, single-owner packet buffer.
//!
//! Only the first segment is exposed as the data window; chained mbufs (which our pools and
//! PMDs do not produce unless asked) can be read through the first segment and refuse to grow
//! or shrink at the back, since that edge lives in another segment.

use std::fmt;
use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

/// An mbuf that this handle alone owns; dropping it returns it to its pool exactly once.
///
/// `repr(transparent)` over the pointer, so a slice of `Mbuf` is exactly the `rte_mbuf **`
/// array the burst functions take.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<rte_mbuf>,
}

// SAFETY: an mbuf may be handed between lcores; ownership is unique, so there is no sharing.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid, non-null mbuf that no one else will free or use afterwards.
    #[inline]
    pub unsafe fn from_raw(raw: *mut rte_mbuf) -> Mbuf {
        Mbuf {
            raw: NonNull::new_unchecked(raw),
        }
    }

    /// Gives up ownership without freeing, e.g. to hand the mbuf to a C API that takes it.
    #[inline]
    pub fn into_raw(self) -> *mut rte_mbuf {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }

    #[inline]
    pub fn as_raw(&self) -> *mut rte_mbuf {
        self.raw.as_ptr()
    }

    #[inline]
    fn header(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.raw.as_ref() }
    }

    #[inline]
    fn header_mut(&mut self) -> &mut rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively.
        unsafe { self.raw.as_mut() }
    }

    /// The bytes of the first segment's data window.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let h = self.header();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer.
        unsafe {
            std::slice::from_raw_parts(
                (h.buf_addr as *const u8).add(h.data_off as usize),
                h.data_len as usize,
            )
        }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let h = self.header_mut();
        // SAFETY: as in `data`, and we hold the only handle.
        unsafe {
            std::slice::from_raw_parts_mut(
                (h.buf_addr as *mut u8).add(h.data_off as usize),
                h.data_len as usize,
            )
        }
    }

    /// Length of the first segment's data window.
    #[inline]
    pub fn data_len(&self) -> usize {
        self.header().data_len as usize
    }

    /// Length of the whole packet across all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.header().pkt_len as usize
    }

    #[inline]
    pub fn segment_count(&self) -> u16 {
        self.header().nb_segs
    }

    #[inline]
    fn is_single_segment(&self) -> bool {
        self.header().nb_segs == 1
    }

    /// The port the mbuf was received on (as set by the PMD).
    #[inline]
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// Sets the port the mbuf counts as received on (a frame re-injected as if from `port`).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.header_mut().port = port;
    }

    #[inline]
    pub fn headroom(&self) -> usize {
        self.header().data_off as usize
    }

    /// Room after the data window; zero for chained mbufs, whose back edge is elsewhere.
    #[inline]
    pub fn tailroom(&self) -> usize {
        if !self.is_single_segment() {
            return 0;
        }
        let h = self.header();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    /// Grows the window by `n` bytes at the front; `None` (no change) when the headroom is short.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        let h = self.header_mut();
        h.data_off -= n as u16;
        h.data_len += n as u16;
        h.pkt_len += n as u32;
        Some(&mut self.data_mut()[..n])
    }

    /// Grows the window by `n` bytes at the back; `None` (no change) when the tailroom is short.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old_len = self.data_len();
        let h = self.header_mut();
        h.data_len += n as u16;
        h.pkt_len += n as u32;
        Some(&mut self.data_mut()[old_len..])
    }

    /// Drops `n` bytes from the front; `false` (no change) when the first segment is shorter.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        if n > self.data_len() {
            return false;
        }
        let h = self.header_mut();
        h.data_off += n as u16;
        h.data_len -= n as u16;
        h.pkt_len -= n as u32;
        true
    }

    /// Drops `n` bytes from the back; `false` (no change) when the window is shorter or chained.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        if !self.is_single_segment() || n > self.data_len() {
            return false;
        }
        let h = self.header_mut();
        h.data_len -= n as u16;
        h.pkt_len -= n as u32;
        true
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf, and ownership is never duplicated, so this is the only free.
        unsafe { dpdk_sys::dyntun_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("data_len", &self.data_len())
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segment_count())
            .field("headroom", &self.headroom())
            .field("port", &self.port())
            .finish()
    }
}
