//! `dyntun`: the command-line entry point (check, run, show).

fn main() {
    eprintln!("dyntun: no subcommands are implemented yet");
    std::process::exit(2);
}
