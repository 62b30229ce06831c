//! NAT traversal for IKEv1: which flavour the peer speaks (RFC 3947 or the drafts 02/03) and
//! the NAT-D hashes that tell whether either side sits behind a NAT.

use std::net::{IpAddr, SocketAddr};

use super::crypto::HashAlg;
use super::header::Cookie;
use super::numbers::{p2, vendor_id};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NattFlavour {
    Rfc3947,
    Draft,
}

impl NattFlavour {
    /// From the peer's vendor IDs, preferring the RFC; `None` if it cannot do NAT-T.
    pub fn from_vendor_ids<'a>(
        ids: impl Iterator<Item = &'a [u8]>,
    ) -> Option<(NattFlavour, [u8; 16])> {
        let mut best: Option<(NattFlavour, [u8; 16])> = None;
        for id in ids {
            if id == vendor_id::NAT_T_RFC3947 {
                return Some((NattFlavour::Rfc3947, vendor_id::NAT_T_RFC3947));
            }
            for draft in [
                vendor_id::NAT_T_DRAFT_03,
                vendor_id::NAT_T_DRAFT_02_NL,
                vendor_id::NAT_T_DRAFT_02,
            ] {
                if id == draft && best.is_none() {
                    best = Some((NattFlavour::Draft, draft));
                }
            }
        }
        best
    }

    pub fn is_draft(self) -> bool {
        self == NattFlavour::Draft
    }

    pub fn udp_tunnel_mode(self) -> u16 {
        match self {
            NattFlavour::Rfc3947 => p2::ENCAP_UDP_TUNNEL,
            NattFlavour::Draft => p2::ENCAP_UDP_TUNNEL_DRAFT,
        }
    }
}

/// HASH(CKY-I | CKY-R | IP | Port) of RFC 3947 section 3.2.
pub fn nat_d_hash(
    hash: HashAlg,
    cookie_i: &Cookie,
    cookie_r: &Cookie,
    addr: SocketAddr,
) -> Vec<u8> {
    let ip: Vec<u8> = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    hash.digest(&[cookie_i, cookie_r, &ip, &addr.port().to_be_bytes()])
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NatStatus {
    pub local_behind_nat: bool,
    pub peer_behind_nat: bool,
}

/// The first received hash names us (the destination), the others the peer's possible sources.
pub fn detect(
    hash: HashAlg,
    cookie_i: &Cookie,
    cookie_r: &Cookie,
    received: &[&[u8]],
    local: SocketAddr,
    remote: SocketAddr,
) -> NatStatus {
    let Some((ours, theirs)) = received.split_first() else {
        return NatStatus::default();
    };
    let expect_local = nat_d_hash(hash, cookie_i, cookie_r, local);
    let expect_remote = nat_d_hash(hash, cookie_i, cookie_r, remote);
    NatStatus {
        local_behind_nat: *ours != expect_local.as_slice(),
        peer_behind_nat: !theirs.contains(&expect_remote.as_slice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_prefers_the_rfc_and_detects_a_faked_source() {
        let ids: Vec<&[u8]> = vec![&vendor_id::NAT_T_DRAFT_02_NL, &vendor_id::NAT_T_RFC3947];
        assert_eq!(
            NattFlavour::from_vendor_ids(ids.into_iter()).unwrap().0,
            NattFlavour::Rfc3947
        );
        let ids: Vec<&[u8]> = vec![&vendor_id::DPD, &vendor_id::NAT_T_DRAFT_02_NL];
        assert_eq!(
            NattFlavour::from_vendor_ids(ids.into_iter()).unwrap().0,
            NattFlavour::Draft
        );
        let (ci, cr) = ([1u8; 8], [2u8; 8]);
        let local: SocketAddr = "10.1.1.1:500".parse().unwrap();
        let remote: SocketAddr = "10.2.2.2:500".parse().unwrap();
        let l = nat_d_hash(HashAlg::Sha1, &ci, &cr, local);
        let r = nat_d_hash(HashAlg::Sha1, &ci, &cr, remote);
        let s = detect(HashAlg::Sha1, &ci, &cr, &[&l, &r], local, remote);
        assert_eq!(s, NatStatus::default());
        let fake = [9u8; 20];
        let s = detect(HashAlg::Sha1, &ci, &cr, &[&l, &fake], local, remote);
        assert!(s.peer_behind_nat && !s.local_behind_nat);
    }
}
