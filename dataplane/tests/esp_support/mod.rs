//! Shared helpers of the ESP integration tests: SA specs for every suite, inner packets, and a
//! small deterministic generator (tests must be reproducible, so no OS randomness).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::sa::{
    Cipher, DfMode, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, SaKeys, SaSpec,
};
use dataplane::wire::{checksum, ipv4, ipv6};

/// xorshift64*: deterministic, good enough to vary test inputs.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Every ESP cipher/integrity pair the engine supports.
pub const ESP_SUITES: &[(Cipher, Integrity)] = &[
    (Cipher::AesGcm128, Integrity::None),
    (Cipher::AesGcm256, Integrity::None),
    (Cipher::AesCbc128, Integrity::HmacSha1_96),
    (Cipher::AesCbc192, Integrity::HmacMd5_96),
    (Cipher::AesCbc256, Integrity::HmacSha256_128),
    (Cipher::AesCbc128, Integrity::HmacSha256_128),
    (Cipher::TripleDesCbc, Integrity::HmacMd5_96),
    (Cipher::TripleDesCbc, Integrity::HmacSha1_96),
    (Cipher::DesCbc, Integrity::HmacSha1_96),
    (Cipher::Null, Integrity::HmacSha1_96),
    (Cipher::Null, Integrity::HmacMd5_96),
];

pub fn addresses(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        )
    }
}

/// A spec with keys derived from `seed`; `inbound` is the same SA as the peer's outbound.
pub fn esp_spec(cipher: Cipher, integrity: Integrity, v6: bool, udp: bool, seed: u64) -> SaSpec {
    let mut rng = TestRng::new(seed);
    let (local, remote) = addresses(v6);
    SaSpec {
        spi: 0x1000_0000 | (seed as u32 & 0xffff),
        direction: Direction::Outbound,
        protocol: IpsecProtocol::Esp,
        cipher,
        integrity,
        keys: SaKeys {
            encryption: des_safe(cipher, rng.bytes(cipher.key_len())),
            integrity: rng.bytes(integrity.key_len()),
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
        replay_window: 64,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

/// scapy's 3DES refuses keys whose three parts repeat; random keys never do, but keep it explicit.
fn des_safe(cipher: Cipher, mut key: Vec<u8>) -> Vec<u8> {
    if cipher == Cipher::TripleDesCbc {
        key[8] ^= 0x55;
        key[16] ^= 0xaa;
    }
    key
}

pub fn ah_spec(integrity: Integrity, v6: bool, seed: u64) -> SaSpec {
    let mut rng = TestRng::new(seed);
    let (local, remote) = addresses(v6);
    SaSpec {
        spi: 0x2000_0000 | (seed as u32 & 0xffff),
        direction: Direction::Outbound,
        protocol: IpsecProtocol::Ah,
        cipher: Cipher::Null,
        integrity,
        keys: SaKeys {
            encryption: vec![],
            integrity: rng.bytes(integrity.key_len()),
        },
        local,
        remote,
        encapsulation: Encapsulation::None,
        replay_window: 64,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

/// The peer's view of the same SA: same keys and SPI, addresses swapped, inbound.
pub fn as_inbound(spec: &SaSpec) -> SaSpec {
    let mut s = spec.clone();
    s.direction = Direction::Inbound;
    std::mem::swap(&mut s.local, &mut s.remote);
    if let Encapsulation::Udp {
        local_port,
        remote_port,
    } = s.encapsulation
    {
        s.encapsulation = Encapsulation::Udp {
            local_port: remote_port,
            remote_port: local_port,
        };
    }
    s
}

/// An inner UDP datagram of `total_len` bytes (IPv4 or IPv6), with valid checksums.
pub fn inner_packet(
    v6: bool,
    total_len: usize,
    tos: u8,
    dont_fragment: bool,
    rng: &mut TestRng,
) -> Vec<u8> {
    let mut p = vec![0u8; total_len];
    let ip_len = if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    };
    let udp_len = total_len - ip_len;
    let payload = rng.bytes(udp_len - 8);
    p[ip_len + 8..].copy_from_slice(&payload);
    p[ip_len..ip_len + 2].copy_from_slice(&1234u16.to_be_bytes());
    p[ip_len + 2..ip_len + 4].copy_from_slice(&5678u16.to_be_bytes());
    p[ip_len + 4..ip_len + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    if v6 {
        let (s, d): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:10::1".parse().unwrap(),
            "2001:db8:20::1".parse().unwrap(),
        );
        ipv6::write_header(&mut p, tos, udp_len as u16, 17, 63, s, d);
        let pseudo = checksum::pseudo_header_sum(&s.octets(), &d.octets(), 17, udp_len as u32);
        let c = checksum::finish(checksum::sum(&p[ip_len..], pseudo));
        p[ip_len + 6..ip_len + 8].copy_from_slice(&c.to_be_bytes());
    } else {
        let flags = if dont_fragment { ipv4::FLAG_DF } else { 0 };
        let (s, d) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1));
        ipv4::write_header(
            &mut p,
            tos,
            total_len as u16,
            rng.next_u64() as u16,
            flags,
            63,
            17,
            s,
            d,
        );
        let pseudo = checksum::pseudo_header_sum(&s.octets(), &d.octets(), 17, udp_len as u32);
        let c = checksum::finish(checksum::sum(&p[ip_len..], pseudo));
        p[ip_len + 6..ip_len + 8].copy_from_slice(&c.to_be_bytes());
    }
    p
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
