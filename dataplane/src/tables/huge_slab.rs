//! Per-SA state that lives outside the SA tables — crypto engines and shared counters — in
//! memory backed by transparent huge pages. With 100,000 SAs a packet's engine sits on a random
//! one of ~100 MB of heap; on 4 KiB pages that is a page walk before every cache miss, and the
//! walks, not the misses, were most of the cost (`bench esp table`: 2.2× one SA's time on 4 KiB
//! pages, 1.1× on huge pages). The SA tables themselves already ask for huge pages
//! (`huge_pages`); this is the same for what they point to.
//!
//! Blocks come in six sizes, 64 B to 2 KiB, carved from 2 MiB chunks that are advised before
//! anything touches them and never returned to the system (the pool keeps its high-water mark
//! and reuses freed blocks). Allocation and release take a lock: they happen when an SA is
//! built (control thread) or dropped (worker, between bursts), never per packet.

use std::alloc::Layout;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::huge_pages::advise_range;

const CHUNK: usize = 2 << 20;
const SMALLEST: usize = 64;
const CLASSES: usize = 6;
const LARGEST: usize = SMALLEST << (CLASSES - 1);

struct Pool {
    /// Freed blocks by size class, as addresses.
    free: [Vec<usize>; CLASSES],
    /// The unused rest of the newest chunk.
    next: usize,
    end: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: [const { Vec::new() }; CLASSES],
    next: 0,
    end: 0,
});

/// The size class of a value, or `None` when it goes to the ordinary heap (too big, or aligned
/// beyond a cache line).
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > LARGEST || layout.align() > SMALLEST {
        return None;
    }
    let blocks = layout.size().div_ceil(SMALLEST).next_power_of_two();
    Some(blocks.trailing_zeros() as usize)
}

fn allocate(class: usize) -> Option<NonNull<u8>> {
    let size = SMALLEST << class;
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(address) = pool.free[class].pop() {
        return NonNull::new(address as *mut u8);
    }
    if pool.end - pool.next < size {
        let layout = Layout::from_size_align(CHUNK, CHUNK).ok()?;
        // SAFETY: the layout has a non-zero size.
        let chunk = unsafe { std::alloc::alloc(layout) };
        if chunk.is_null() {
            return None;
        }
        // Advice before the first touch: a page is backed by a huge page when first faulted
        // in. A refusal (no THP) leaves ordinary pages, which work the same.
        let _ = advise_range(chunk as usize, CHUNK);
        // The rest of the old chunk is smaller than this block: keep it for smaller classes.
        let (mut rest, end) = (pool.next, pool.end);
        for smaller in (0..class).rev() {
            let bytes = SMALLEST << smaller;
            while end - rest >= bytes {
                pool.free[smaller].push(rest);
                rest += bytes;
            }
        }
        pool.next = chunk as usize;
        pool.end = chunk as usize + CHUNK;
    }
    let address = pool.next;
    pool.next += size;
    NonNull::new(address as *mut u8)
}

fn release(class: usize, block: NonNull<u8>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.free[class].push(block.as_ptr() as usize);
}

/// Where a box's memory came from. Two bytes, so that a box next to small fields in an SA
/// costs a pointer and little more: a heap value's layout is read back from the value itself.
#[derive(Clone, Copy)]
enum Origin {
    Slab(u8),
    /// Too big or too aligned for the slab, or the slab could not grow: `Box`'s allocation.
    Heap,
}

/// Like `Box`, in huge-page memory when the value fits a block.
pub struct HugeBox<T: ?Sized> {
    ptr: NonNull<T>,
    origin: Origin,
}

// SAFETY: a HugeBox owns its value exclusively, as Box does.
unsafe impl<T: ?Sized + Send> Send for HugeBox<T> {}
// SAFETY: shared access only hands out &T.
unsafe impl<T: ?Sized + Sync> Sync for HugeBox<T> {}

