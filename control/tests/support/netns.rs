//! Network namespaces and veth links, removed on drop.

use std::fs::File;
use std::os::fd::AsRawFd;

use super::{run, unique};

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and returns its stdout (panics on failure).
    pub fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Moves the calling thread into this namespace (sockets it opens afterwards live there).
    pub fn enter_current_thread(&self) {
        let file = File::open(format!("/var/run/netns/{}", self.name)).expect("netns file");
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns failed: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Connects two namespaces point-to-point: `a_addr` in `a`, `b_addr` in `b` (host addresses,
/// /32, with a host route to the other side), so several peers can share one gateway address.
pub fn link(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) {
    let a_if = unique("va");
    let b_if = unique("vb");
    run(
        "ip",
        &[
            "link", "add", &a_if, "netns", &a.name, "type", "veth", "peer", "name", &b_if, "netns",
            &b.name,
        ],
    );
    for (ns, ifname, mine, other) in [(a, &a_if, a_addr, b_addr), (b, &b_if, b_addr, a_addr)] {
        // Addresses live on lo so one gateway address can serve several links.
        let have = ns.exec(&["ip", "-o", "addr", "show", "to", mine]);
        if have.trim().is_empty() {
            ns.exec(&["ip", "addr", "add", &format!("{mine}/32"), "dev", "lo"]);
        }
        ns.exec(&["ip", "link", "set", ifname, "up"]);
        ns.exec(&[
            "ip",
            "route",
            "add",
            &format!("{other}/32"),
            "dev",
            ifname,
            "src",
            mine,
        ]);
    }
}
