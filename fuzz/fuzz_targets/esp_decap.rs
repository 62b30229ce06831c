//! The decapsulation path of an inbound SA on hostile outer packets. The first input byte picks
//! the SA shape; the rest is the outer IP packet. ESP-NULL without integrity lets the fuzzer
//! reach the trailer, padding and inner-header checks that an ICV would otherwise guard.
#![no_main]

use std::net::IpAddr;

use dataplane::buf::HeapBuf;
use dataplane::crypto::Backend;
use dataplane::esp::InboundSa;
use dataplane::sa::{
    Cipher, DfMode, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, SaKeys, SaSpec,
};
use libfuzzer_sys::fuzz_target;

const SHAPES: [(IpsecProtocol, Cipher, Integrity, bool, bool); 6] = [
    (IpsecProtocol::Esp, Cipher::Null, Integrity::None, false, false),
    (IpsecProtocol::Esp, Cipher::Null, Integrity::None, false, true),
    (IpsecProtocol::Esp, Cipher::Null, Integrity::None, true, false),
    (IpsecProtocol::Esp, Cipher::AesGcm128, Integrity::None, false, true),
    (IpsecProtocol::Esp, Cipher::AesCbc128, Integrity::HmacSha1_96, true, false),
    (IpsecProtocol::Ah, Cipher::Null, Integrity::HmacSha1_96, false, false),
];

fn spec(selector: u8) -> SaSpec {
    let (protocol, cipher, integrity, v6, udp) = SHAPES[selector as usize % SHAPES.len()];
    let (local, remote): (IpAddr, IpAddr) = if v6 {
        ("2001:db8:1::1".parse().unwrap(), "2001:db8:2::2".parse().unwrap())
    } else {
        ("10.1.1.1".parse().unwrap(), "10.2.2.2".parse().unwrap())
    };
    SaSpec {
        spi: 0x100,
        direction: Direction::Inbound,
        protocol,
        cipher,
        integrity,
        keys: SaKeys {
            encryption: vec![0x11; cipher.key_len()],
            integrity: vec![0x22; integrity.key_len()],
        },
        local,
        remote,
        encapsulation: if udp {
            Encapsulation::Udp {
                local_port: 4500,
                remote_port: 4500,
            }
        } else {
            Encapsulation::None
        },
        replay_window: if selector & 0x80 != 0 { 0 } else { 64 },
        extended_sequence_numbers: selector & 0x40 != 0,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, packet)) = input.split_first() else {
        return;
    };
    let Ok(mut sa) = InboundSa::new(&spec(selector), 0, Backend::Fastest) else {
        return;
    };
    let mut buf = HeapBuf::from_slice(packet);
    let _ = sa.decapsulate(&mut buf, 1);
});