impl<T> HugeBox<T> {
    pub fn new(value: T) -> HugeBox<T> {
        let layout = Layout::new::<T>();
        if let Some(class) = class_of(layout) {
            if let Some(block) = allocate(class) {
                let ptr = block.cast::<T>();
                // SAFETY: the block is at least `layout.size()` bytes, 64-byte aligned
                // (≥ align_of::<T>()), and unused.
                unsafe { ptr.as_ptr().write(value) };
                return HugeBox {
                    ptr,
                    origin: Origin::Slab(class as u8),
                };
            }
        }
        let ptr = NonNull::from(Box::leak(Box::new(value)));
        HugeBox {
            ptr,
            origin: Origin::Heap,
        }
    }

    /// The same box as a box of an unsized type, e.g. a trait object: `coerce` is `|v| v`
    /// with the target type spelled out. It must hand back the value itself, not a part of it
    /// (checked, since the box frees what it points to).
    pub fn unsize<U: ?Sized>(self, coerce: fn(&mut T) -> &mut U) -> HugeBox<U> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this.ptr` points to a live T owned by this box, and no other reference to
        // it exists while `coerce` runs.
        let target: &mut U = coerce(unsafe { &mut *this.ptr.as_ptr() });
        let same_object = std::ptr::addr_eq(target as *const U, this.ptr.as_ptr())
            && std::mem::size_of_val(target) == std::mem::size_of::<T>();
        assert!(same_object, "HugeBox::unsize must return the whole value");
        HugeBox {
            ptr: NonNull::from(target),
            origin: this.origin,
        }
    }
}

impl<T: ?Sized> Deref for HugeBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns a live value until it is dropped.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> AsRef<T> for HugeBox<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> DerefMut for HugeBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes the access exclusive.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: ?Sized> Drop for HugeBox<T> {
    fn drop(&mut self) {
        // Read before the value goes: a trait object's layout comes from its vtable.
        // SAFETY: the value is live until the drop below.
        let layout = Layout::for_value(unsafe { self.ptr.as_ref() });
        // SAFETY: the value is live and owned; after this it is never touched again.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        let bytes = self.ptr.cast::<u8>();
        match self.origin {
            Origin::Slab(class) => release(usize::from(class), bytes),
            // SAFETY: allocated by `Box::new` as a value of this layout (Box's global
            // allocator), which `for_value` gives back whether or not the box was unsized.
            Origin::Heap if layout.size() > 0 => unsafe {
                std::alloc::dealloc(bytes.as_ptr(), layout)
            },
            Origin::Heap => {}
        }
    }
}

/// Like `Arc`, in huge-page memory: the count and the value share one block (a 56-byte value
/// and its count fill one cache line).
pub struct HugeArc<T> {
    inner: NonNull<Shared<T>>,
    origin: Origin,
}

#[repr(C)]
struct Shared<T> {
    references: AtomicUsize,
    value: T,
}

// SAFETY: as Arc: the value is shared between threads, so it must be Send + Sync.
unsafe impl<T: Send + Sync> Send for HugeArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for HugeArc<T> {}

impl<T> HugeArc<T> {
    pub fn new(value: T) -> HugeArc<T> {
        let shared = HugeBox::new(Shared {
            references: AtomicUsize::new(1),
            value,
        });
        let shared = std::mem::ManuallyDrop::new(shared);
        HugeArc {
            inner: shared.ptr,
            origin: shared.origin,
        }
    }

    pub fn ptr_eq(a: &HugeArc<T>, b: &HugeArc<T>) -> bool {
        a.inner == b.inner
    }

    fn shared(&self) -> &Shared<T> {
        // SAFETY: the block lives while any handle does.
        unsafe { self.inner.as_ref() }
    }
}

impl<T> Clone for HugeArc<T> {
    fn clone(&self) -> Self {
        // Relaxed, as Arc: a new handle is made from an existing one, which keeps it alive.
        self.shared().references.fetch_add(1, Ordering::Relaxed);
        HugeArc {
            inner: self.inner,
            origin: self.origin,
        }
    }
}

impl<T> Deref for HugeArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.shared().value
    }
}

impl<T> Drop for HugeArc<T> {
    fn drop(&mut self) {
        if self.shared().references.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other handle's last use happens before the value goes.
        fence(Ordering::Acquire);
        drop(HugeBox {
            ptr: self.inner,
            origin: self.origin,
        });
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for HugeArc<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    struct Counted<'a>(&'a AtomicU64, [u8; 100]);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    trait Named {
        fn name(&self) -> &'static str;
    }
    #[repr(align(64))]
    struct Wide([u8; 1000]);
    impl Named for Wide {
        fn name(&self) -> &'static str {
            if self.0[999] == 1 {
                "wide"
            } else {
                "overwritten"
            }
        }
    }

    #[test]
    fn boxes_land_in_cache_line_aligned_blocks_and_drop_their_values_once() {
        let drops = AtomicU64::new(0);
        let boxes: Vec<HugeBox<Counted>> = (0..1000)
            .map(|_| HugeBox::new(Counted(&drops, [7; 100])))
            .collect();
        for b in &boxes {
            assert_eq!(&**b as *const Counted as usize % 64, 0);
            assert_eq!(b.1[99], 7);
        }
        let mut addresses: Vec<usize> = boxes.iter().map(|b| &**b as *const _ as usize).collect();
        addresses.sort();
        assert!(
            addresses.windows(2).all(|w| w[1] - w[0] >= 128),
            "blocks overlap"
        );
        drop(boxes);
        assert_eq!(drops.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn a_trait_object_box_keeps_its_value_and_too_big_values_use_the_heap() {
        let named: HugeBox<dyn Named> =
            HugeBox::new(Wide([1; 1000])).unsize(|w| w as &mut dyn Named);
        assert_eq!(named.name(), "wide");
        assert!(matches!(named.origin, Origin::Slab(4)));
        let big = HugeBox::new([3u8; 5000]);
        assert!(matches!(big.origin, Origin::Heap));
        assert_eq!(big[4999], 3);
        let empty = HugeBox::new(());
        assert!(matches!(empty.origin, Origin::Heap));
    }

    #[test]
    #[should_panic(expected = "whole value")]
    fn unsizing_to_a_part_of_the_value_is_refused() {
        let pair = HugeBox::new((1u64, 2u64));
        let _part: HugeBox<u64> = pair.unsize(|p| &mut p.1);
    }

    #[test]
    fn shared_values_live_until_the_last_handle_goes() {
        let drops = AtomicU64::new(0);
        let first = HugeArc::new(Counted(&drops, [0; 100]));
        let handles: Vec<_> = (0..8).map(|_| first.clone()).collect();
        assert!(HugeArc::ptr_eq(&first, &handles[3]));
        drop(first);
        std::thread::scope(|s| {
            for h in handles {
                s.spawn(move || drop(h));
            }
        });
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn freed_blocks_are_reused() {
        let a = HugeBox::new([0u8; 2000]);
        let address = &*a as *const _ as usize;
        drop(a);
        let b = HugeBox::new([1u8; 2000]);
        // Other tests allocate concurrently: the block may have been taken, but a reused
        // block is the common case and any block must still be valid.
        assert!(address != 0 && b[1999] == 1);
    }

    #[test]
    fn size_classes_round_up_to_powers_of_two_lines() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(64, 8), Some(0));
        assert_eq!(class(65, 8), Some(1));
        assert_eq!(class(1024, 64), Some(4));
        assert_eq!(class(1025, 64), Some(5));
        assert_eq!(class(2048, 64), Some(5));
        assert_eq!(class(2049, 64), None);
        assert_eq!(class(64, 128), None);
        assert_eq!(class(0, 1), None);
    }
}
