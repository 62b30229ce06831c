//! Main Mode (identity protection) as responder: MM1/MM2 proposal, MM3/MM4 Diffie-Hellman,
//! nonces and NAT-D (and CERT_REQ with signatures), MM5/MM6 encrypted identities and
//! HASH_I/HASH_R with pre-shared keys; the signature variant of MM5/MM6 is in
//! `main_mode_signature`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dataplane::sa::PeerEndpoint;

use super::auth_method::AuthMethod;
use super::dh::DhKeyPair;
use super::events::{ChildId, DownReason, Exchange, FailureReason, IkeEvent, IkeSaId};
use super::header::{Header, HEADER_LEN};
use super::identity::Identity;
use super::identity_proof::{Mm5, Mm6, Prover};
use super::ike_sa::{same_peer, IkeSa, MainModeState};
use super::keys::{Phase1Inputs, Phase1Keys};
use super::natt::{self, NatStatus, NattFlavour};
use super::notify::Notify;
use super::numbers::{exchange, flags, notify_type, protocol, vendor_id};
use super::payload::{write_chain, Chain, Payload};
use super::phase1_choice;
use super::protection::{open_or_fail, same};
use super::responder::Responder;

const NONCE_LEN: usize = 32;
pub(super) const MM: Exchange = Exchange::MainMode;

