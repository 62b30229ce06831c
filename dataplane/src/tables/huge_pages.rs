//! Transparent huge pages for the big per-worker tables. With 100,000 tunnels every packet
//! touches entries megabytes apart; on 4 KiB pages each of those is also a TLB miss (a page walk
//! before the cache miss even starts). The kernel in `madvise` THP mode gives 2 MiB pages only to
//! ranges that ask, so a table asks once its allocation is big enough to hold one.

const HUGE_PAGE: usize = 2 << 20;

/// What became of a request for huge pages. Callers may ignore it: it is only a hint, and a
/// refusal leaves the table working on ordinary pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePageAdvice {
    /// The allocation holds no whole 2 MiB-aligned huge page, so nothing was asked.
    TooSmall,
    /// The kernel accepted the advice for the aligned part of the allocation.
    Taken,
    /// The kernel refused (no THP support, or THP disabled); carries the errno.
    Refused(i32),
}

/// Asks for huge pages over the whole 2 MiB-aligned part of `table`'s allocation.
pub fn advise_huge_pages<T>(table: &Vec<T>) -> HugePageAdvice {
    let bytes = table.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE_PAGE {
        return HugePageAdvice::TooSmall;
    }
    let start = table.as_ptr() as usize;
    let aligned_start = start.next_multiple_of(HUGE_PAGE);
    let aligned_end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if aligned_end <= aligned_start {
        return HugePageAdvice::TooSmall;
    }
    advise_range(aligned_start, aligned_end - aligned_start)
}

/// An empty vector with room for `capacity` elements whose memory was given the advice
/// *before* anything touched it: the kernel backs a page with a huge page when it is first
/// faulted in, so advice given after a table was filled changes nothing until khugepaged
/// (maybe) collapses it much later.
pub fn huge_vec<T>(capacity: usize) -> Vec<T> {
    let table = Vec::with_capacity(capacity);
    advise_huge_pages(&table);
    table
}

/// Makes `table` at least `len` long, filling with `fill`; when it must reallocate, the new
/// allocation is advised before the elements move in (capacity doubles, as `Vec` would).
pub fn grow_huge<T>(table: &mut Vec<T>, len: usize, fill: impl FnMut() -> T) {
    if len <= table.len() {
        return;
    }
    if len > table.capacity() {
        let mut bigger = huge_vec(len.max(table.capacity() * 2));
        bigger.append(table);
        *table = bigger;
    }
    table.resize_with(len, fill);
}

#[cfg(target_os = "linux")]
pub(crate) fn advise_range(start: usize, len: usize) -> HugePageAdvice {
    // SAFETY: the caller passes a range inside a live allocation; MADV_HUGEPAGE changes only
    // how the kernel backs the pages, never their contents.
    let status = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    if status == 0 {
        HugePageAdvice::Taken
    } else {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        HugePageAdvice::Refused(errno)
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise_range(_start: usize, _len: usize) -> HugePageAdvice {
    HugePageAdvice::Refused(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bracketed THP mode, e.g. `madvise` from `always [madvise] never`.
    fn thp_mode() -> Option<String> {
        let text = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
        let open = text.find('[')?;
        let close = text[open..].find(']')? + open;
        Some(text[open + 1..close].to_owned())
    }

    #[test]
    fn a_table_smaller_than_a_huge_page_asks_nothing() {
        let small = vec![7u8; 100];
        assert_eq!(advise_huge_pages(&small), HugePageAdvice::TooSmall);
        assert_eq!(small[99], 7);
    }

    #[test]
    fn grown_tables_keep_their_elements_and_fill_the_rest() {
        let mut table = vec![1u32, 2, 3];
        grow_huge(&mut table, 2, || 9);
        assert_eq!(table, [1, 2, 3]);
        grow_huge(&mut table, 1 << 20, || 9);
        assert_eq!(table.len(), 1 << 20);
        assert_eq!(&table[..4], &[1, 2, 3, 9]);
        assert_eq!(table[(1 << 20) - 1], 9);
        let empty: Vec<u64> = huge_vec(1 << 20);
        assert!(empty.is_empty() && empty.capacity() >= 1 << 20);
    }

    #[test]
    fn a_large_table_gets_the_advice_when_thp_is_enabled() {
        match thp_mode().as_deref() {
            Some("always") | Some("madvise") => {}
            other => {
                eprintln!("SKIPPED: transparent huge pages unavailable (mode {other:?})");
                return;
            }
        }
        // 8 MiB always contains at least one whole 2 MiB-aligned page, wherever it starts.
        let large: Vec<u64> = (0..1u64 << 20).collect();
        assert_eq!(advise_huge_pages(&large), HugePageAdvice::Taken);
        assert_eq!(large[12_345], 12_345);
    }
}
