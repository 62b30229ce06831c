//! An IKEv1 initiator load generator over real UDP: many remote gateways, each from its own
//! source address, bring up one tunnel each (Main Mode with a pre-shared key, NAT-T floating to
//! port 4500 from MM5, then Quick Mode) against a responder reachable over the network — dyntun
//! or strongSwan's charon alike. A window of negotiations runs at once, as when many dynamic
//! peers reconnect together; lost messages are retransmitted after a timeout.
//!
//! The messages come from `control::ike::test_initiator`; this module only adds sockets,
//! concurrency, retransmission and counting. Run it on a thread that has entered the
//! generator's network namespace (`Namespace::enter_on_this_thread`), where the source addresses
//! exist.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use control::ike::crypto::{HashAlg, IkeCipher};
use control::ike::dh::DhGroup;
use control::ike::identity::{Identity, IdentityData};
use control::ike::test_initiator::{Phase1Params, QuickParams, TestInitiator};
use dataplane::sa::{Cipher, Integrity};

const IKE_PORT: u16 = 500;
const NATT_PORT: u16 = 4500;
/// RFC 3948: IKE on port 4500 starts with four zero bytes, telling it from ESP.
const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// What to load the responder with.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub responder: Ipv4Addr,
    pub psk: String,
    pub group: DhGroup,
    pub tunnels: usize,
    /// Negotiations in flight at once.
    pub window: usize,
    /// Wait before a message is sent again.
    pub retransmit_after: Duration,
    /// Sends of one message before the tunnel counts as failed.
    pub tries: u32,
    /// The responder's protected network, sent as IDcr.
    pub responder_network: (Ipv4Addr, u8),
}

/// Tunnel `i`'s source address: 30.0.0.0 + i (a /32 in the generator's namespace).
pub fn peer_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1e00_0000 + i as u32)
}

/// Tunnel `i`'s protected network, sent as IDci: 20.0.0.0 + i·256, a /24.
pub fn peer_network(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1400_0000 + ((i as u32) << 8))
}

/// What a load run achieved.
#[derive(Clone, Debug, Default)]
pub struct LoadOutcome {
    pub attempted: usize,
    /// Tunnels whose QM3 was sent after a valid QM2.
    pub completed: usize,
    pub retransmissions: u64,
    /// One line per failed tunnel (the first few are enough to diagnose).
    pub failures: Vec<String>,
    /// From the first MM1 to the last QM3.
    pub wall: Duration,
    /// CPU time of the generating thread itself.
    pub generator_cpu: Duration,
}

impl LoadOutcome {
    pub fn tunnels_per_second(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Mm2,
    Mm4,
    Mm6,
    Qm2,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Mm2 => "MM2",
            Step::Mm4 => "MM4",
            Step::Mm6 => "MM6",
            Step::Qm2 => "QM2",
        }
    }
}

/// One remote gateway bringing up its tunnel.
struct Negotiation {
    index: usize,
    initiator: TestInitiator,
    ike: UdpSocket,
    natt: UdpSocket,
    waiting_for: Step,
    /// The last message, as sent (with its marker on 4500), and whether it went from 4500.
    last: (Vec<u8>, bool),
    sent_at: Instant,
    sends: u32,
    retransmissions: u64,
    last_error: Option<String>,
}

enum Progress {
    Waiting,
    Done,
    Failed(String),
}

impl Negotiation {
    fn start(spec: &LoadSpec, index: usize) -> io::Result<Negotiation> {
        let local = peer_address(index);
        let ike = UdpSocket::bind(SocketAddr::new(IpAddr::V4(local), IKE_PORT))?;
        let natt = UdpSocket::bind(SocketAddr::new(IpAddr::V4(local), NATT_PORT))?;
        ike.set_nonblocking(true)?;
        natt.set_nonblocking(true)?;
        let params = Phase1Params {
            cipher: IkeCipher::AesCbc { key_bits: 128 },
            hash: HashAlg::Sha1,
            group: spec.group,
            lifetime_seconds: 28800,
            natt: true,
        };
        let responder = SocketAddr::new(IpAddr::V4(spec.responder), IKE_PORT);
        let mut initiator = TestInitiator::new(
            SocketAddr::new(IpAddr::V4(local), IKE_PORT),
            responder,
            &spec.psk,
            params,
        );
        let mm1 = initiator.mm1();
        let mut n = Negotiation {
            index,
            initiator,
            ike,
            natt,
            waiting_for: Step::Mm2,
            last: (Vec::new(), false),
            sent_at: Instant::now(),
            sends: 0,
            retransmissions: 0,
            last_error: None,
        };
        n.send(spec, mm1, false)?;
        Ok(n)
    }

