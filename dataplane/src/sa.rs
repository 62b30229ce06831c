//! What the control plane hands the dataplane to install one IPsec SA: the contract between the
//! IKE responder (or the manual-SA configuration) and the ESP/AH engine.
//!
//! Everything here is resolved once per SA; the engine turns a spec into per-direction state
//! with its crypto context already chosen, so the per-packet path never branches on it.

use std::net::{IpAddr, SocketAddr};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::prefix::Prefix;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum IpsecProtocol {
    Esp,
    Ah,
}

/// ESP confidentiality (and, for GCM, combined) algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Cipher {
    /// RFC 2410; for tests and for AH-only SAs.
    Null,
    DesCbc,
    TripleDesCbc,
    AesCbc128,
    AesCbc192,
    AesCbc256,
    /// RFC 4106, 16-byte ICV; the key material is the AES key followed by a 4-byte salt.
    AesGcm128,
    AesGcm256,
}

impl Cipher {
    /// Bytes of key material the SA needs for this cipher (GCM includes its 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Null => 0,
            Cipher::DesCbc => 8,
            Cipher::TripleDesCbc => 24,
            Cipher::AesCbc128 => 16,
            Cipher::AesCbc192 => 24,
            Cipher::AesCbc256 => 32,
            Cipher::AesGcm128 => 20,
            Cipher::AesGcm256 => 36,
        }
    }

    pub fn is_aead(self) -> bool {
        matches!(self, Cipher::AesGcm128 | Cipher::AesGcm256)
    }

    /// Junos-style name, as `show` prints it.
    pub fn junos_name(self) -> &'static str {
        match self {
            Cipher::Null => "null",
            Cipher::DesCbc => "des-cbc",
            Cipher::TripleDesCbc => "3des-cbc",
            Cipher::AesCbc128 => "aes-128-cbc",
            Cipher::AesCbc192 => "aes-192-cbc",
            Cipher::AesCbc256 => "aes-256-cbc",
            Cipher::AesGcm128 => "aes-128-gcm",
            Cipher::AesGcm256 => "aes-256-gcm",
        }
    }
}

/// Integrity algorithms for ESP (with a non-AEAD cipher) and AH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Integrity {
    /// Only valid with an AEAD cipher (or ESP-NULL in tests).
    None,
    HmacMd5_96,
    HmacSha1_96,
    HmacSha256_128,
}

impl Integrity {
    pub fn key_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::HmacMd5_96 => 16,
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha256_128 => 32,
        }
    }

    pub fn icv_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::HmacMd5_96 | Integrity::HmacSha1_96 => 12,
            Integrity::HmacSha256_128 => 16,
        }
    }

    pub fn junos_name(self) -> &'static str {
        match self {
            Integrity::None => "none",
            Integrity::HmacMd5_96 => "hmac-md5-96",
            Integrity::HmacSha1_96 => "hmac-sha1-96",
            Integrity::HmacSha256_128 => "hmac-sha-256-128",
        }
    }
}

/// How outer packets travel: plain IP (ESP = protocol 50, AH = 51) or in UDP (RFC 3948).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Encapsulation {
    None,
    /// ESP in UDP; ports are the ones IKE floated to (4500 on both sides unless a NAT rewrote them).
    Udp {
        local_port: u16,
        remote_port: u16,
    },
}

/// What to do with the DF bit of the outer IPv4 header (`*-dont-fragment-bit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum DfMode {
    #[default]
    Copy,
    Clear,
    Set,
}

/// Soft and hard limits; `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct Lifetime {
    pub soft_seconds: Option<u64>,
    pub hard_seconds: Option<u64>,
    pub soft_kilobytes: Option<u64>,
    pub hard_kilobytes: Option<u64>,
}

/// Key material, zeroized when dropped and never printed.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SaKeys {
    /// Cipher key (GCM: key followed by the 4-byte salt).
    pub encryption: Vec<u8>,
    /// Integrity key (empty for AEAD).
    pub integrity: Vec<u8>,
}

impl std::fmt::Debug for SaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SaKeys {{ encryption: <{} bytes>, integrity: <{} bytes> }}",
            self.encryption.len(),
            self.integrity.len()
        )
    }
}

/// Everything needed to install one unidirectional SA.
#[derive(Clone, Debug)]
pub struct SaSpec {
    pub spi: u32,
    pub direction: Direction,
    pub protocol: IpsecProtocol,
    /// `Cipher::Null` for AH.
    pub cipher: Cipher,
    pub integrity: Integrity,
    pub keys: SaKeys,
    /// Outer source and destination of outbound packets (for inbound SAs: the peer is `remote`).
    pub local: IpAddr,
    pub remote: IpAddr,
    pub encapsulation: Encapsulation,
    /// 0 disables anti-replay (`no-anti-replay`); otherwise the window in packets (≤ 4096).
    pub replay_window: u32,
    pub extended_sequence_numbers: bool,
    pub lifetime: Lifetime,
    pub df_mode: DfMode,
    /// Largest outer packet (`tunnel-mtu`); `None` means the port's MTU.
    pub tunnel_mtu: Option<u16>,
}

/// The traffic selectors an SA pair protects, from the peer's point of view reversed:
/// `local` is behind this gateway, `remote` behind the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ProxyPair {
    pub local: Prefix,
    pub remote: Prefix,
    /// IP protocol number, 0 for any.
    pub protocol: u8,
    /// 0 for any.
    pub local_port: u16,
    pub remote_port: u16,
}

/// Where the peer's IKE came from; the outer tunnel endpoints follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PeerEndpoint {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_never_printed() {
        let k = SaKeys {
            encryption: vec![0x41; 16],
            integrity: vec![0x42; 20],
        };
        let shown = format!("{k:?}");
        assert!(!shown.contains("65") && !shown.contains("41"), "{shown}");
        assert!(shown.contains("16 bytes"));
    }

    #[test]
    fn key_and_icv_lengths_match_the_rfcs() {
        assert_eq!(Cipher::AesGcm128.key_len(), 16 + 4);
        assert_eq!(Cipher::TripleDesCbc.key_len(), 24);
        assert_eq!(Integrity::HmacSha1_96.icv_len(), 12);
        assert_eq!(Integrity::HmacSha256_128.icv_len(), 16);
    }
}
