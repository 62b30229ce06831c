//! `dyntun`: the command-line entry point.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
