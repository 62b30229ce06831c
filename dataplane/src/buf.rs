//! One packet buffer abstraction for every stage, so that the same ESP, rule and forwarding code
//! runs on DPDK mbufs in the gateway and on plain heap buffers in unit tests and benchmarks.
//!
//! A buffer is a contiguous data window inside a larger allocation: `prepend`/`adj` move the
//! front edge into and out of the headroom, `append`/`trim` move the back edge into and out of
//! the tailroom. None of these allocate.

pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn headroom(&self) -> usize;
    fn tailroom(&self) -> usize;
    /// Grows the window by `n` bytes at the front; `None` (and no change) when the headroom is short.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the window by `n` bytes at the back; `None` (and no change) when the tailroom is short.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Drops `n` bytes from the front; `false` (and no change) when the window is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Drops `n` bytes from the back; `false` (and no change) when the window is shorter.
    fn trim(&mut self, n: usize) -> bool;
    /// Records `port` as the port the packet arrived on, for a buffer handed to another worker
    /// that dispatches it by that port (mbufs); buffers that carry no port ignore it.
    fn set_arrival_port(&mut self, _port: u16) {}
}

/// A heap buffer with fixed head- and tailroom, for tests, benchmarks and the control thread.
#[derive(Clone)]
pub struct HeapBuf {
    storage: Box<[u8]>,
    start: usize,
    end: usize,
}

impl HeapBuf {
    /// DPDK's default mbuf headroom; outer headers of every encapsulation fit in it.
    pub const DEFAULT_HEADROOM: usize = 128;
    pub const DEFAULT_CAPACITY: usize = 2048;

    pub fn with_capacity(capacity: usize, headroom: usize) -> Self {
        let headroom = headroom.min(capacity);
        HeapBuf {
            storage: vec![0u8; capacity].into_boxed_slice(),
            start: headroom,
            end: headroom,
        }
    }

    /// A buffer holding `bytes` behind the default headroom. Panics only if `bytes` does not fit
    /// the default capacity, which is a caller bug, not packet input.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let capacity = (Self::DEFAULT_HEADROOM + bytes.len() + 256).max(Self::DEFAULT_CAPACITY);
        let mut buf = Self::with_capacity(capacity, Self::DEFAULT_HEADROOM);
        buf.append(bytes.len())
            .expect("capacity was sized for the slice")
            .copy_from_slice(bytes);
        buf
    }

    /// Empties the window and puts it back at `headroom`, so a buffer can be reused without allocating.
    pub fn reset(&mut self, headroom: usize) {
        let headroom = headroom.min(self.storage.len());
        self.start = headroom;
        self.end = headroom;
    }
}

impl PacketBuf for HeapBuf {
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.storage[self.start..self.start + n])
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old_end = self.end;
        self.end += n;
        Some(&mut self.storage[old_end..self.end])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.end -= n;
        true
    }
}

impl std::fmt::Debug for HeapBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapBuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_move_within_room_and_refuse_beyond_it() {
        let mut b = HeapBuf::with_capacity(64, 16);
        assert!(b.append(40).is_some());
        assert_eq!(b.tailroom(), 8);
        assert!(b.append(9).is_none());
        assert_eq!(b.len(), 40);
        b.prepend(16).unwrap().fill(0xaa);
        assert!(b.prepend(1).is_none());
        assert_eq!(b.data()[0], 0xaa);
        assert!(b.adj(16));
        assert!(b.trim(40));
        assert!(b.is_empty());
        assert!(!b.trim(1));
        assert!(!b.adj(1));
    }

    #[test]
    fn from_slice_keeps_the_bytes_behind_default_headroom() {
        let b = HeapBuf::from_slice(&[1, 2, 3]);
        assert_eq!(b.data(), &[1, 2, 3]);
        assert_eq!(b.headroom(), HeapBuf::DEFAULT_HEADROOM);
    }
}
