//! Shared helpers for the benchmark binaries: every binary prints a markdown table, writes JSON
//! under `bench/results/`, and may draw a PNG line plot there too.

pub mod charon_responder;
pub mod cpu_time;
pub mod dyntun_gateway;
pub mod gateway_streams;
pub mod ike_load;
pub mod ike_rate_topology;
pub mod memory_floor;
pub mod netns;
pub mod plot;
pub mod proc_stat;
pub mod results;
pub mod table;
pub mod testpmd;
pub mod worker_ports;

pub use cpu_time::thread_cpu_ns;
pub use plot::{LinePlot, Series};
pub use results::{results_dir, write_json};
pub use table::Table;
