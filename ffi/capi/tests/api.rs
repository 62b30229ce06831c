//! The C API called as a C host would, in process, on real DPDK (net_ring ports, real mbufs):
//! argument and state errors, commit-check messages, ARP answered by the control thread and
//! returned through worker 0, a manual-SA tunnel sealing a LAN packet into ESP towards the
//! resolved next hop, `show` JSON, stop and free.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use dpdk::sys::rte_mbuf;
use dpdk::{Eal, Mbuf, Mempool, Port};
use dyntun::events::dyntun_event;
use dyntun::gateway::*;
use dyntun::status::{dyntun_last_error, dyntun_status, dyntun_string_free};
use dyntun::worker::*;

const GATEWAY_OUTSIDE: [u8; 4] = [10, 1, 1, 1];
const ISP_ROUTER: [u8; 4] = [10, 1, 1, 254];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x01];
const LAN_HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x01];

fn eal() -> Mempool {
    Eal::init_global([
        "-l",
        "0",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
        "--log-level=lib.eal:warning",
    ])
    .unwrap_or_else(|e| panic!("EAL: {e}"));
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Mempool::create(
        &format!("capi_host{n}"),
        1023,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .unwrap()
}

fn last_error() -> String {
    // SAFETY: dyntun returns a valid C string for this thread.
    unsafe { CStr::from_ptr(dyntun_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn manual_config() -> CString {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sg1-manual.conf"
    );
    CString::new(std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Two net_ring ports standing for the host's outside and inside ports. The test takes frames
/// from the worker, never from the ports, so the two ends of one pair do: a process has only
/// `MAX_PORTS` port ids a gateway can use, and every test of this binary takes its own.
fn host_ports(tag: &str) -> (Port, Port) {
    Port::ring_pair(&format!("{tag}o"), &format!("{tag}i"), 256).unwrap()
}

struct Gateway(*mut dyntun_gateway);

impl Drop for Gateway {
    fn drop(&mut self) {
        // SAFETY: created by dyntun_gateway_create, freed once.
        unsafe { dyntun_gateway_free(self.0) };
    }
}

fn create(
    config: &CStr,
    outside: &Port,
    inside: &Port,
) -> Result<Gateway, (dyntun_status, String)> {
    let names = [
        CString::new("ge-0/0/0").unwrap(),
        CString::new("ge-0/0/1").unwrap(),
    ];
    let bindings = [
        dyntun_port_binding {
            interface: names[0].as_ptr(),
            port_id: outside.id(),
        },
        dyntun_port_binding {
            interface: names[1].as_ptr(),
            port_id: inside.id(),
        },
    ];
    let name = CString::new("sg1.conf").unwrap();
    let mut gateway = null_mut();
    // SAFETY: every pointer is valid for the call.
    let status = unsafe {
        dyntun_gateway_create(
            config.as_ptr(),
            name.as_ptr(),
            bindings.as_ptr(),
            bindings.len(),
            std::ptr::null(),
            &mut gateway,
        )
    };
    match status {
        dyntun_status::DYNTUN_OK => Ok(Gateway(gateway)),
        other => Err((other, last_error())),
    }
}

fn frame_mbuf(pool: &Mempool, bytes: &[u8]) -> *mut rte_mbuf {
    let mut mbuf = pool.alloc().expect("mbuf");
    mbuf.append(bytes.len()).unwrap().copy_from_slice(bytes);
    mbuf.into_raw()
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame
}

fn arp(
    op: u16,
    sender_mac: [u8; 6],
    sender: [u8; 4],
    target_mac: [u8; 6],
    target: [u8; 4],
) -> Vec<u8> {
    let dst = if op == 1 { [0xff; 6] } else { target_mac };
    let mut frame = ethernet(dst, sender_mac, 0x0806);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&sender_mac);
    frame.extend_from_slice(&sender);
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&target);
    frame
}

/// An ICMP echo request from the LAN host to SG2's LAN, as the inside port receives it.
fn lan_ping(gateway_mac: [u8; 6]) -> Vec<u8> {
    let mut frame = ethernet(gateway_mac, LAN_HOST_MAC, 0x0800);
    let payload = [8u8, 0, 0, 0, 0, 1, 0, 1, b'd', b'y', b'n', b't'];
    let total = 20 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        1,
        0,
        0,
    ];
    ip.extend_from_slice(&[172, 16, 1, 10, 172, 16, 2, 1]);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&ip);
    let mut icmp = payload.to_vec();
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&icmp);
    frame
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Polls the worker until it has a frame for `port`, and returns that frame's bytes.
fn next_tx(worker: *mut dyntun_worker, port: u16, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let mut out = [null_mut(); 1];
        // SAFETY: a live worker driven by this thread only; room for one pointer.
        let taken = unsafe {
            dyntun_worker_poll(worker);
            dyntun_worker_take_tx(worker, port, out.as_mut_ptr(), 1)
        };
        if taken == 1 {
            // SAFETY: the host (this test) owns the returned mbuf.
            let mbuf = unsafe { Mbuf::from_raw(out[0]) };
            return Some(mbuf.data().to_vec());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn rx(
    worker: *mut dyntun_worker,
    port: u16,
    frames: &[*mut rte_mbuf],
) -> (Vec<u8>, dyntun_burst_result) {
    let mut pkts = frames.to_vec();
    let mut verdicts = vec![0xffu8; frames.len()];
    let mut result = dyntun_burst_result::default();
    // SAFETY: the mbufs are handed over; arrays have `len` entries.
    let status = unsafe {
        dyntun_worker_rx(
            worker,
            port,
            pkts.as_mut_ptr(),
            pkts.len() as u16,
            verdicts.as_mut_ptr(),
            &mut result,
        )
    };
    assert_eq!(status, dyntun_status::DYNTUN_OK, "{}", last_error());
    (verdicts, result)
}

#[test]
fn argument_state_and_configuration_errors_are_codes_with_messages() {
    let _pool = eal();
    let (outside, inside) = host_ports("capierr");
    let mut gateway = null_mut();
    // SAFETY: NULL arguments are what is being tested.
    let status = unsafe {
        dyntun_gateway_create(
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            &mut gateway,
        )
    };
    assert_eq!(status, dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT);
    assert!(
        last_error().contains("config_text is NULL"),
        "{}",
        last_error()
    );

    let broken = CString::new(
        "interfaces { ge-0/0/0 { unit 0 { family inet { address 10.1.1.300/24; } } } }",
    )
    .unwrap();
    let (status, message) = create(&broken, &outside, &inside).err().expect("refused");
    assert_eq!(status, dyntun_status::DYNTUN_ERR_CONFIG);
    assert!(message.starts_with("sg1.conf:"), "{message}");
    assert!(message.contains(": error: "), "{message}");

    let gateway = create(&manual_config(), &outside, &inside).expect("created");
    // SAFETY: a live gateway throughout.
    unsafe {
        assert_eq!(dyntun_gateway_worker_count(gateway.0), 1);
        let mut worker = null_mut();
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 3, &mut worker),
            dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut worker),
            dyntun_status::DYNTUN_OK
        );
        let mut again = null_mut();
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut again),
            dyntun_status::DYNTUN_ERR_STATE
        );
        assert!(again.is_null());
        assert!(last_error().contains("already taken"));
        let mut json = null_mut();
        let bogus = CString::new("show nonsense").unwrap();
        assert_eq!(
            dyntun_gateway_show_json(gateway.0, bogus.as_ptr(), &mut json),
            dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("unknown command"), "{}", last_error());
        assert_eq!(dyntun_gateway_start(gateway.0), dyntun_status::DYNTUN_OK);
        assert_eq!(
            dyntun_gateway_start(gateway.0),
            dyntun_status::DYNTUN_ERR_STATE
        );
        extern "C" fn ignore(_: *const dyntun_event, _: *mut c_void) {}
        assert_eq!(
            dyntun_gateway_set_event_callback(gateway.0, Some(ignore), null_mut()),
            dyntun_status::DYNTUN_ERR_STATE
        );
        assert_eq!(dyntun_gateway_stop(gateway.0), dyntun_status::DYNTUN_OK);
        assert_eq!(dyntun_gateway_is_stopped(gateway.0), 1);
        dyntun_worker_free(worker);
    }
}

