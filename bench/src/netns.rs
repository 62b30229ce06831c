//! Network namespaces and child processes that clean up after themselves: a benchmark that
//! builds a topology must leave nothing behind, also when it fails half-way or panics. Both
//! guards act on exactly what they created (the namespace by its unique name, the process by its
//! PID).

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop. Names should carry the process id so parallel runs
/// never collide.
pub struct Namespace {
    name: String,
}

impl Namespace {
    pub fn create(name: &str) -> Result<Namespace, String> {
        run("ip", &["netns", "add", name])?;
        let ns = Namespace {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Feeds `commands` (one `ip` command per line, without the leading `ip`) to
    /// `ip -n NAME -batch -`: thousands of addresses in one process start.
    pub fn ip_batch(&self, commands: &str) -> Result<(), String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ip -batch: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("ip -batch: no stdin")?
            .write_all(commands.as_bytes())
            .map_err(|e| format!("ip -batch: {e}"))?;
        let out = child
            .wait_with_output()
            .map_err(|e| format!("ip -batch: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip -n {} -batch: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `sysctl -qw KEY=VALUE` inside the namespace.
    pub fn sysctl(&self, setting: &str) -> Result<(), String> {
        run(
            "ip",
            &["netns", "exec", &self.name, "sysctl", "-qw", setting],
        )
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Moves the calling thread into the namespace, so that sockets it opens from now on live
    /// there. Only this thread moves; call it from a thread made for the purpose.
    pub fn enter_on_this_thread(&self) -> io::Result<()> {
        let file = std::fs::File::open(format!("/var/run/netns/{}", self.name))?;
        // SAFETY: a valid namespace fd; setns only changes the calling thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// A child process stopped on drop: SIGTERM (or the signal given), a grace period, then SIGKILL.
pub struct ChildGuard {
    child: Option<Child>,
    stop_signal: i32,
    grace: Duration,
}

impl ChildGuard {
    pub fn new(child: Child, stop_signal: i32, grace: Duration) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            stop_signal,
            grace,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Signals the process and waits for it; returns its status, `None` if it had to be killed.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill(2) on the PID of our own, not yet reaped, child.
        unsafe { libc::kill(child.id() as i32, self.stop_signal) };
        let deadline = Instant::now() + self.grace;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace_exists(name: &str) -> bool {
        std::path::Path::new(&format!("/var/run/netns/{name}")).exists()
    }

    #[test]
    fn a_namespace_lives_as_long_as_its_guard_and_threads_can_enter_it() {
        let name = format!("benchns{}", std::process::id());
        {
            let ns = Namespace::create(&name).expect("root can create namespaces");
            assert!(namespace_exists(&name));
            ns.ip_batch("addr add 203.0.113.201/32 dev lo\naddr add 203.0.113.202/32 dev lo\n")
                .expect("batch");
            let inside = std::thread::scope(|s| {
                s.spawn(|| {
                    ns.enter_on_this_thread().expect("setns");
                    std::net::UdpSocket::bind("203.0.113.202:0").is_ok()
                })
                .join()
                .expect("thread")
            });
            assert!(inside, "the address exists only inside the namespace");
            assert!(
                std::net::UdpSocket::bind("203.0.113.202:0").is_err(),
                "the calling thread stayed outside"
            );
            assert!(ns.ip(&["link", "set", "nosuchdev", "up"]).is_err());
        }
        assert!(!namespace_exists(&name), "dropped with its guard");
    }

    #[test]
    fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30"])
            .spawn()
            .expect("sh");
        let pid = child.id();
        let mut guard = ChildGuard::new(child, libc::SIGTERM, Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(guard.pid(), pid);
        assert!(guard.exited().is_none());
        assert!(guard.stop().is_none(), "had to be killed");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
