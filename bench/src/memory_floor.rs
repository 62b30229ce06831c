//! The memory system's floor for a lookup over big tables: the time to bring in, stage after
//! stage, the same number of random cache lines a burst of packets needs, with no work done on
//! them. Measured in the same run as the figure it is compared with, because on a shared VM the
//! DRAM latency and the bandwidth one core gets move from run to run.
//!
//! Each stage prefetches one random spot of its table for every packet of the burst, then
//! reads them; the next stage's spots depend on the values read (all zero, but the CPU cannot
//! know), so stages cannot run ahead of each other — the same dependency a route → rule → SA
//! chain has. With `tables` sized as the real ones, the figure is what a perfect implementation
//! of the same data layout would pay on this machine.

use std::hint::black_box;
use std::time::Instant;

use dataplane::tables::huge_pages::huge_vec;

const LINE: usize = 64;

/// One table the lookup reads: its size and how many consecutive lines one access touches.
#[derive(Clone, Copy, Debug)]
pub struct Stage {
    pub table_bytes: usize,
    pub lines_per_access: usize,
}

type Line = [u64; LINE / 8];

/// Accesses start in the first `bytes` (rounded down to a power of two of lines, so a start is
/// picked with a mask, not a division); the table is twice that, so every access fits.
fn table(bytes: usize, lines_per_access: usize) -> Vec<Line> {
    let starts =
        (1usize << (bytes / LINE).max(1).ilog2()).max(lines_per_access.next_power_of_two());
    let lines = 2 * starts;
    let mut table = huge_vec(lines);
    table.resize(lines, [0; LINE / 8]);
    table
}

fn prefetch(line: *const Line) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = line;
}

/// Nanoseconds per packet the memory system adds: the staged walk over tables of the given
/// sizes minus the same walk over one-line tables (always cached), so the walk's own
/// instructions are not counted. Bursts of `burst`, best of `rounds`.
pub fn staged_random_lines_ns(
    stages: &[Stage],
    burst: usize,
    packets: usize,
    rounds: usize,
) -> f64 {
    let cached: Vec<Stage> = stages
        .iter()
        .map(|s| Stage {
            table_bytes: s.lines_per_access * LINE,
            lines_per_access: s.lines_per_access,
        })
        .collect();
    let walk = staged_walk_ns(stages, burst, packets, rounds);
    let overhead = staged_walk_ns(&cached, burst, packets, rounds);
    (walk - overhead).max(0.0)
}

fn staged_walk_ns(stages: &[Stage], burst: usize, packets: usize, rounds: usize) -> f64 {
    let tables: Vec<Vec<Line>> = stages
        .iter()
        .map(|s| table(s.table_bytes, s.lines_per_access))
        .collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u64> = (0..packets * stages.len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect();
    let mut best = f64::MAX;
    let mut carried = vec![0u64; burst];
    let mut sink = 0u64;
    for _ in 0..rounds {
        let start = Instant::now();
        for first in (0..packets).step_by(burst) {
            let count = burst.min(packets - first);
            carried[..count].fill(0);
            for (s, (stage, table)) in stages.iter().zip(&tables).enumerate() {
                // The last `lines_per_access` lines are never a start, so every access fits.
                let mask = (table.len() / 2).max(1) as u64 - 1;
                let at = |p: usize, carried: u64| {
                    ((random[(first + p) * stages.len() + s] ^ carried) & mask) as usize
                };
                for (p, &c) in carried[..count].iter().enumerate() {
                    let base = at(p, c);
                    for line in 0..stage.lines_per_access {
                        prefetch(&table[base + line]);
                    }
                }
                for (p, c) in carried[..count].iter_mut().enumerate() {
                    let base = at(p, *c);
                    let mut value = 0;
                    for line in 0..stage.lines_per_access {
                        value ^= table[base + line][0];
                    }
                    *c = value;
                }
            }
            sink ^= carried[..count].iter().fold(0, |a, b| a ^ b);
        }
        best = best.min(start.elapsed().as_nanos() as f64 / packets as f64);
    }
    black_box(sink);
    best
}
