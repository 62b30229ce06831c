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

/// One table the lookup reads: `objects` entries `stride` bytes apart, of which one access
/// touches `lines_per_access` consecutive cache lines from the start of an entry.
#[derive(Clone, Copy, Debug)]
pub struct Stage {
    pub objects: usize,
    pub stride: usize,
    pub lines_per_access: usize,
}

/// Whether the tables are backed by 2 MiB pages (as the worker's own tables are) or by 4 KiB
/// pages (as individually allocated SA state is): TLB misses are part of the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages {
    Huge,
    Small,
}

type Line = [u64; LINE / 8];

/// Room for every entry and the lines the last one's access may reach.
fn table(stage: &Stage, pages: Pages) -> Vec<Line> {
    let lines = (stage.objects * stage.stride).div_ceil(LINE) + stage.lines_per_access + 1;
    let mut table = match pages {
        Pages::Huge => huge_vec(lines),
        Pages::Small => Vec::with_capacity(lines),
    };
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
/// sizes minus the same walk over one-entry tables (always cached), so the walk's own
/// instructions are not counted. Bursts of `burst`, best of `rounds`.
///
/// This is the cost of the misses on their own. When they overlap with the work of other
/// packets, the real cost lies between max(work, floor) and work + floor.
pub fn staged_random_lines_ns(
    stages: &[Stage],
    pages: Pages,
    burst: usize,
    packets: usize,
    rounds: usize,
) -> f64 {
    let cached: Vec<Stage> = stages.iter().map(|s| Stage { objects: 1, ..*s }).collect();
    let walk = staged_walk_ns(stages, pages, burst, packets, rounds);
    let overhead = staged_walk_ns(&cached, pages, burst, packets, rounds);
    (walk - overhead).max(0.0)
}

fn staged_walk_ns(
    stages: &[Stage],
    pages: Pages,
    burst: usize,
    packets: usize,
    rounds: usize,
) -> f64 {
    let tables: Vec<Vec<Line>> = stages.iter().map(|s| table(s, pages)).collect();
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
                // Entry = random × objects / 2^64: exactly `objects` entries, no division.
                let at = |p: usize, carried: u64| {
                    let r = random[(first + p) * stages.len() + s] ^ carried;
                    let entry = ((u128::from(r) * stage.objects as u128) >> 64) as usize;
                    entry * stage.stride / LINE
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
