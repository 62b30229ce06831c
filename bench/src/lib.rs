//! Shared helpers for the benchmark binaries: every binary prints a markdown table, writes JSON
//! under `bench/results/`, and may draw a PNG line plot there too.

pub mod cpu_time;
pub mod plot;
pub mod results;
pub mod table;

pub use cpu_time::thread_cpu_ns;
pub use plot::{LinePlot, Series};
pub use results::{results_dir, write_json};
pub use table::Table;
