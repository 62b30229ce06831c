//! Transparent huge pages for the big per-worker tables. With 100,000 tunnels every packet
//! touches entries megabytes apart; on 4 KiB pages each of those is also a TLB miss (a page walk
//! before the cache miss even starts). The kernel in `madvise` THP mode gives 2 MiB pages only to
//! ranges that ask, so a table asks once its allocation is big enough to hold one.

const HUGE_PAGE: usize = 2 << 20;

/// Asks for huge pages over the whole 2 MiB-aligned part of `table`'s allocation. A hint: a
/// kernel without THP, or in `never` mode, refuses and nothing changes.
pub fn advise_huge_pages<T>(table: &Vec<T>) {
    let bytes = table.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE_PAGE {
        return;
    }
    let start = table.as_ptr() as usize;
    let aligned_start = start.next_multiple_of(HUGE_PAGE);
    let aligned_end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if aligned_end <= aligned_start {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the range lies inside this vector's live allocation; MADV_HUGEPAGE changes only
    // how the kernel backs the pages, never their contents.
    unsafe {
        libc::madvise(
            aligned_start as *mut libc::c_void,
            aligned_end - aligned_start,
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advising_small_and_large_tables_keeps_their_contents() {
        let small = vec![7u8; 100];
        advise_huge_pages(&small);
        let large: Vec<u64> = (0..1u64 << 20).collect();
        advise_huge_pages(&large);
        assert_eq!(small[99], 7);
        assert_eq!(large[12_345], 12_345);
    }
}
