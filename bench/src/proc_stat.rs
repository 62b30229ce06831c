//! CPU time of another process or one of its threads, read from `/proc/PID/stat` or
//! `/proc/PID/task/TID/stat`, so a benchmark can charge a daemon (dyntun's control thread,
//! strongSwan's charon) for the work it did whatever else the shared machine was running.

use std::fmt;

/// Why a stat line could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatError {
    /// The file could not be read (the process or thread is gone, or no permission).
    Unreadable(String),
    /// No `(comm)` field: the closing parenthesis is missing.
    NoCommand,
    /// Fewer fields than `stime` (field 15) after the command.
    TooShort { fields: usize },
    /// `utime` or `stime` is not a number.
    NotANumber { field: &'static str },
}

impl fmt::Display for StatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatError::Unreadable(why) => write!(f, "stat unreadable: {why}"),
            StatError::NoCommand => write!(f, "stat line has no (comm) field"),
            StatError::TooShort { fields } => {
                write!(
                    f,
                    "stat line has {fields} fields after comm, stime needs 13"
                )
            }
            StatError::NotANumber { field } => write!(f, "stat field {field} is not a number"),
        }
    }
}

impl std::error::Error for StatError {}

/// The parts of a stat line a benchmark needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskCpu {
    /// The task's name (`comm`), which may contain spaces and parentheses.
    pub command: String,
    /// User-mode CPU time, in clock ticks.
    pub user_ticks: u64,
    /// Kernel-mode CPU time, in clock ticks.
    pub system_ticks: u64,
}

impl TaskCpu {
    /// User plus system time in seconds, with `ticks_per_second` from `sysconf(_SC_CLK_TCK)`.
    pub fn seconds(&self, ticks_per_second: u64) -> f64 {
        (self.user_ticks + self.system_ticks) as f64 / ticks_per_second.max(1) as f64
    }
}

/// Parses one `/proc/…/stat` line. `comm` is found by the *last* `)`, since a task may name
/// itself with parentheses or spaces.
pub fn parse_stat(line: &str) -> Result<TaskCpu, StatError> {
    let open = line.find('(').ok_or(StatError::NoCommand)?;
    let close = line.rfind(')').ok_or(StatError::NoCommand)?;
    if close < open {
        return Err(StatError::NoCommand);
    }
    let command = line[open + 1..close].to_string();
    // After comm: state(3) ppid(4) … utime(14) stime(15), i.e. indices 11 and 12 here.
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    if rest.len() < 13 {
        return Err(StatError::TooShort { fields: rest.len() });
    }
    let number = |i: usize, field: &'static str| {
        rest[i]
            .parse::<u64>()
            .map_err(|_| StatError::NotANumber { field })
    };
    Ok(TaskCpu {
        command,
        user_ticks: number(11, "utime")?,
        system_ticks: number(12, "stime")?,
    })
}

/// Clock ticks per second for stat's time fields.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// The whole process (every thread, living or exited): `/proc/PID/stat`.
pub fn process_cpu(pid: u32) -> Result<TaskCpu, StatError> {
    read(&format!("/proc/{pid}/stat"))
}

/// One thread: `/proc/PID/task/TID/stat`.
pub fn thread_cpu(pid: u32, tid: u32) -> Result<TaskCpu, StatError> {
    read(&format!("/proc/{pid}/task/{tid}/stat"))
}

/// The thread ids of a process with their names, for finding a named thread.
pub fn threads(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
            Some((tid, name.trim().to_string()))
        })
        .collect()
}

fn read(path: &str) -> Result<TaskCpu, StatError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| StatError::Unreadable(format!("{path}: {e}")))?;
    parse_stat(text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 29 0 0 20 0 3 0 \
                    12345 1000000 200 18446744073709551615";
        let t = parse_stat(line).expect("parses");
        assert_eq!(t.command, "my (odd) name");
        assert_eq!((t.user_ticks, t.system_ticks), (731, 29));
        assert!((t.seconds(100) - 7.6).abs() < 1e-9);
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        assert_eq!(parse_stat("4242 no parens S 1"), Err(StatError::NoCommand));
        assert_eq!(
            parse_stat("4242 (x) S 1 2 3"),
            Err(StatError::TooShort { fields: 4 })
        );
        assert_eq!(
            parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 5"),
            Err(StatError::NotANumber { field: "utime" })
        );
        assert_eq!(parse_stat(")(x"), Err(StatError::NoCommand));
    }

    #[test]
    fn this_process_and_its_main_thread_are_readable_and_named() {
        let pid = std::process::id();
        let me = process_cpu(pid).expect("own stat");
        let main = thread_cpu(pid, pid).expect("own main thread");
        assert_eq!(me.command, main.command);
        assert!(threads(pid).iter().any(|(tid, _)| *tid == pid));
        assert!(matches!(
            process_cpu(u32::MAX),
            Err(StatError::Unreadable(_))
        ));
    }
}
