//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys::rte_mempool;

use crate::burst::MbufBurst;
use crate::error::{DpdkError, Result};
use crate::mbuf::Mbuf;

/// A handle to a pktmbuf pool. Pools live until EAL cleanup: mbufs point back into their pool
/// and may sit in rings or NIC queues, so there is no safe moment to free one earlier.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    raw: NonNull<rte_mempool>,
}

// SAFETY: DPDK mempools are designed for concurrent get/put from any lcore or registered thread.
unsafe impl Send for Mempool {}
// SAFETY: as above; the handle itself is immutable.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// DPDK's default mbuf buffer: 2048 data bytes behind the default 128-byte headroom.
    pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

    /// Creates a pool of `count` mbufs, each with `data_room` bytes of buffer (headroom included;
    /// `dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE` is the usual value) and a per-lcore cache.
    /// `name` must be unique in the process and at most 25 bytes long.
    pub fn create(name: &str, count: u32, cache_size: u32, data_room: u16) -> Result<Mempool> {
        let subject = || format!("mempool {name} ({count} mbufs of {data_room} bytes)");
        let c_name = CString::new(name)
            .map_err(|_| DpdkError::local("create", subject(), 22, "name contains a NUL byte"))?;
        // SAFETY: c_name is a valid C string; the other arguments are plain values.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                count,
                cache_size,
                0,
                data_room,
                dpdk_sys::SOCKET_ID_ANY,
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool { raw })
            .ok_or_else(|| DpdkError::from_rte_errno("create", subject()))
    }

    /// One mbuf with an empty data window behind the default headroom; `None` when exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the life of the process.
        let raw = unsafe { dpdk_sys::dyntun_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf that nobody else owns.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw.as_ptr()) })
    }

    /// Fills `burst` up to `count` mbufs in one call, all or nothing; `false` when the pool
    /// cannot supply them (or the burst has no room for them).
    pub fn alloc_into(&self, burst: &mut MbufBurst, count: usize) -> bool {
        if count > burst.spare_capacity() {
            return false;
        }
        // SAFETY: the spare slots can take `count` pointers, and on success all of them are
        // fresh mbufs that the burst now owns.
        unsafe {
            let ret = dpdk_sys::dyntun_pktmbuf_alloc_bulk(
                self.raw.as_ptr(),
                burst.spare_slots_ptr(),
                count as u32,
            );
            if ret != 0 {
                return false;
            }
            burst.assume_filled(count);
        }
        true
    }

    /// Mbufs currently free in the pool (per-lcore caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub fn as_raw(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }
}
