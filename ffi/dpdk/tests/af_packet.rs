//! A net_af_packet port on one end of a veth pair whose other end lives in a network namespace
//! this test creates: the kernel side sends a frame DPDK must receive, and DPDK sends a frame
//! the kernel side must see on a raw socket. Everything created is removed by a Drop guard.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dpdk::{MbufBurst, Mempool, Port, PortConfig};

/// Sends one frame (hex in argv[2]) out of interface argv[1].
const SEND_FRAME: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(bytes.fromhex(sys.argv[2]))
"#;

/// Prints "ready", then the hex of the first frame with EtherType argv[2] seen on argv[1].
const CAPTURE_FRAME: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(10)
print("ready", flush=True)
want = bytes.fromhex(sys.argv[2])
while True:
    frame = s.recv(65535)
    if frame[12:14] == want:
        print(frame.hex(), flush=True)
        break
"#;

/// A veth pair with its far end in a fresh namespace; removes both (and kills any helper
/// process it started) when dropped, including when the test fails.
struct VethIntoNamespace {
    namespace: String,
    near: String,
    far: String,
    helpers: Vec<Child>,
}

fn run(cmd: &[&str]) {
    let status = Command::new(cmd[0])
        .args(&cmd[1..])
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

impl VethIntoNamespace {
    fn create() -> Self {
        let pid = std::process::id();
        let guard = VethIntoNamespace {
            namespace: format!("dyntun-dpdk-{pid}"),
            near: format!("dtva{pid}"),
            far: format!("dtvb{pid}"),
            helpers: Vec::new(),
        };
        let (ns, near, far) = (&guard.namespace, &guard.near, &guard.far);
        run(&["ip", "netns", "add", ns]);
        run(&[
            "ip", "link", "add", near, "type", "veth", "peer", "name", far, "netns", ns,
        ]);
        // IPv6 would put router solicitations and MLD reports on the wire; keep it quiet.
        let _ = Command::new("sysctl")
            .args(["-qw", &format!("net.ipv6.conf.{near}.disable_ipv6=1")])
            .status();
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{far}.disable_ipv6=1"),
        ]);
        run(&["ip", "link", "set", near, "up"]);
        run(&["ip", "-n", ns, "link", "set", far, "up"]);
        guard
    }

    fn in_namespace(&self, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace, "python3", "-c", script]);
        cmd.args(args);
        cmd
    }

    fn near_mac(&self) -> [u8; 6] {
        let text = std::fs::read_to_string(format!("/sys/class/net/{}/address", self.near))
            .expect("near end has a MAC");
        let bytes: Vec<u8> = text
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect();
        bytes.try_into().expect("six bytes")
    }
}

impl Drop for VethIntoNamespace {
    fn drop(&mut self) {
        for child in &mut self.helpers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.near])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn frames_cross_between_dpdk_and_the_kernel_over_a_veth() {
    common::eal();
    let mut veth = VethIntoNamespace::create();
    let pool = Mempool::create(
        &common::unique("afpool"),
        1023,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool");
    let devargs = format!("net_af_packet{},iface={}", std::process::id(), veth.near);
    let port = Port::probe(&devargs).expect("af_packet port");
    let mut queues = port
        .configure(&PortConfig::default(), pool)
        .expect("configure");
    port.start().expect("start");
    assert_eq!(port.mac_address().expect("mac"), veth.near_mac());
    assert!(port.info().expect("info").driver.contains("af_packet"));
    let (mut rx, mut tx) = (queues.rx.remove(0), queues.tx.remove(0));

    // Kernel -> DPDK.
    let mut inbound = vec![0xff; 6];
    inbound.extend_from_slice(&[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x88, 0xb5]);
    inbound.extend((0..60u8).map(|i| i.wrapping_mul(13)));
    let status = veth
        .in_namespace(SEND_FRAME, &[&veth.far, &hex(&inbound)])
        .status()
        .expect("python3");
    assert!(status.success());
    let mut burst = MbufBurst::new();
    let mut received = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.is_none() && Instant::now() < deadline {
        rx.rx(&mut burst);
        received = burst.drain().find(|m| m.data() == inbound.as_slice());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        received.is_some(),
        "DPDK did not receive the kernel's frame"
    );

    // DPDK -> kernel.
    let capture = veth
        .in_namespace(CAPTURE_FRAME, &[&veth.far, "88b6"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    veth.helpers.push(capture);
    let capture_out = veth.helpers[0].stdout.take().expect("piped");
    let mut stdout = BufReader::new(capture_out);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");

    let mut outbound = vec![0xff; 6];
    outbound.extend_from_slice(&port.mac_address().expect("mac"));
    outbound.extend_from_slice(&[0x88, 0xb6]);
    outbound.extend((0..80u8).map(|i| i ^ 0x5c));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    while Instant::now() < deadline {
        let mut m = pool.alloc().expect("mbuf");
        m.append(outbound.len())
            .expect("room")
            .copy_from_slice(&outbound);
        burst.push(m).expect("room");
        sent += tx.tx(&mut burst);
        burst.clear();
        if veth.helpers[0].try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(sent > 0, "the af_packet PMD took no frame");
    let mut seen = String::new();
    stdout.read_to_string(&mut seen).expect("capture output");
    assert_eq!(
        seen.trim(),
        hex(&outbound),
        "the kernel saw a different frame"
    );
    assert!(port.stats().expect("stats").tx_packets >= 1);

    port.remove().expect("remove port");
    assert!(Port::by_name(&devargs).is_err(), "the removed port is gone");
}