    fn send(&mut self, spec: &LoadSpec, message: Vec<u8>, from_natt: bool) -> io::Result<()> {
        let wire = if from_natt {
            let mut w = NON_ESP_MARKER.to_vec();
            w.extend_from_slice(&message);
            w
        } else {
            message
        };
        self.last = (wire, from_natt);
        self.sends = 0;
        self.transmit(spec)
    }

    fn transmit(&mut self, spec: &LoadSpec) -> io::Result<()> {
        let (wire, from_natt) = &self.last;
        let (socket, port) = if *from_natt {
            (&self.natt, NATT_PORT)
        } else {
            (&self.ike, IKE_PORT)
        };
        socket.send_to(wire, SocketAddr::new(IpAddr::V4(spec.responder), port))?;
        self.sends += 1;
        self.sent_at = Instant::now();
        Ok(())
    }

    /// Reads what arrived on both sockets and moves the exchange on.
    fn on_readable(&mut self, spec: &LoadSpec, buf: &mut [u8]) -> Progress {
        for from_natt in [false, true] {
            loop {
                let socket = if from_natt { &self.natt } else { &self.ike };
                let len = match socket.recv(buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors surface here (e.g. port unreachable): keep waiting, the
                    // retransmission timer decides.
                    Err(e) => {
                        self.last_error = Some(e.to_string());
                        break;
                    }
                };
                let datagram = &buf[..len];
                let message = match (from_natt, datagram.strip_prefix(&NON_ESP_MARKER)) {
                    (false, _) => datagram,
                    (true, Some(ike)) => ike,
                    // ESP or a keepalive on 4500: not for the generator.
                    (true, None) => continue,
                };
                match self.accept(spec, message) {
                    Ok(Some(progress)) => return progress,
                    Ok(None) => {}
                    Err(e) => self.last_error = Some(e),
                }
            }
        }
        Progress::Waiting
    }

    /// Feeds one IKE message to the initiator; `Ok(None)` when it was the expected reply and the
    /// next message went out. A message that does not fit (a retransmitted earlier reply, an
    /// informational) is an `Err` that is remembered but not fatal.
    fn accept(&mut self, spec: &LoadSpec, message: &[u8]) -> Result<Option<Progress>, String> {
        let i = &mut self.initiator;
        let (next, step) = match self.waiting_for {
            Step::Mm2 => {
                i.on_mm2(message)?;
                (i.mm3(), Step::Mm4)
            }
            Step::Mm4 => {
                i.on_mm4(message)?;
                (i.mm5(true), Step::Mm6)
            }
            Step::Mm6 => {
                i.on_mm6(message)?;
                let (_, qm1) = i.qm1(&quick_params(spec, self.index));
                (qm1, Step::Qm2)
            }
            Step::Qm2 => {
                let children = i.on_qm2(message)?;
                if children.is_empty() {
                    return Err("QM2 chose no child SA".into());
                }
                let qm3 = i.qm3();
                self.send(spec, qm3, true).map_err(|e| e.to_string())?;
                return Ok(Some(Progress::Done));
            }
        };
        self.waiting_for = step;
        // From MM5 on, NAT-T peers talk from port 4500 (RFC 3947 §4).
        let from_natt = step != Step::Mm4;
        self.send(spec, next, from_natt)
            .map_err(|e| e.to_string())?;
        Ok(None)
    }