#[test]
fn arp_is_answered_through_worker_0_and_a_manual_sa_seals_lan_traffic() {
    let pool = eal();
    let (outside, inside) = host_ports("capifwd");
    let (our_outside_mac, our_inside_mac) = (
        outside.mac_address().unwrap(),
        inside.mac_address().unwrap(),
    );
    let gateway = create(&manual_config(), &outside, &inside).expect("created");
    let mut worker = null_mut();
    // SAFETY: a live gateway; the worker is driven by this thread only.
    unsafe {
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut worker),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(dyntun_gateway_start(gateway.0), dyntun_status::DYNTUN_OK);
    }

    // The ISP router asks for 10.1.1.1: punted, answered by the control thread, sent by us.
    let request = arp(1, ROUTER_MAC, ISP_ROUTER, [0; 6], GATEWAY_OUTSIDE);
    let (verdicts, result) = rx(worker, outside.id(), &[frame_mbuf(&pool, &request)]);
    assert_eq!(verdicts, vec![DYNTUN_VERDICT_PUNTED]);
    assert_eq!(
        (result.consumed, result.dropped, result.transmit),
        (1, 0, 0)
    );
    let reply = loop {
        let frame = next_tx(worker, outside.id(), Duration::from_secs(5)).expect("an ARP reply");
        // The gateway may also ask for its static next hop: skip requests.
        if frame[12..14] == [0x08, 0x06] && frame[21] == 2 {
            break frame;
        }
    };
    assert_eq!(&reply[0..6], &ROUTER_MAC);
    assert_eq!(&reply[22..28], &our_outside_mac);
    assert_eq!(&reply[28..32], &GATEWAY_OUTSIDE);

    // LAN -> 172.16.2.1 matches the manual term (SPI 16000) and leaves as ESP to 10.2.2.2 via
    // the router, whose MAC the gateway learned from the ARP request.
    let ping = lan_ping(our_inside_mac);
    let (verdicts, _) = rx(worker, inside.id(), &[frame_mbuf(&pool, &ping)]);
    assert_eq!(
        verdicts,
        vec![DYNTUN_VERDICT_TRANSMIT],
        "{}",
        counters(worker)
    );
    let esp = next_tx(worker, outside.id(), Duration::from_secs(1)).expect("the ESP packet");
    assert_eq!(&esp[0..6], &ROUTER_MAC);
    assert_eq!(&esp[6..12], &our_outside_mac);
    assert_eq!(esp[14 + 9], 50, "IP protocol ESP");
    assert_eq!(&esp[14 + 12..14 + 20], &[10, 1, 1, 1, 10, 2, 2, 2]);
    assert_eq!(
        &esp[34..38],
        &16000u32.to_be_bytes(),
        "SPI of the manual SA"
    );
    assert!(
        !esp.windows(4).any(|w| w == b"dynt"),
        "the payload is encrypted"
    );
    let text = counters(worker);
    let parsed: serde_like::Counters = serde_like::parse(&text);
    assert_eq!(parsed.get("encrypted"), Some(1), "{text}");
    assert_eq!(parsed.get("punted"), Some(1), "{text}");
    // Only pipeline output counts as tx (the ESP packet, once); the control thread's ARP
    // frames the host also transmitted are not pipeline output.
    assert_eq!(parsed.get("tx_packets"), Some(1), "{text}");
    // Another thread reads the same counters through the gateway while the worker is live.
    // The handle crosses threads as an address (raw pointers are not Send).
    let address = gateway.0 as usize;
    let from_gateway = std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let gateway = address as *mut dyntun_gateway;
                let mut json = null_mut();
                // SAFETY: a live gateway; the string is freed once.
                unsafe {
                    assert_eq!(
                        dyntun_gateway_worker_counters_json(gateway, 0, &mut json),
                        dyntun_status::DYNTUN_OK
                    );
                    let text = CStr::from_ptr(json).to_string_lossy().into_owned();
                    dyntun_string_free(json);
                    text
                }
            })
            .join()
            .unwrap()
    });
    assert_eq!(from_gateway, text);
    let mut json = null_mut();
    // SAFETY: a live gateway; index 7 does not exist, so nothing is returned.
    unsafe {
        assert_eq!(
            dyntun_gateway_worker_counters_json(gateway.0, 7, &mut json),
            dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT
        );
        assert!(json.is_null());
    }

    // The operational state answers as `dyntun show … --json` does.
    let command = CString::new("show services ipsec-vpn ipsec security-associations").unwrap();
    let mut json: *mut c_char = null_mut();
    // SAFETY: a live gateway; the returned string is freed once.
    let answer = unsafe {
        assert_eq!(
            dyntun_gateway_show_json(gateway.0, command.as_ptr(), &mut json),
            dyntun_status::DYNTUN_OK,
            "{}",
            last_error()
        );
        let answer = CStr::from_ptr(json).to_string_lossy().into_owned();
        dyntun_string_free(json);
        answer
    };
    assert!(answer.contains("\"static_tunnels\""), "{answer}");
    assert!(answer.contains("16000"), "{answer}");

    // SAFETY: stop, then free the worker (its queued frames go back to their pools).
    unsafe {
        assert_eq!(
            dyntun_gateway_request_stop(gateway.0),
            dyntun_status::DYNTUN_OK
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while dyntun_gateway_is_stopped(gateway.0) == 0 && Instant::now() < deadline {
            dyntun_worker_poll(worker);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(dyntun_gateway_is_stopped(gateway.0), 1);
        dyntun_worker_free(worker);
    }
    drop(gateway);
    assert_eq!(
        pool.in_use(),
        0,
        "every host mbuf went back to the host's pool"
    );
}

fn counters(worker: *mut dyntun_worker) -> String {
    let mut json = null_mut();
    // SAFETY: a live worker; the string is freed once.
    unsafe {
        assert_eq!(
            dyntun_worker_counters_json(worker, &mut json),
            dyntun_status::DYNTUN_OK
        );
        let text = CStr::from_ptr(json).to_string_lossy().into_owned();
        dyntun_string_free(json);
        text
    }
}

/// The counters JSON is flat `"name": number` pairs; reading it needs no JSON crate.
mod serde_like {
    pub struct Counters(Vec<(String, u64)>);

    impl Counters {
        pub fn get(&self, name: &str) -> Option<u64> {
            self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
        }
    }

    pub fn parse(text: &str) -> Counters {
        let body = text.trim().trim_start_matches('{').trim_end_matches('}');
        Counters(
            body.split(',')
                .filter_map(|pair| {
                    let (name, value) = pair.split_once(':')?;
                    Some((
                        name.trim().trim_matches('"').to_string(),
                        value.trim().parse().ok()?,
                    ))
                })
                .collect(),
        )
    }
}

#[test]
fn with_two_workers_frames_punted_by_either_are_answered_through_worker_0() {
    let pool = eal();
    let (outside, inside) = host_ports("capitwo");
    let text = manual_config().into_string().unwrap();
    assert!(text.contains("cores 1;"));
    let config = CString::new(text.replace("cores 1;", "cores [ 1 2 ];")).unwrap();
    let gateway = create(&config, &outside, &inside).expect("created");
    let (mut first, mut second) = (null_mut(), null_mut());
    // SAFETY: a live gateway; each worker is driven by this thread only.
    unsafe {
        assert_eq!(dyntun_gateway_worker_count(gateway.0), 2);
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut first),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 1, &mut second),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(dyntun_gateway_start(gateway.0), dyntun_status::DYNTUN_OK);
    }
    let request = arp(1, ROUTER_MAC, ISP_ROUTER, [0; 6], GATEWAY_OUTSIDE);
    let (verdicts, _) = rx(second, outside.id(), &[frame_mbuf(&pool, &request)]);
    assert_eq!(
        verdicts,
        vec![DYNTUN_VERDICT_PUNTED],
        "{}",
        counters(second)
    );
    let reply = loop {
        let frame = next_tx(first, outside.id(), Duration::from_secs(5)).expect("an ARP reply");
        if frame[12..14] == [0x08, 0x06] && frame[21] == 2 {
            break frame;
        }
    };
    assert_eq!(&reply[0..6], &ROUTER_MAC);
    // Worker 1 never carries the control thread's frames.
    assert!(next_tx(second, outside.id(), Duration::from_millis(100)).is_none());
    // SAFETY: workers freed once, before the gateway.
    unsafe {
        dyntun_worker_free(first);
        dyntun_worker_free(second);
    }
    drop(gateway);
    assert_eq!(pool.in_use(), 0);
}

