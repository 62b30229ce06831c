//! `dyntun`: the command-line entry point.

mod cli;
mod daemon;

fn main() {
    std::process::exit(cli::run());
}
