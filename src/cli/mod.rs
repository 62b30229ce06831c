//! The `dyntun` command line: one module per subcommand.

mod check;
mod run;
mod show;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "dyntun",
    version,
    about = "IPsec gateway for tunnels with dynamic endpoints, on DPDK"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Check(check::CheckArgs),
    /// Run the gateway on DPDK.
    Run(run::RunArgs),
    /// Ask a running gateway (Junos `show` commands).
    Show(show::ShowArgs),
    /// Clear state on a running gateway.
    Clear(show::ShowArgs),
}

/// Runs the command line and returns the process exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Show(args) => show::run("show", &args),
        Command::Clear(args) => show::run("clear", &args),
    }
}
