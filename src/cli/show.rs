//! `dyntun show …` and `dyntun clear …`: one question to a running gateway over its socket.

use std::path::PathBuf;

use clap::Args;

use dyntun_gateway::daemon::socket::{ask, Request};

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The running gateway's operational socket.
    #[arg(long, default_value = super::run::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Answer in JSON (same data as the text).
    #[arg(long)]
    pub json: bool,
    /// What to show, Junos style: `services ipsec-vpn ipsec security-associations detail`,
    /// `services ipsec-vpn ike security-associations`, `services ipsec-vpn ipsec statistics`,
    /// `route [table NAME]`, `interfaces NAME`, `dataplane statistics`, `metrics`.
    #[arg(required = true, trailing_var_arg = true)]
    pub what: Vec<String>,
}

pub fn run(verb: &str, args: &ShowArgs) -> i32 {
    let mut words = vec![verb.to_string()];
    let mut json = args.json;
    for word in &args.what {
        // Junos' `| display json` habit, and `--json` after the words, both work.
        if word == "--json" {
            json = true;
        } else {
            words.push(word.clone());
        }
    }
    match ask(&args.socket, &Request { words, json }) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error:") {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!(
                "dyntun: cannot reach the gateway at {}: {e}",
                args.socket.display()
            );
            1
        }
    }
}
