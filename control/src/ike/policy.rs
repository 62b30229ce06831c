//! What the responder accepts: the input the configuration layer fills in (local gateways,
//! pre-shared keys, proposals, allowed proxy pairs, limits, SPI allocation).

use std::net::IpAddr;
use std::time::Duration;

use dataplane::prefix::Prefix;
use dataplane::sa::{Cipher, Integrity, IpsecProtocol, PeerEndpoint};

use super::auth_method::AuthMethod;
use super::certificate_auth::CertificateAuth;
use super::crypto::{HashAlg, IkeCipher};
use super::dh::DhGroup;
use super::secret::Secret;

/// Pre-shared keys: explicit per-peer keys first, then the profile's global key.
#[derive(Clone, Debug, Default)]
pub struct PskTable {
    pub explicit: Vec<(IpAddr, Secret)>,
    pub global: Option<Secret>,
}

impl PskTable {
    pub fn lookup(&self, peer: IpAddr) -> Option<&Secret> {
        self.explicit
            .iter()
            .find(|(addr, _)| *addr == peer)
            .map(|(_, key)| key)
            .or(self.global.as_ref())
    }
}

/// One acceptable phase 1 proposal; lists mean "any of these" (the implicit default uses lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeProposal {
    pub groups: Vec<DhGroup>,
    pub hashes: Vec<HashAlg>,
    pub ciphers: Vec<IkeCipher>,
    /// The proposal's `authentication-method`: a peer authenticating otherwise does not match
    /// it, even when the gateway holds a key for that other method.
    pub auth_methods: Vec<AuthMethod>,
    pub lifetime_seconds: u64,
}