    fn on_timer(&mut self, spec: &LoadSpec, now: Instant) -> Progress {
        if now.duration_since(self.sent_at) < spec.retransmit_after {
            return Progress::Waiting;
        }
        if self.sends >= spec.tries {
            return Progress::Failed(format!(
                "tunnel {} from {}: no {} after {} sends{}",
                self.index,
                peer_address(self.index),
                self.waiting_for.name(),
                self.sends,
                self.last_error
                    .as_ref()
                    .map(|e| format!(" (last unusable reply: {e})"))
                    .unwrap_or_default()
            ));
        }
        self.retransmissions += 1;
        match self.transmit(spec) {
            Ok(()) => Progress::Waiting,
            Err(e) => Progress::Failed(format!("tunnel {}: send: {e}", self.index)),
        }
    }
}

fn subnet(network: Ipv4Addr, prefix_len: u8) -> Identity {
    let mask = Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0),
    );
    Identity {
        data: IdentityData::Ipv4Subnet(network, mask),
        protocol: 0,
        port: 0,
    }
}

fn quick_params(spec: &LoadSpec, index: usize) -> QuickParams {
    let (net, len) = spec.responder_network;
    QuickParams {
        esp: Some((Cipher::AesGcm128, Integrity::None)),
        ah: None,
        pfs: None,
        ids: Some((subnet(peer_network(index), 24), subnet(net, len))),
        lifetime_seconds: Some(3600),
        lifetime_kilobytes: None,
        commit: false,
    }
}

/// Raises the open-file limit to its hard maximum: two sockets per tunnel stay open until the
/// run ends, so that a responder's late retransmissions meet a socket, not an ICMP error.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit for get/setrlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

