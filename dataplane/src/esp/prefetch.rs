//! Software prefetch of an SA's state, for pipelines that know which SAs the next packets of a
//! burst need (after the SPI or rule lookup) and want those cache misses overlapped with work.

const LINE: usize = 64;

/// Prefetches every cache line of `len` bytes starting at `at` into all cache levels.
#[inline(always)]
pub(crate) fn prefetch_bytes(at: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut offset = 0;
        while offset < len {
            // SAFETY: prefetch is a hint; it never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(offset) as *const i8) };
            offset += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (at, len);
    }
}

/// Prefetches the object `value` points to, whatever its (possibly unsized) type.
#[inline(always)]
pub(crate) fn prefetch_value<T: ?Sized>(value: &T) {
    prefetch_bytes(value as *const T as *const u8, std::mem::size_of_val(value));
}