impl Responder {
    /// MM1: a new IKE SA, or a retransmitted MM1 of one that is still half-open.
    pub(super) fn main_mode_first(
        &mut self,
        now: Instant,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        if let Some(&id) = self.by_initiator.get(&header.initiator_cookie) {
            if let Some(sa) = self.sas.get(&id) {
                if sa.last_request == bytes {
                    if let Some(reply) = sa.last_reply.clone() {
                        *self.drops.entry("retransmit-answered").or_default() += 1;
                        self.send(sa.endpoint, &reply);
                    }
                    return;
                }
            }
        }
        if header.message_id != 0 || header.flags & flags::ENCRYPTION != 0 {
            self.fail(remote, MM, FailureReason::WrongState);
            return;
        }
        let chain = match Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false) {
            Ok(c) => c,
            Err(e) => return self.fail(remote, MM, FailureReason::Malformed(e)),
        };
        let Some(sa_index) = chain.find(super::numbers::payload_type::SA) else {
            return self.fail(remote, MM, FailureReason::MissingPayload("SA"));
        };
        let (total, this_peer) = self.half_open(remote.ip());
        let limits = &self.policy.limits;
        if total >= limits.half_open_total || this_peer >= limits.half_open_per_peer {
            return self.fail(remote, MM, FailureReason::HalfOpenLimit);
        }
        let Payload::Sa(offered) = &chain.payloads[sa_index].payload else {
            return self.fail(remote, MM, FailureReason::MissingPayload("SA"));
        };
        let Some(choice) = phase1_choice::choose_with_methods(
            offered,
            &self.policy.effective_ike_proposals(),
            &self.policy.auth_methods(),
        ) else {
            self.fail(remote, MM, FailureReason::NoProposalChosen);
            self.send_plain_notify(endpoint, header, notify_type::NO_PROPOSAL_CHOSEN);
            return;
        };
        let vendor_ids = chain.iter().filter_map(|p| match p {
            Payload::VendorId(v) => Some(v.as_slice()),
            _ => None,
        });
        let natt = NattFlavour::from_vendor_ids(vendor_ids);
        let mut cookie_r = [0u8; 8];
        if getrandom::getrandom(&mut cookie_r).is_err() || cookie_r == [0u8; 8] {
            return self.fail(remote, MM, FailureReason::WrongState);
        }
        let mut reply_payloads = vec![Payload::Sa(choice.reply.clone())];
        if let Some((_, vid)) = natt {
            reply_payloads.push(Payload::VendorId(vid.to_vec()));
        }
        reply_payloads.push(Payload::VendorId(vendor_id::DPD.to_vec()));
        let reply = plain_message(header, cookie_r, &reply_payloads);
        let id = IkeSaId(self.next_id());
        let sa = IkeSa {
            id,
            cookie_i: header.initiator_cookie,
            cookie_r,
            endpoint,
            natt: natt.map(|(f, _)| f),
            nat: NatStatus::default(),
            state: MainModeState::SaSent,
            created: now,
            deadline: now + self.policy.limits.half_open_timeout,
            choice,
            sa_i_body: chain.raw_body(sa_index).to_vec(),
            dh: None,
            public_i: Vec::new(),
            nonce_i: Vec::new(),
            nonce_r: Vec::new(),
            keys: None,
            iv: Vec::new(),
            phase1_last_block: Vec::new(),
            peer_identity: None,
            peer_certificate: None,
            local_certificate: None,
            last_request: bytes.to_vec(),
            last_reply: Some(reply.clone()),
            quick: HashMap::new(),
        };
        self.by_cookies.insert((sa.cookie_i, sa.cookie_r), id);
        self.by_initiator.insert(sa.cookie_i, id);
        self.sas.insert(id, sa);
        self.send(endpoint, &reply);
    }

    pub(super) fn main_mode_next(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let Some(sa) = self.sas.get(&id) else { return };
        if sa.last_request == bytes {
            if let Some(reply) = sa.last_reply.clone() {
                *self.drops.entry("retransmit-answered").or_default() += 1;
                self.send(endpoint, &reply);
            }
            return;
        }
        match sa.state {
            MainModeState::SaSent => self.main_mode_key_exchange(id, endpoint, header, bytes),
            MainModeState::KeySent => self.main_mode_auth(now, id, endpoint, header, bytes),
            MainModeState::Established => self.fail(remote, MM, FailureReason::WrongState),
        }
    }

    /// MM3 -> MM4.
    fn main_mode_key_exchange(
        &mut self,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        if header.flags & flags::ENCRYPTION != 0 || header.message_id != 0 {
            return self.fail(remote, MM, FailureReason::WrongState);
        }
        let chain = match Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false) {
            Ok(c) => c,
            Err(e) => return self.fail(remote, MM, FailureReason::Malformed(e)),
        };
        let mut public_i = None;
        let mut nonce_i = None;
        let mut nat_d: Vec<&[u8]> = Vec::new();
        for p in chain.iter() {
            match p {
                Payload::KeyExchange(k) => public_i = Some(k.clone()),
                Payload::Nonce(n) => nonce_i = Some(n.clone()),
                Payload::NatDiscovery { hash, .. } => nat_d.push(hash),
                _ => {}
            }
        }
        let (Some(public_i), Some(nonce_i)) = (public_i, nonce_i) else {
            return self.fail(remote, MM, FailureReason::MissingPayload("KE or nonce"));
        };
        // RFC 2409: nonces are 8 to 256 bytes.
        if !(8..=256).contains(&nonce_i.len()) {
            return self.fail(
                remote,
                MM,
                FailureReason::Malformed(super::codec_error::CodecError::BadPayloadLength),
            );
        }
        let auth = self.sas.get(&id).expect("looked up by caller").choice.auth;
        let psk = if auth == AuthMethod::PreSharedKey {
            let Some(psk) = self.policy.psk.lookup(remote.ip()).cloned() else {
                return self.fail(remote, MM, FailureReason::NoPreSharedKey);
            };
            Some(psk)
        } else {
            None
        };
        let certificate_requests = self.certificate_requests(auth);
        let sa = self.sas.get_mut(&id).expect("looked up by caller");
        let group = sa.choice.group;
        let dh = match DhKeyPair::generate(group) {
            Ok(d) => d,
            Err(_) => return self.fail(remote, MM, FailureReason::BadKeyExchange),
        };
        let shared = match dh.shared_secret(&public_i) {
            Ok(s) => s,
            Err(_) => return self.fail(remote, MM, FailureReason::BadKeyExchange),
        };
        let mut nonce_r = vec![0u8; NONCE_LEN];
        if getrandom::getrandom(&mut nonce_r).is_err() {
            return self.fail(remote, MM, FailureReason::WrongState);
        }
        let keys = Phase1Keys::derive(
            sa.choice.hash,
            sa.choice.cipher,
            &Phase1Inputs {
                psk: psk.as_ref(),
                nonce_i: &nonce_i,
                nonce_r: &nonce_r,
                shared: &shared,
                cookie_i: &sa.cookie_i,
                cookie_r: &sa.cookie_r,
            },
        );
        let mut payloads = vec![
            Payload::KeyExchange(dh.public().to_vec()),
            Payload::Nonce(nonce_r.clone()),
        ];
        payloads.extend(certificate_requests);
        if let Some(flavour) = sa.natt {
            if !nat_d.is_empty() {
                sa.nat = natt::detect(
                    keys.hash,
                    &sa.cookie_i,
                    &sa.cookie_r,
                    &nat_d,
                    endpoint.local,
                    remote,
                );
                let draft = flavour.is_draft();
                for addr in [remote, endpoint.local] {
                    let hash = natt::nat_d_hash(keys.hash, &sa.cookie_i, &sa.cookie_r, addr);
                    payloads.push(Payload::NatDiscovery { draft, hash });
                }
            }
        }
        sa.iv = keys.phase1_iv(&public_i, dh.public());
        sa.public_i = public_i;
        sa.nonce_i = nonce_i;
        sa.nonce_r = nonce_r;
        sa.dh = Some(dh);
        sa.keys = Some(keys);
        sa.state = MainModeState::KeySent;
        let reply = plain_message(header, sa.cookie_r, &payloads);
        sa.last_request = bytes.to_vec();
        sa.last_reply = Some(reply.clone());
        sa.endpoint = endpoint;
        self.send(endpoint, &reply);
    }

    /// MM5 -> MM6: the first encrypted message proves the identity, with the pre-shared key
    /// here or with a signature (`main_mode_signature`).
    fn main_mode_auth(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        if header.flags & flags::ENCRYPTION == 0 {
            return self.fail(remote, MM, FailureReason::WrongState);
        }
        let sa = self.sas.get(&id).expect("looked up by caller");
        // With signatures our certificates must be configured before MM5 is worth opening.
        let signing = match sa.choice.auth.key_kind() {
            None => None,
            Some(kind) => match self.policy.certificates.clone() {
                Some(certs) => Some((certs, kind)),
                None => return self.fail(remote, MM, FailureReason::NoLocalCertificate),
            },
        };
        let keys = sa.keys.as_ref().expect("keys exist after MM3");
        let mm5 = match open_or_fail(keys, &sa.iv, header, bytes) {
            Ok(opened) => Mm5::sort(&opened.chain, opened.last_block),
            Err(reason) => return self.fail(remote, MM, reason),
        };
        let mm6 = match signing {
            None => self.mm6_for_pre_shared_key(id, endpoint, mm5),
            Some((certs, kind)) => self.mm6_for_signature(id, endpoint, bytes, mm5, &certs, kind),
        };
        if let Some(mm6) = mm6 {
            self.phase1_established(now, id, endpoint, header, bytes, mm6);
        }
    }

    /// HASH_I must match; MM6 carries our address as ID and HASH_R.
    fn mm6_for_pre_shared_key(
        &mut self,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        mm5: Mm5,
    ) -> Option<Mm6> {
        let remote = endpoint.remote;
        let (Some(peer), Some(hash_i)) = (mm5.identity, mm5.hash) else {
            self.fail(remote, MM, FailureReason::MissingPayload("ID or HASH_I"));
            return None;
        };
        let sa = self.sas.get(&id).expect("looked up by caller");
        let expected = sa.authentication_hash(Prover::Initiator, &peer.body);
        if !same(&expected, &hash_i) {
            self.fail(remote, MM, FailureReason::AuthenticationFailed);
            return None;
        }
        // Authenticated: from here the message may change state.
        let our_identity = Identity::address(endpoint.local.ip());
        let mut id_body = Vec::new();
        our_identity.write(&mut id_body);
        let hash_r = sa.authentication_hash(Prover::Responder, &id_body);
        let payloads = [Payload::Identification(our_identity), Payload::Hash(hash_r)];
        let Ok(sealed) = sa.seal_mm6(&mm5.last_block, &payloads) else {
            self.fail(remote, MM, FailureReason::WrongState);
            return None;
        };
        Some(Mm6 {
            sealed,
            identity: peer.identity,
            initial_contact: mm5.initial_contact,
        })
    }

    /// MM6 is sealed: the IKE SA is up (shared by both authentication methods).
    fn phase1_established(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
        mm6: Mm6,
    ) {
        let Mm6 {
            sealed,
            identity,
            initial_contact,
        } = mm6;
        let remote = endpoint.remote;
        let sa = self.sas.get_mut(&id).expect("looked up by caller");
        let lifetime = Duration::from_secs(sa.choice.lifetime_seconds);
        sa.iv = sealed.last_block.clone();
        sa.phase1_last_block = sealed.last_block;
        sa.state = MainModeState::Established;
        sa.deadline = now + lifetime;
        sa.dh = None;
        sa.peer_identity = Some(identity.clone());
        sa.last_request = bytes.to_vec();
        sa.last_reply = Some(sealed.bytes.clone());
        sa.endpoint = endpoint;
        self.by_initiator.remove(&header.initiator_cookie);
        self.send(endpoint, &sealed.bytes);
        tracing::info!(peer = %remote, identity = %identity, "IKE SA established");
        self.events.push_back(IkeEvent::IkeSaUp {
            ike_sa: id,
            peer: endpoint,
            identity: identity.clone(),
        });
        if initial_contact {
            self.initial_contact(id, &identity);
        }
    }

    /// Drops every older IKE SA and child SA of the same identity: the peer rebooted.
    fn initial_contact(&mut self, keep: IkeSaId, identity: &Identity) {
        let old_sas: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|s| {
                s.id != keep
                    && s.peer_identity
                        .as_ref()
                        .is_some_and(|i| same_peer(i, identity))
            })
            .map(|s| s.id)
            .collect();
        let old_children: Vec<ChildId> = self
            .children
            .values()
            .filter(|c| same_peer(&c.peer_identity, identity))
            .map(|c| c.id)
            .collect();
        if old_sas.is_empty() && old_children.is_empty() {
            return;
        }
        for c in old_children {
            self.remove_child(c, DownReason::Replaced);
        }
        for s in &old_sas {
            self.remove_ike_sa(*s, DownReason::Replaced);
        }
        self.events.push_back(IkeEvent::PeerReplaced {
            ike_sa: keep,
            replaced: old_sas,
            identity: identity.clone(),
        });
    }

    /// Unencrypted notification for failures before keys exist (NO-PROPOSAL-CHOSEN).
    fn send_plain_notify(&mut self, endpoint: PeerEndpoint, header: &Header, kind: u16) {
        let notify = Payload::Notify(Notify::new(protocol::ISAKMP, kind, Vec::new(), Vec::new()));
        let mut h = *header;
        h.exchange = exchange::INFORMATIONAL;
        let message = plain_message(&h, [0u8; 8], &[notify]);
        self.send(endpoint, &message);
    }
}

pub(super) fn plain_message(request: &Header, cookie_r: [u8; 8], payloads: &[Payload]) -> Vec<u8> {
    let (first, body) = write_chain(payloads);
    let header = Header {
        initiator_cookie: request.initiator_cookie,
        responder_cookie: cookie_r,
        next_payload: first,
        exchange: request.exchange,
        flags: 0,
        message_id: 0,
        length: (HEADER_LEN + body.len()) as u32,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    header.write(&mut out);
    out.extend_from_slice(&body);
    out
}
