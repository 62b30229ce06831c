//! Lock-free DPDK rings carrying owned values (mbufs, boxed messages) between lcores, split
//! into a producer and a consumer so that a single-producer ring cannot be fed from two threads.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use crate::burst::MbufBurst;
use crate::error::{DpdkError, Result};
use crate::mbuf::Mbuf;

/// A value that travels through a ring as one pointer and is owned by the ring meanwhile.
pub trait RingItem: Send + Sized {
    fn into_ring_ptr(self) -> *mut c_void;
    /// # Safety
    /// `ptr` must come from `into_ring_ptr` of the same type and be taken back only once.
    unsafe fn from_ring_ptr(ptr: *mut c_void) -> Self;
}

impl RingItem for Mbuf {
    fn into_ring_ptr(self) -> *mut c_void {
        self.into_raw() as *mut c_void
    }
    unsafe fn from_ring_ptr(ptr: *mut c_void) -> Self {
        Mbuf::from_raw(ptr as *mut sys::rte_mbuf)
    }
}

impl<T: Send> RingItem for Box<T> {
    fn into_ring_ptr(self) -> *mut c_void {
        Box::into_raw(self) as *mut c_void
    }
    unsafe fn from_ring_ptr(ptr: *mut c_void) -> Self {
        Box::from_raw(ptr as *mut T)
    }
}

/// Which sides may be shared by several threads (each extra handle via `try_clone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingSharing {
    pub multi_producer: bool,
    pub multi_consumer: bool,
}

struct RingInner<T: RingItem> {
    raw: NonNull<sys::rte_ring>,
    _items: PhantomData<T>,
}

// SAFETY: the ring is built for cross-thread use; the handles enforce the producer/consumer
// sharing the ring was created with.
unsafe impl<T: RingItem> Send for RingInner<T> {}
// SAFETY: as above.
unsafe impl<T: RingItem> Sync for RingInner<T> {}

impl<T: RingItem> Drop for RingInner<T> {
    fn drop(&mut self) {
        // Both handles are gone, so nobody else touches the ring: drain what is left so it is
        // dropped properly, then free the ring.
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: exclusive access; every pointer in the ring came from `into_ring_ptr`.
        unsafe {
            while sys::dyntun_ring_dequeue_burst(
                self.raw.as_ptr(),
                &mut ptr,
                1,
                std::ptr::null_mut(),
            ) == 1
            {
                drop(T::from_ring_ptr(ptr));
            }
            sys::rte_ring_free(self.raw.as_ptr());
        }
    }
}

/// The enqueue side of a ring.
pub struct Producer<T: RingItem> {
    inner: Arc<RingInner<T>>,
    shared: bool,
}

/// The dequeue side of a ring.
pub struct Consumer<T: RingItem> {
    inner: Arc<RingInner<T>>,
    shared: bool,
}

/// Creates a ring holding up to `capacity` items. `name` must be unique and at most 29 bytes.
pub fn ring<T: RingItem>(
    name: &str,
    capacity: u32,
    sharing: RingSharing,
) -> Result<(Producer<T>, Consumer<T>)> {
    let c_name = CString::new(name)
        .map_err(|_| DpdkError::local("create ring", name, 22, "name contains a NUL byte"))?;
    let mut flags = sys::RING_F_EXACT_SZ;
    if !sharing.multi_producer {
        flags |= sys::RING_F_SP_ENQ;
    }
    if !sharing.multi_consumer {
        flags |= sys::RING_F_SC_DEQ;
    }
    // SAFETY: valid C string and plain values.
    let raw = unsafe { sys::rte_ring_create(c_name.as_ptr(), capacity, sys::SOCKET_ID_ANY, flags) };
    let raw = NonNull::new(raw).ok_or_else(|| {
        DpdkError::from_rte_errno("create ring", format!("{name} ({capacity} slots)"))
    })?;
    let inner = Arc::new(RingInner {
        raw,
        _items: PhantomData,
    });
    Ok((
        Producer {
            inner: inner.clone(),
            shared: sharing.multi_producer,
        },
        Consumer {
            inner,
            shared: sharing.multi_consumer,
        },
    ))
}

impl<T: RingItem> Producer<T> {
    /// Another producer handle; `None` for a single-producer ring.
    pub fn try_clone(&self) -> Option<Self> {
        self.shared.then(|| Producer {
            inner: self.inner.clone(),
            shared: true,
        })
    }

    /// Enqueues one item; hands it back when the ring is full.
    #[inline]
    pub fn enqueue(&mut self, item: T) -> std::result::Result<(), T> {
        let ptr = item.into_ring_ptr();
        // SAFETY: one valid pointer; on failure ownership stays with us.
        let done = unsafe {
            sys::dyntun_ring_enqueue_burst(self.inner.raw.as_ptr(), &ptr, 1, std::ptr::null_mut())
        };
        if done == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take it, so we still own it.
            Err(unsafe { T::from_ring_ptr(ptr) })
        }
    }

    pub fn len(&self) -> usize {
        // SAFETY: plain read of the ring's indices.
        unsafe { sys::dyntun_ring_count(self.inner.raw.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Producer<Mbuf> {
    /// Moves as many mbufs as fit from the front of `burst` into the ring, in one call; the rest
    /// stay in the burst. Returns how many moved.
    #[inline]
    pub fn enqueue_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let len = burst.len() as u32;
        // SAFETY: the first `len` slots are owned mbufs; the ring takes the first `done`.
        unsafe {
            let done = sys::dyntun_ring_enqueue_burst(
                self.inner.raw.as_ptr(),
                burst.slots_ptr() as *const *mut c_void,
                len,
                std::ptr::null_mut(),
            ) as usize;
            burst.forget_front(done);
            done
        }
    }
}

impl<T: RingItem> Consumer<T> {
    /// Another consumer handle; `None` for a single-consumer ring.
    pub fn try_clone(&self) -> Option<Self> {
        self.shared.then(|| Consumer {
            inner: self.inner.clone(),
            shared: true,
        })
    }

    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: room for one pointer; a dequeued pointer came from `into_ring_ptr`.
        unsafe {
            let got = sys::dyntun_ring_dequeue_burst(
                self.inner.raw.as_ptr(),
                &mut ptr,
                1,
                std::ptr::null_mut(),
            );
            (got == 1).then(|| T::from_ring_ptr(ptr))
        }
    }

    pub fn len(&self) -> usize {
        // SAFETY: plain read of the ring's indices.
        unsafe { sys::dyntun_ring_count(self.inner.raw.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Consumer<Mbuf> {
    /// Dequeues into the burst's free slots in one call; returns how many arrived.
    #[inline]
    pub fn dequeue_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let room = burst.spare_capacity() as u32;
        // SAFETY: the spare slots take `room` pointers, each an mbuf the ring owned.
        unsafe {
            let got = sys::dyntun_ring_dequeue_burst(
                self.inner.raw.as_ptr(),
                burst.spare_slots_ptr() as *mut *mut c_void,
                room,
                std::ptr::null_mut(),
            ) as usize;
            burst.assume_filled(got);
            got
        }
    }
}