impl IkeProposal {
    /// Junos' implicit IKE proposal for dynamic peers (pre-shared keys).
    pub fn implicit_default() -> IkeProposal {
        IkeProposal {
            groups: DhGroup::all().to_vec(),
            hashes: vec![HashAlg::Sha1, HashAlg::Md5, HashAlg::Sha256],
            ciphers: vec![
                IkeCipher::TripleDesCbc,
                IkeCipher::DesCbc,
                IkeCipher::AesCbc { key_bits: 128 },
                IkeCipher::AesCbc { key_bits: 192 },
                IkeCipher::AesCbc { key_bits: 256 },
            ],
            // Every method; which ones can succeed is decided by the keys and certificates held.
            auth_methods: vec![
                AuthMethod::PreSharedKey,
                AuthMethod::RsaSignature,
                AuthMethod::EcdsaP256,
                AuthMethod::EcdsaP384,
                AuthMethod::EcdsaP521,
            ],
            lifetime_seconds: 3600,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ProtocolSuite {
    Esp,
    Ah,
    /// AH and ESP together on one proposal number.
    Bundle,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecProposal {
    pub suites: Vec<ProtocolSuite>,
    /// ESP ciphers (ignored for AH).
    pub ciphers: Vec<Cipher>,
    /// Integrity for ESP with a non-AEAD cipher, and for AH.
    pub integrities: Vec<Integrity>,
    pub lifetime_seconds: u64,
    pub lifetime_kilobytes: Option<u64>,
}

impl IpsecProposal {
    /// Junos' implicit IPsec proposal, extended with AES-GCM-16 and HMAC-SHA-256-128.
    pub fn implicit_default() -> IpsecProposal {
        IpsecProposal {
            suites: vec![ProtocolSuite::Esp, ProtocolSuite::Ah, ProtocolSuite::Bundle],
            ciphers: vec![
                Cipher::TripleDesCbc,
                Cipher::DesCbc,
                Cipher::AesCbc128,
                Cipher::AesCbc192,
                Cipher::AesCbc256,
                Cipher::AesGcm128,
                Cipher::AesGcm256,
            ],
            integrities: vec![
                Integrity::HmacSha1_96,
                Integrity::HmacMd5_96,
                Integrity::HmacSha256_128,
            ],
            lifetime_seconds: 28800,
            lifetime_kilobytes: None,
        }
    }
}

/// Chooses our inbound SPIs; the dataplane may encode the owning worker in them.
pub trait SpiAllocator: Send {
    fn allocate(&mut self, peer: &PeerEndpoint, protocol: IpsecProtocol) -> Option<u32>;
    fn release(&mut self, spi: u32);
}

/// Random SPIs above the reserved range (RFC 4303: 1-255 are reserved), never repeated while
/// in use.
#[derive(Debug, Default)]
pub struct RandomSpis {
    in_use: std::collections::HashSet<u32>,
}

impl SpiAllocator for RandomSpis {
    fn allocate(&mut self, _peer: &PeerEndpoint, _protocol: IpsecProtocol) -> Option<u32> {
        for _ in 0..64 {
            let mut b = [0u8; 4];
            getrandom::getrandom(&mut b).ok()?;
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.in_use.insert(spi) {
                return Some(spi);
            }
        }
        None
    }

    fn release(&mut self, spi: u32) {
        self.in_use.remove(&spi);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub half_open_per_peer: usize,
    pub half_open_total: usize,
    /// A Main Mode not finished in this time is forgotten.
    pub half_open_timeout: Duration,
    /// A Quick Mode without its HASH(3) in this time is forgotten.
    pub quick_mode_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            half_open_per_peer: 8,
            half_open_total: 4096,
            half_open_timeout: Duration::from_secs(30),
            quick_mode_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ResponderPolicy {
    /// Our gateway addresses; datagrams to other addresses are dropped.
    pub local_addresses: Vec<IpAddr>,
    pub psk: PskTable,
    /// Empty: the implicit default proposal.
    pub ike_proposals: Vec<IkeProposal>,
    /// Empty: the implicit default proposal.
    pub ipsec_proposals: Vec<IpsecProposal>,
    /// `Some`: PFS required with this group; `None`: PFS optional, any implicit group.
    pub pfs_group: Option<DhGroup>,
    /// (remote, local) prefix pairs a phase 2 proxy identity must fall in.
    pub allowed_proxy_pairs: Vec<(Prefix, Prefix)>,
    pub limits: Limits,
    pub replay_window: u32,
    /// `Some`: signature authentication (RSA, ECDSA P-256) is offered too.
    pub certificates: Option<std::sync::Arc<CertificateAuth>>,
}

impl ResponderPolicy {
    pub fn new(local_addresses: Vec<IpAddr>, psk: PskTable) -> Self {
        ResponderPolicy {
            local_addresses,
            psk,
            ike_proposals: Vec::new(),
            ipsec_proposals: Vec::new(),
            pfs_group: None,
            allowed_proxy_pairs: vec![(Prefix::any_v4(), Prefix::any_v4())],
            limits: Limits::default(),
            replay_window: 64,
            certificates: None,
        }
    }

    /// Pre-shared keys always; signatures with the key kinds we hold certificates for.
    pub fn auth_methods(&self) -> Vec<AuthMethod> {
        let mut methods = vec![AuthMethod::PreSharedKey];
        if let Some(c) = &self.certificates {
            methods.extend(c.methods());
        }
        methods
    }

    pub fn effective_ike_proposals(&self) -> Vec<IkeProposal> {
        if self.ike_proposals.is_empty() {
            vec![IkeProposal::implicit_default()]
        } else {
            self.ike_proposals.clone()
        }
    }

    pub fn effective_ipsec_proposals(&self) -> Vec<IpsecProposal> {
        if self.ipsec_proposals.is_empty() {
            vec![IpsecProposal::implicit_default()]
        } else {
            self.ipsec_proposals.clone()
        }
    }

    /// True when some allowed pair covers the proposed (remote, local) prefixes.
    pub fn proxy_allowed(&self, remote: &Prefix, local: &Prefix) -> bool {
        self.allowed_proxy_pairs
            .iter()
            .any(|(r, l)| r.covers(remote) && l.covers(local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_key_wins_over_global() {
        let table = PskTable {
            explicit: vec![("10.2.2.2".parse().unwrap(), Secret::from("peer"))],
            global: Some(Secret::from("global")),
        };
        assert_eq!(
            table.lookup("10.2.2.2".parse().unwrap()).unwrap().expose(),
            b"peer"
        );
        assert_eq!(
            table.lookup("10.3.3.3".parse().unwrap()).unwrap().expose(),
            b"global"
        );
        assert!(PskTable::default()
            .lookup("10.3.3.3".parse().unwrap())
            .is_none());
    }

    #[test]
    fn default_allows_any_ipv4_but_not_ipv6() {
        let p = ResponderPolicy::new(vec![], PskTable::default());
        assert!(p.proxy_allowed(
            &"172.16.2.0/24".parse().unwrap(),
            &"172.16.1.0/24".parse().unwrap()
        ));
        assert!(!p.proxy_allowed(
            &"2001:db8::/64".parse().unwrap(),
            &"2001:db8:1::/64".parse().unwrap()
        ));
    }
}