/// An ESP packet from SG2 (10.2.2.2) under the manual SA 16000, carrying UDP from SG2's LAN to
/// the LAN host with `tag` as its payload, framed as the outside port receives it.
fn esp_from_sg2(peer: &mut dataplane::esp::OutboundSa, gateway_mac: [u8; 6], tag: u8) -> Vec<u8> {
    let payload = [b'h', b'o', tag];
    let total = 20 + 8 + payload.len();
    let mut inner = vec![0x45, 0, 0, total as u8, 0, tag, 0, 0, 64, 17, 0, 0];
    inner.extend_from_slice(&[172, 16, 2, 5, 172, 16, 1, 10]);
    let sum = checksum(&inner);
    inner[10..12].copy_from_slice(&sum.to_be_bytes());
    inner.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8 + payload.len() as u8, 0, 0]);
    inner.extend_from_slice(&payload);
    let mut sealed = dataplane::buf::HeapBuf::from_slice(&inner);
    peer.encapsulate(&mut sealed, 1).0.expect("sealed");
    let mut frame = ethernet(gateway_mac, ROUTER_MAC, 0x0800);
    frame.extend_from_slice(dataplane::buf::PacketBuf::data(&sealed));
    frame
}

#[test]
fn esp_for_the_other_workers_sa_is_handed_over_and_opened_there_in_one_poll_in_order() {
    use dataplane::sa::*;
    const FRAMES: u8 = 12;
    const LAN_HOST: [u8; 4] = [172, 16, 1, 10];
    let pool = eal();
    let (outside, inside) = host_ports("capihand");
    let (our_outside_mac, our_inside_mac) = (
        outside.mac_address().unwrap(),
        inside.mac_address().unwrap(),
    );
    let text = manual_config().into_string().unwrap();
    let config = CString::new(text.replace("cores 1;", "cores [ 1 2 ];")).unwrap();
    let gateway = create(&config, &outside, &inside).expect("created");
    let (mut owner, mut other) = (null_mut(), null_mut());
    // SAFETY: a live gateway; each worker is driven by this thread only.
    unsafe {
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut owner),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 1, &mut other),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(dyntun_gateway_start(gateway.0), dyntun_status::DYNTUN_OK);
    }
    // The LAN host asks for the gateway: the control thread learns its MAC and answers.
    let request = arp(1, LAN_HOST_MAC, LAN_HOST, [0; 6], [172, 16, 1, 1]);
    let (verdicts, _) = rx(owner, inside.id(), &[frame_mbuf(&pool, &request)]);
    assert_eq!(verdicts, vec![DYNTUN_VERDICT_PUNTED]);
    loop {
        let frame = next_tx(owner, inside.id(), Duration::from_secs(5)).expect("an ARP reply");
        if frame[12..14] == [0x08, 0x06] && frame[21] == 2 {
            break;
        }
    }
    // SAFETY: a live worker; its table updates (the manual SA's rule) are applied.
    unsafe { dyntun_worker_poll(other) };

    // SG2 seals with the keys of the bidirectional manual SA; SPI 16000 belongs to worker 0,
    // but RSS put these packets on worker 1.
    let mut peer = dataplane::esp::OutboundSa::new(
        &SaSpec {
            spi: 16000,
            direction: Direction::Outbound,
            protocol: IpsecProtocol::Esp,
            cipher: Cipher::AesCbc128,
            integrity: Integrity::HmacSha1_96,
            keys: SaKeys {
                encryption: (0..16u8).map(|i| i * 0x11).collect(),
                integrity: b"dyntun-sg2-auth-key!".to_vec(),
            },
            local: "10.2.2.2".parse().unwrap(),
            remote: "10.1.1.1".parse().unwrap(),
            encapsulation: Encapsulation::None,
            replay_window: 64,
            extended_sequence_numbers: false,
            lifetime: Lifetime::default(),
            df_mode: DfMode::Copy,
            tunnel_mtu: None,
        },
        0,
        dataplane::crypto::Backend::PureRust,
    )
    .unwrap();
    let frames: Vec<*mut rte_mbuf> = (0..FRAMES)
        .map(|tag| frame_mbuf(&pool, &esp_from_sg2(&mut peer, our_outside_mac, tag)))
        .collect();
    let (verdicts, result) = rx(other, outside.id(), &frames);
    assert_eq!(
        verdicts,
        vec![DYNTUN_VERDICT_HANDED_OFF; usize::from(FRAMES)]
    );
    assert_eq!(
        (result.consumed, result.dropped, result.transmit),
        (u32::from(FRAMES), 0, 0)
    );

    // One poll of the owner opens them all and queues them for the LAN, in the order sent.
    let mut out = [null_mut(); 64];
    // SAFETY: a live worker; `out` has room for 64 pointers, each returned mbuf is ours.
    let opened: Vec<Vec<u8>> = unsafe {
        dyntun_worker_poll(owner);
        let taken = dyntun_worker_take_tx(owner, inside.id(), out.as_mut_ptr(), 64);
        out[..usize::from(taken)]
            .iter()
            .map(|&raw| Mbuf::from_raw(raw).data().to_vec())
            .collect()
    };
    assert_eq!(opened.len(), usize::from(FRAMES), "{}", counters(owner));
    for (tag, frame) in opened.iter().enumerate() {
        assert_eq!(&frame[0..6], &LAN_HOST_MAC);
        assert_eq!(&frame[6..12], &our_inside_mac);
        assert_eq!(&frame[14 + 12..14 + 20], &[172, 16, 2, 5, 172, 16, 1, 10]);
        assert_eq!(&frame[14 + 28..14 + 31], &[b'h', b'o', tag as u8]);
    }
    let handing = serde_like::parse(&counters(other));
    assert_eq!(handing.get("handed_off"), Some(u64::from(FRAMES)));
    assert_eq!(handing.get("drop_handoff_full"), Some(0));
    let text = counters(owner);
    let opening = serde_like::parse(&text);
    assert_eq!(opening.get("decrypted"), Some(u64::from(FRAMES)), "{text}");
    assert_eq!(opening.get("tx_packets"), Some(u64::from(FRAMES)), "{text}");
    // The ARP request, then the handed-over frames.
    assert_eq!(
        opening.get("rx_packets"),
        Some(1 + u64::from(FRAMES)),
        "{text}"
    );
    assert_eq!(opening.get("drop_sa_processing"), Some(0), "{text}");
    // SAFETY: workers freed once, before the gateway.
    unsafe {
        dyntun_worker_free(owner);
        dyntun_worker_free(other);
    }
    drop(gateway);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_lan_packet_too_big_for_the_tunnel_is_split_in_its_place_and_each_piece_sealed() {
    let pool = eal();
    let (outside, inside) = host_ports("capifrag");
    let our_inside_mac = inside.mac_address().unwrap();
    let gateway = create(&manual_config(), &outside, &inside).expect("created");
    let mut worker = null_mut();
    // SAFETY: a live gateway; the worker is driven by this thread only.
    unsafe {
        assert_eq!(
            dyntun_gateway_take_worker(gateway.0, 0, &mut worker),
            dyntun_status::DYNTUN_OK
        );
        assert_eq!(dyntun_gateway_start(gateway.0), dyntun_status::DYNTUN_OK);
    }
    // The gateway learns the ISP router's MAC from its ARP request.
    let request = arp(1, ROUTER_MAC, ISP_ROUTER, [0; 6], GATEWAY_OUTSIDE);
    rx(worker, outside.id(), &[frame_mbuf(&pool, &request)]);
    loop {
        let frame = next_tx(worker, outside.id(), Duration::from_secs(5)).expect("an ARP reply");
        if frame[12..14] == [0x08, 0x06] && frame[21] == 2 {
            break;
        }
    }

    // 1472 bytes of IPv4 without DF: with ESP around it, more than the outside port's 1500.
    let ping = lan_ping(our_inside_mac);
    let mut big = ping[..14 + 20].to_vec();
    big[14 + 6] = 0;
    let total = 1472u16;
    big[14 + 2..14 + 4].copy_from_slice(&total.to_be_bytes());
    big[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let sum = checksum(&big[14..14 + 20]);
    big[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    big.extend_from_slice(&ping[14 + 20..]);
    big.resize(14 + usize::from(total), 0x5a);
    let small = lan_ping(our_inside_mac);
    let (verdicts, result) = rx(
        worker,
        inside.id(),
        &[frame_mbuf(&pool, &big), frame_mbuf(&pool, &small)],
    );
    assert_eq!(
        verdicts,
        vec![DYNTUN_VERDICT_FRAGMENTED, DYNTUN_VERDICT_TRANSMIT],
        "{}",
        counters(worker)
    );
    // Two sealed pieces for the big packet, then the small one: the pieces leave in its place.
    assert_eq!(
        (result.transmit, result.consumed, result.dropped),
        (3, 0, 0)
    );
    let sent: Vec<Vec<u8>> = (0..3)
        .map(|_| next_tx(worker, outside.id(), Duration::from_secs(1)).expect("ESP"))
        .collect();
    for esp in &sent {
        assert_eq!(esp[14 + 9], 50, "IP protocol ESP");
        assert!(esp.len() <= 14 + 1500, "{} bytes", esp.len());
    }
    // The burst is sealed before its big packet is split, so the small one has sequence 1 but
    // leaves after the pieces: the peer's replay window takes that, and the LAN order is kept.
    let sequence = |esp: &Vec<u8>| u32::from_be_bytes(esp[38..42].try_into().unwrap());
    assert_eq!(sent.iter().map(sequence).collect::<Vec<_>>(), vec![2, 3, 1]);
    assert!(sent[2].len() < sent[1].len(), "the small packet comes last");
    let parsed = serde_like::parse(&counters(worker));
    assert_eq!(parsed.get("sent_for_fragmentation"), Some(1));
    assert_eq!(parsed.get("encrypted"), Some(3));
    assert_eq!(parsed.get("drop_fragmentation_failed"), Some(0));
    // SAFETY: the worker is freed once, before the gateway.
    unsafe { dyntun_worker_free(worker) };
    drop(gateway);
    assert_eq!(pool.in_use(), 0);
}
