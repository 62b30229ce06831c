//! DPDK mbufs as [`PacketBuf`]s, so the ESP, rule and forwarding code that runs on `HeapBuf` in
//! unit tests runs unchanged on real packet buffers in the gateway.
//!
//! Single-segment mbufs only: the window is the first segment, and a chained mbuf reports no
//! tailroom and refuses `trim` (see `dpdk::Mbuf`), so code that needs the whole packet must
//! check `segment_count() == 1` (the gateway's pools never chain).

use dpdk::Mbuf;

use crate::buf::PacketBuf;

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn headroom(&self) -> usize {
        Mbuf::headroom(self)
    }
    #[inline]
    fn tailroom(&self) -> usize {
        Mbuf::tailroom(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline]
    fn set_arrival_port(&mut self, port: u16) {
        Mbuf::set_port(self, port)
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use dpdk::{Eal, Mempool};

    fn pool() -> Mempool {
        Eal::init_global_in_memory(128).unwrap_or_else(|e| panic!("EAL for mbuf tests: {e}"));
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Mempool::create(&format!("mbufbuf{n}"), 63, 0, Mempool::DEFAULT_DATA_ROOM).expect("pool")
    }

    /// Every edit a packet stage makes, applied through the trait alone.
    fn edit<B: PacketBuf>(buf: &mut B) -> Vec<(bool, usize, usize, usize)> {
        let mut trace = Vec::new();
        let mut note = |b: &B, ok: bool| trace.push((ok, b.len(), b.headroom(), b.tailroom()));
        let ok = buf.append(60).map(|s| s.fill(0x45)).is_some();
        note(buf, ok);
        let ok = buf
            .prepend(8)
            .map(|s| s.copy_from_slice(b"ESPHDR!!"))
            .is_some();
        note(buf, ok);
        let ok = buf.prepend(4096).is_some();
        note(buf, ok);
        let tail = buf.tailroom();
        let ok = buf.append(tail + 1).is_some();
        note(buf, ok);
        let ok = buf.append(16).map(|s| s.fill(0x10)).is_some();
        note(buf, ok);
        buf.data_mut()[8] ^= 0xff;
        let ok = buf.adj(8);
        note(buf, ok);
        let ok = buf.trim(16);
        note(buf, ok);
        let ok = buf.trim(10_000);
        note(buf, ok);
        trace
    }

    #[test]
    fn an_mbuf_behaves_exactly_like_a_heap_buffer_of_the_same_geometry() {
        let pool = pool();
        let mut mbuf = pool.alloc().expect("mbuf");
        let mut heap = HeapBuf::with_capacity(
            Mempool::DEFAULT_DATA_ROOM as usize,
            HeapBuf::DEFAULT_HEADROOM,
        );
        assert_eq!(PacketBuf::headroom(&mbuf), heap.headroom());
        assert_eq!(PacketBuf::tailroom(&mbuf), heap.tailroom());
        assert_eq!(edit(&mut mbuf), edit(&mut heap));
        assert_eq!(PacketBuf::data(&mbuf), heap.data());
        assert_eq!(PacketBuf::data(&mbuf)[0], 0x45 ^ 0xff);
        drop(mbuf);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn generic_code_reads_and_writes_through_the_trait() {
        fn checksum<B: PacketBuf>(b: &B) -> u32 {
            b.data().iter().map(|&x| x as u32).sum()
        }
        let pool = pool();
        let mut mbuf = pool.alloc().expect("mbuf");
        PacketBuf::append(&mut mbuf, 3)
            .expect("room")
            .copy_from_slice(&[1, 2, 3]);
        assert_eq!(checksum(&mbuf), 6);
        assert_eq!(PacketBuf::len(&mbuf), 3);
        assert!(!PacketBuf::is_empty(&mbuf));
    }
}
