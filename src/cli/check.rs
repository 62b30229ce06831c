//! `dyntun check [--display [curly|set]] FILE`: commit-check a configuration file, optionally
//! printing it back normalised.

use std::io::Write;

use control::config::{self, DisplayFormat};

/// Check a configuration (curly-brace or `set` lines); exit 0 if valid, 1 with every error.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Print the normalised configuration when it is valid: `--display FILE` in curly-brace
    /// form, `--display set FILE` as set lines (`--display curly FILE` also works).
    #[arg(long)]
    display: bool,
    /// `[FORMAT] FILE`: the format only with --display.
    #[arg(value_name = "FILE", num_args = 1..=2, required = true)]
    args: Vec<String>,
}

fn format_and_file(args: &CheckArgs) -> Result<(DisplayFormat, &str), String> {
    match args.args.as_slice() {
        [file] => Ok((DisplayFormat::Curly, file)),
        [format, file] if args.display => match format.as_str() {
            "set" => Ok((DisplayFormat::Set, file)),
            "curly" => Ok((DisplayFormat::Curly, file)),
            other => Err(format!(
                "display format '{other}' is neither 'curly' nor 'set'"
            )),
        },
        _ => Err("give one FILE (a display format only together with --display)".into()),
    }
}

pub fn run(args: &CheckArgs) -> i32 {
    let (format, file) = match format_and_file(args) {
        Ok(v) => v,
        Err(message) => {
            eprintln!("dyntun check: {message}");
            return 2;
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{file}: error: cannot read: {e}");
            return 1;
        }
    };
    let checked = config::check_bytes(bytes);
    match &checked.result {
        Ok(_) => {
            if args.display {
                let shown = checked.document.display(format);
                let mut out = std::io::stdout().lock();
                if out.write_all(shown.as_bytes()).is_err() {
                    return 1;
                }
            }
            0
        }
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            // A closed stderr leaves nothing better to do than the exit status.
            let _ = err.write_all(errors.render(file).as_bytes());
            1
        }
    }
}
