//! The `dyntun` command line: one module per subcommand.

mod check;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "dyntun", version, about = "IPsec gateway for tunnels with dynamic endpoints, on DPDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Check(check::CheckArgs),
}

/// Runs the command line and returns the process exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
    }
}
