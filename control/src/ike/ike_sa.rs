//! Per-peer state the responder keeps: IKE SAs (phase 1), Quick Mode exchanges in flight, and
//! the child SAs they produced.

use std::collections::HashMap;
use std::time::Instant;

use dataplane::sa::{IpsecProtocol, PeerEndpoint, ProxyPair};

use super::dh::DhKeyPair;
use super::events::{ChildId, IkeSaId};
use super::header::Cookie;
use super::identity::Identity;
use super::keys::Phase1Keys;
use super::natt::{NatStatus, NattFlavour};
use super::phase1_choice::Phase1Choice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MainModeState {
    /// MM2 sent, waiting for KE and nonce.
    SaSent,
    /// MM4 sent, waiting for the encrypted identity and HASH_I.
    KeySent,
    Established,
}

pub struct IkeSa {
    pub id: IkeSaId,
    pub cookie_i: Cookie,
    pub cookie_r: Cookie,
    pub endpoint: PeerEndpoint,
    pub natt: Option<NattFlavour>,
    pub nat: NatStatus,
    pub state: MainModeState,
    pub created: Instant,
    /// Half-open deadline until established, then the lifetime's end.
    pub deadline: Instant,
    pub choice: Phase1Choice,
    /// The initiator's SA payload body as received: HASH_I/HASH_R cover it.
    pub sa_i_body: Vec<u8>,
    pub dh: Option<DhKeyPair>,
    pub public_i: Vec<u8>,
    pub nonce_i: Vec<u8>,
    pub nonce_r: Vec<u8>,
    pub keys: Option<Phase1Keys>,
    /// The phase 1 CBC chain.
    pub iv: Vec<u8>,
    /// Last ciphertext block of phase 1: seeds every Quick Mode and Informational IV.
    pub phase1_last_block: Vec<u8>,
    pub peer_identity: Option<Identity>,
    /// Set when phase 1 was authenticated with certificates: the peer's and ours.
    pub peer_certificate: Option<crate::pki::CertificateSummary>,
    pub local_certificate: Option<crate::pki::CertificateSummary>,
    pub last_request: Vec<u8>,
    pub last_reply: Option<Vec<u8>>,
    pub quick: HashMap<u32, QuickExchange>,
}

impl IkeSa {
    pub fn is_established(&self) -> bool {
        self.state == MainModeState::Established
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuickState {
    /// QM2 sent; the child goes up on a valid HASH(3).
    AwaitingHash3,
    /// Kept only to answer retransmissions until the deadline.
    Done,
}

pub struct QuickExchange {
    pub state: QuickState,
    pub iv: Vec<u8>,
    pub last_request: Vec<u8>,
    pub last_reply: Vec<u8>,
    pub nonce_i: Vec<u8>,
    pub nonce_r: Vec<u8>,
    pub deadline: Instant,
    pub commit: bool,
    pub pending: Option<PendingChild>,
}

pub struct PendingChild {
    pub child: ChildId,
    pub proxy: ProxyPair,
    pub inbound: Vec<dataplane::sa::SaSpec>,
    pub outbound: Vec<dataplane::sa::SaSpec>,
    pub rekey_of: Option<ChildId>,
    pub hard_seconds: Option<u64>,
}

/// An installed child SA, remembered by identity so a new IKE SA of the same peer keeps it.
pub struct ChildSa {
    pub id: ChildId,
    pub ike_sa: IkeSaId,
    pub peer_identity: Identity,
    pub endpoint: PeerEndpoint,
    pub proxy: ProxyPair,
    pub inbound_spis: Vec<(IpsecProtocol, u32)>,
    pub outbound_spis: Vec<(IpsecProtocol, u32)>,
    pub expires: Option<Instant>,
}

/// Identity comparison for INITIAL-CONTACT and rekeys: the name, not the protocol/port.
pub fn same_peer(a: &Identity, b: &Identity) -> bool {
    a.data == b.data
}