/// Brings up `spec.tunnels` tunnels, `spec.window` at a time; returns when every tunnel is up
/// or has failed. The calling thread must be inside the generator's namespace.
pub fn run_load(spec: &LoadSpec) -> LoadOutcome {
    let cpu_start = crate::thread_cpu_ns();
    let started = Instant::now();
    let mut outcome = LoadOutcome {
        attempted: spec.tunnels,
        ..LoadOutcome::default()
    };
    let mut in_flight: Vec<Negotiation> = Vec::with_capacity(spec.window);
    // Kept open until the end, see `raise_open_file_limit`.
    let mut finished: Vec<Negotiation> = Vec::with_capacity(spec.tunnels);
    let mut next = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut last_done = started;
    while next < spec.tunnels || !in_flight.is_empty() {
        while in_flight.len() < spec.window.max(1) && next < spec.tunnels {
            match Negotiation::start(spec, next) {
                Ok(n) => in_flight.push(n),
                Err(e) => outcome
                    .failures
                    .push(format!("tunnel {next} from {}: {e}", peer_address(next))),
            }
            next += 1;
        }
        let mut fds: Vec<libc::pollfd> = in_flight
            .iter()
            .flat_map(|n| [n.ike.as_raw_fd(), n.natt.as_raw_fd()])
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 5) };
        let now = Instant::now();
        let mut k = 0;
        while k < in_flight.len() {
            let readable = fds[2 * k].revents != 0 || fds[2 * k + 1].revents != 0;
            let n = &mut in_flight[k];
            let progress = if readable {
                n.on_readable(spec, &mut buf)
            } else {
                n.on_timer(spec, now)
            };
            match progress {
                Progress::Waiting => k += 1,
                Progress::Done => {
                    outcome.completed += 1;
                    last_done = Instant::now();
                    finished.push(in_flight.swap_remove(k));
                    fds.swap(2 * k, 2 * in_flight.len());
                    fds.swap(2 * k + 1, 2 * in_flight.len() + 1);
                }
                Progress::Failed(why) => {
                    outcome.failures.push(why);
                    finished.push(in_flight.swap_remove(k));
                    fds.swap(2 * k, 2 * in_flight.len());
                    fds.swap(2 * k + 1, 2 * in_flight.len() + 1);
                }
            }
        }
    }
    outcome.retransmissions = finished.iter().map(|n| n.retransmissions).sum();
    outcome.wall = last_done.duration_since(started);
    outcome.generator_cpu = Duration::from_nanos(crate::thread_cpu_ns() - cpu_start);
    drop(finished);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_get_distinct_addresses_and_networks() {
        assert_eq!(peer_address(0), Ipv4Addr::new(30, 0, 0, 0));
        assert_eq!(peer_address(257), Ipv4Addr::new(30, 0, 1, 1));
        assert_eq!(peer_network(0), Ipv4Addr::new(20, 0, 0, 0));
        assert_eq!(peer_network(257), Ipv4Addr::new(20, 1, 1, 0));
    }

    #[test]
    fn identities_carry_the_mask_of_the_prefix_length() {
        let id = subnet(Ipv4Addr::new(172, 16, 1, 0), 24);
        assert_eq!(
            id.data,
            IdentityData::Ipv4Subnet(
                Ipv4Addr::new(172, 16, 1, 0),
                Ipv4Addr::new(255, 255, 255, 0)
            )
        );
        assert_eq!(
            subnet(Ipv4Addr::UNSPECIFIED, 0).data,
            IdentityData::Ipv4Subnet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
        );
    }

    /// A whole run against dyntun's own responder behind its plain UDP driver, on loopback
    /// addresses of a namespace made for the test: every tunnel comes up, and a responder that
    /// does not answer makes every tunnel fail after its retransmissions.
    #[test]
    fn tunnels_come_up_against_the_udp_driver_and_fail_against_silence() {
        use control::ike::driver::UdpDriver;
        use control::ike::{PskTable, Responder, ResponderPolicy, Secret};
        use std::sync::atomic::{AtomicBool, Ordering};

        let ns = crate::netns::Namespace::create(&format!("ikeload{}", std::process::id()))
            .expect("namespace");
        let tunnels = 6;
        let mut batch = String::from("addr add 10.1.1.1/32 dev lo\naddr add 10.1.1.2/32 dev lo\n");
        for i in 0..tunnels {
            batch.push_str(&format!("addr add {}/32 dev lo\n", peer_address(i)));
        }
        ns.ip_batch(&batch).expect("addresses");
        let stop = AtomicBool::new(false);
        let spec = LoadSpec {
            responder: Ipv4Addr::new(10, 1, 1, 1),
            psk: "load test key".into(),
            group: DhGroup::Modp1024,
            tunnels,
            window: 4,
            retransmit_after: Duration::from_millis(500),
            tries: 3,
            responder_network: (Ipv4Addr::new(172, 16, 1, 0), 24),
        };
        let (up, silent) = std::thread::scope(|s| {
            s.spawn(|| {
                ns.enter_on_this_thread().expect("setns");
                let policy = ResponderPolicy::new(
                    vec![IpAddr::V4(spec.responder)],
                    PskTable {
                        explicit: Vec::new(),
                        global: Some(Secret::from("load test key")),
                    },
                );
                let mut responder = Responder::new(policy);
                let mut driver =
                    UdpDriver::bind(&[IpAddr::V4(spec.responder)]).expect("bind 500/4500");
                while !stop.load(Ordering::Relaxed) {
                    driver
                        .poll(&mut responder, Duration::from_millis(2))
                        .expect("driver");
                }
            });
            let generator = s.spawn(|| {
                ns.enter_on_this_thread().expect("setns");
                let up = run_load(&spec);
                let silent = run_load(&LoadSpec {
                    responder: Ipv4Addr::new(10, 1, 1, 2),
                    tunnels: 2,
                    retransmit_after: Duration::from_millis(50),
                    tries: 2,
                    ..spec.clone()
                });
                (up, silent)
            });
            let result = generator.join().expect("generator");
            stop.store(true, Ordering::Relaxed);
            result
        });
        assert_eq!(up.completed, tunnels, "failures: {:?}", up.failures);
        assert!(up.failures.is_empty());
        assert!(up.tunnels_per_second() > 0.0);
        assert_eq!(silent.completed, 0);
        assert_eq!(silent.failures.len(), 2);
        assert!(
            silent.failures[0].contains("no MM2 after 2 sends"),
            "{:?}",
            silent.failures
        );
        assert_eq!(silent.retransmissions, 2);
    }
}
