//! `dyntun run CONFIG [-- EAL-ARGS…]`: the gateway on DPDK, until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::Args;

use dyntun_gateway::daemon::{self, RunOptions};

pub const DEFAULT_SOCKET: &str = "/run/dyntun/dyntun.sock";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Junos configuration (curly-brace or `set` lines) with a `dataplane` hierarchy.
    pub config: PathBuf,
    /// Operational socket that `dyntun show` talks to (created root-only).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// DPDK runtime prefix (`/var/run/dpdk/PREFIX`); one per gateway on a machine.
    #[arg(long, default_value = "dyntun")]
    pub file_prefix: String,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true)]
    pub eal: Vec<String>,
}

pub fn run(args: &RunArgs) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let options = RunOptions {
        config: args.config.clone(),
        socket: args.socket.clone(),
        file_prefix: args.file_prefix.clone(),
        extra_eal: args.eal.clone(),
    };
    match daemon::run(options) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("dyntun: {message}");
            1
        }
    }
}
