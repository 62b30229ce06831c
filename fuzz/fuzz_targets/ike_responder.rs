//! The IKEv1 responder on a sequence of hostile datagrams from a few peers, with time moving on
//! between them. Datagrams are separated by the two bytes 0xF0 0x0D; the byte before each picks
//! the peer and the local port (500 or 4500).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use control::ike::{PskTable, Responder, ResponderPolicy, Secret};
use libfuzzer_sys::fuzz_target;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 1);

fuzz_target!(|input: &[u8]| {
    let psk = PskTable {
        explicit: vec![(IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)), Secret::from("per-peer"))],
        global: Some(Secret::from("global")),
    };
    let mut responder = Responder::new(ResponderPolicy::new(vec![IpAddr::V4(GATEWAY)], psk));
    let start = Instant::now();
    for (step, chunk) in input.split(|&b| b == 0xF0).enumerate() {
        let Some((&route, datagram)) = chunk.split_first() else {
            continue;
        };
        let datagram = datagram.strip_prefix(&[0x0D]).unwrap_or(datagram);
        let port = if route & 1 == 0 { 500 } else { 4500 };
        let peer = Ipv4Addr::new(10, 2, 2, 2 + (route >> 1) % 3);
        let now = start + Duration::from_secs(step as u64 * u64::from(route >> 4));
        responder.handle_datagram(
            now,
            SocketAddr::new(IpAddr::V4(GATEWAY), port),
            SocketAddr::new(IpAddr::V4(peer), port),
            datagram,
        );
        responder.handle_timeout(now);
        while responder.poll_transmit().is_some() {}
        while responder.poll_event().is_some() {}
    }
});
