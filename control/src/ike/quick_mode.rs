//! Quick Mode as responder: QM1 (HASH(1), SA, Ni, [KE], [IDci, IDcr]) -> QM2, and QM3
//! (HASH(3)) after which the child SA is reported up (RFC 2409 section 5.5).

use std::time::{Duration, Instant};

use dataplane::sa::{
    Direction, Encapsulation, IpsecProtocol, PeerEndpoint, ProxyPair, SaKeys, SaSpec,
};

use super::dh::DhKeyPair;
use super::events::{ChildId, Exchange, FailureReason, IkeEvent, IkeSaId};
use super::header::Header;
use super::identity::Identity;
use super::ike_sa::{same_peer, ChildSa, PendingChild, QuickExchange, QuickState};
use super::keys::KeymatInputs;
use super::numbers::{exchange, flags, notify_type, protocol, NATT_PORT};
use super::payload::Payload;
use super::phase2_choice::{self, Phase2Choice, Phase2Reject};
use super::protection::{check_leading_hash, hashed_payloads, open_or_fail, same, seal};
use super::responder::Responder;
use super::sa_payload::{Proposal, SaPayload};
use super::secret::Secret;

const QM: Exchange = Exchange::QuickMode;
const NONCE_LEN: usize = 32;

impl Responder {
    pub(super) fn quick_mode(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let Some(sa) = self.sas.get(&id) else { return };
        if !sa.is_established() || header.message_id == 0 || header.flags & flags::ENCRYPTION == 0 {
            return self.fail(remote, QM, FailureReason::WrongState);
        }
        match sa.quick.get(&header.message_id) {
            Some(q) if q.last_request == bytes => {
                if q.state == QuickState::AwaitingHash3 {
                    let reply = q.last_reply.clone();
                    *self.drops.entry("retransmit-answered").or_default() += 1;
                    self.send(endpoint, &reply);
                } else {
                    *self.drops.entry("retransmit-ignored").or_default() += 1;
                }
            }
            Some(q) if q.state == QuickState::AwaitingHash3 => {
                self.quick_mode_hash3(now, id, endpoint, header, bytes)
            }
            Some(_) => self.fail(remote, QM, FailureReason::WrongState),
            None => self.quick_mode_first(now, id, endpoint, header, bytes),
        }
    }

    fn quick_mode_first(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let mid = header.message_id;
        let sa = self.sas.get(&id).expect("caller looked it up");
        let keys = sa.keys.as_ref().expect("established");
        let iv = keys.exchange_iv(&sa.phase1_last_block, mid);
        let opened = match open_or_fail(keys, &iv, header, bytes)
            .and_then(|o| check_leading_hash(keys, mid, &o.chain, "HASH(1)").map(|()| o))
        {
            Ok(o) => o,
            Err(reason) => return self.fail(remote, QM, reason),
        };
        let chain = &opened.chain;
        let mut offered = None;
        let mut nonce_i = None;
        let mut public_i = None;
        let mut ids: Vec<Identity> = Vec::new();
        for p in chain.iter().skip(1) {
            match p {
                Payload::Sa(s) => offered = Some(s.clone()),
                Payload::Nonce(n) => nonce_i = Some(n.clone()),
                Payload::KeyExchange(k) => public_i = Some(k.clone()),
                Payload::Identification(i) => ids.push(i.clone()),
                _ => {}
            }
        }
        let (Some(offered), Some(nonce_i)) = (offered, nonce_i) else {
            return self.fail(remote, QM, FailureReason::MissingPayload("SA or nonce"));
        };
        if !ids.is_empty() && ids.len() != 2 {
            return self.fail(remote, QM, FailureReason::UnsupportedProxyIdentity);
        }
        let choice = match phase2_choice::choose(
            &offered,
            &self.policy.effective_ipsec_proposals(),
            self.policy.pfs_group,
        ) {
            Ok(c) => c,
            Err(reject) => {
                let reason = match reject {
                    Phase2Reject::NoProposalChosen => FailureReason::NoProposalChosen,
                    Phase2Reject::PfsMismatch => FailureReason::PfsMismatch,
                };
                self.fail(remote, QM, reason);
                self.send_notify(
                    id,
                    protocol::ESP,
                    notify_type::NO_PROPOSAL_CHOSEN,
                    Vec::new(),
                    Vec::new(),
                );
                return;
            }
        };
        // Proxy identities: absent means the two gateways themselves.
        let (remote_id, local_id) = match ids.as_slice() {
            [ci, cr] => (ci.clone(), cr.clone()),
            _ => (
                Identity::address(remote.ip()),
                Identity::address(endpoint.local.ip()),
            ),
        };
        let (Some(remote_net), Some(local_net)) = (remote_id.to_prefix(), local_id.to_prefix())
        else {
            self.fail(remote, QM, FailureReason::UnsupportedProxyIdentity);
            self.send_notify(
                id,
                protocol::ESP,
                notify_type::INVALID_ID_INFORMATION,
                Vec::new(),
                Vec::new(),
            );
            return;
        };
        if remote_net.is_ipv4() != local_net.is_ipv4()
            || remote_id.protocol != local_id.protocol
            || !self.policy.proxy_allowed(&remote_net, &local_net)
        {
            self.fail(
                remote,
                QM,
                FailureReason::ProxyNotAllowed {
                    remote: remote_id.to_string(),
                    local: local_id.to_string(),
                },
            );
            self.send_notify(
                id,
                protocol::ESP,
                notify_type::INVALID_ID_INFORMATION,
                Vec::new(),
                Vec::new(),
            );
            return;
        }
        // PFS: a KE payload exactly when the chosen proposal names a group.
        let pfs = match (choice.pfs, &public_i) {
            (Some(group), Some(public)) => {
                let Ok(dh) = DhKeyPair::generate(group) else {
                    return self.fail(remote, QM, FailureReason::BadKeyExchange);
                };
                match dh.shared_secret(public) {
                    Ok(shared) => Some((dh, shared)),
                    Err(_) => return self.fail(remote, QM, FailureReason::BadKeyExchange),
                }
            }
            (None, None) => None,
            _ => return self.fail(remote, QM, FailureReason::PfsMismatch),
        };
        let mut our_spis = Vec::new();
        for part in &choice.parts {
            match self.spis.allocate(&endpoint, part.protocol) {
                Some(spi) => our_spis.push(spi),
                None => {
                    for spi in our_spis {
                        self.spis.release(spi);
                    }
                    return self.fail(remote, QM, FailureReason::SpiExhausted);
                }
            }
        }
        let mut nonce_r = vec![0u8; NONCE_LEN];
        if getrandom::getrandom(&mut nonce_r).is_err() {
            return self.fail(remote, QM, FailureReason::WrongState);
        }
        let proxy = ProxyPair {
            local: local_net,
            remote: remote_net,
            protocol: remote_id.protocol,
            local_port: local_id.port,
            remote_port: remote_id.port,
        };
        let reply_sa = SaPayload::new(
            choice
                .parts
                .iter()
                .zip(&our_spis)
                .map(|(part, spi)| Proposal {
                    number: part.proposal_number,
                    protocol: match part.protocol {
                        IpsecProtocol::Esp => protocol::ESP,
                        IpsecProtocol::Ah => protocol::AH,
                    },
                    spi: spi.to_be_bytes().to_vec(),
                    transforms: vec![part.transform.clone()],
                })
                .collect(),
        );
        let mut rest = vec![Payload::Sa(reply_sa), Payload::Nonce(nonce_r.clone())];
        if let Some((dh, _)) = &pfs {
            rest.push(Payload::KeyExchange(dh.public().to_vec()));
        }
        if ids.len() == 2 {
            rest.push(Payload::Identification(remote_id.clone()));
            rest.push(Payload::Identification(local_id.clone()));
        }
        let payloads = hashed_payloads(keys, mid, rest, &[&nonce_i]);
        let reply_header = Header {
            initiator_cookie: sa.cookie_i,
            responder_cookie: sa.cookie_r,
            next_payload: 0,
            exchange: exchange::QUICK_MODE,
            flags: 0,
            message_id: mid,
            length: 0,
        };
        let Ok(sealed) = seal(keys, &opened.last_block, reply_header, &payloads) else {
            return self.fail(remote, QM, FailureReason::WrongState);
        };
        let pfs_shared = pfs.as_ref().map(|(_, s)| s);
        let (inbound, outbound) = self.build_specs(
            id, endpoint, &choice, &our_spis, pfs_shared, &nonce_i, &nonce_r,
        );
        let sa = self.sas.get(&id).expect("caller looked it up");
        let identity = sa.peer_identity.clone();
        let rekey_of = self
            .children
            .values()
            .filter(|c| {
                c.proxy == proxy
                    && identity
                        .as_ref()
                        .is_some_and(|i| same_peer(i, &c.peer_identity))
            })
            .map(|c| c.id)
            .max();
        let child = ChildId(self.next_id());
        let timeout = self.policy.limits.quick_mode_timeout;
        let sa = self.sas.get_mut(&id).expect("caller looked it up");
        sa.endpoint = endpoint;
        sa.quick.insert(
            mid,
            QuickExchange {
                state: QuickState::AwaitingHash3,
                iv: sealed.last_block,
                last_request: bytes.to_vec(),
                last_reply: sealed.bytes.clone(),
                nonce_i,
                nonce_r,
                deadline: now + timeout,
                commit: header.flags & flags::COMMIT != 0,
                pending: Some(PendingChild {
                    child,
                    proxy,
                    inbound,
                    outbound,
                    rekey_of,
                    hard_seconds: choice.lifetime.hard_seconds,
                }),
            },
        );
        self.send(endpoint, &sealed.bytes);
    }

    #[allow(clippy::too_many_arguments)]
    fn build_specs(
        &self,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        choice: &Phase2Choice,
        our_spis: &[u32],
        pfs_shared: Option<&Secret>,
        nonce_i: &[u8],
        nonce_r: &[u8],
    ) -> (Vec<SaSpec>, Vec<SaSpec>) {
        let sa = self.sas.get(&id).expect("caller looked it up");
        let keys = sa.keys.as_ref().expect("established");
        let encapsulation = if choice.udp_encapsulation {
            if endpoint.local.port() == NATT_PORT {
                Encapsulation::Udp {
                    local_port: endpoint.local.port(),
                    remote_port: endpoint.remote.port(),
                }
            } else {
                Encapsulation::Udp {
                    local_port: NATT_PORT,
                    remote_port: NATT_PORT,
                }
            }
        } else {
            Encapsulation::None
        };
        let mut inbound = Vec::new();
        let mut outbound = Vec::new();
        for (part, our_spi) in choice.parts.iter().zip(our_spis) {
            let proto_number = match part.protocol {
                IpsecProtocol::Esp => protocol::ESP,
                IpsecProtocol::Ah => protocol::AH,
            };
            let input = KeymatInputs {
                pfs_shared,
                protocol: proto_number,
                nonce_i,
                nonce_r,
            };
            let enc_len = part.cipher.key_len();
            let len = enc_len + part.integrity.key_len();
            for (direction, spi) in [
                (Direction::Inbound, *our_spi),
                (Direction::Outbound, part.peer_spi),
            ] {
                let material = keys.keymat(&input, spi, len);
                let spec = SaSpec {
                    spi,
                    direction,
                    protocol: part.protocol,
                    cipher: part.cipher,
                    integrity: part.integrity,
                    keys: SaKeys {
                        encryption: material.expose()[..enc_len].to_vec(),
                        integrity: material.expose()[enc_len..].to_vec(),
                    },
                    local: endpoint.local.ip(),
                    remote: endpoint.remote.ip(),
                    encapsulation,
                    replay_window: self.policy.replay_window,
                    extended_sequence_numbers: false,
                    lifetime: choice.lifetime,
                    df_mode: Default::default(),
                    tunnel_mtu: None,
                };
                match direction {
                    Direction::Inbound => inbound.push(spec),
                    Direction::Outbound => outbound.push(spec),
                }
            }
        }
        (inbound, outbound)
    }

    fn quick_mode_hash3(
        &mut self,
        now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let mid = header.message_id;
        let sa = self.sas.get(&id).expect("caller looked it up");
        let keys = sa.keys.as_ref().expect("established");
        let q = sa.quick.get(&mid).expect("caller looked it up");
        let opened = match open_or_fail(keys, &q.iv, header, bytes) {
            Ok(o) => o,
            Err(reason) => return self.fail(remote, QM, reason),
        };
        let Some(Payload::Hash(hash3)) = opened.chain.payloads.first().map(|p| &p.payload) else {
            return self.fail(remote, QM, FailureReason::MissingPayload("HASH(3)"));
        };
        let expected = keys.hash.prf(
            keys.skeyid_a.expose(),
            &[&[0], &mid.to_be_bytes(), &q.nonce_i, &q.nonce_r],
        );
        if !same(&expected, hash3) {
            return self.fail(remote, QM, FailureReason::HashMismatch);
        }
        let identity = sa.peer_identity.clone().expect("established");
        let sa = self.sas.get_mut(&id).expect("caller looked it up");
        let q = sa.quick.get_mut(&mid).expect("caller looked it up");
        q.state = QuickState::Done;
        q.last_request = bytes.to_vec();
        let commit = q.commit;
        let Some(pending) = q.pending.take() else {
            return;
        };
        sa.endpoint = endpoint;
        let expires = pending.hard_seconds.map(|s| now + Duration::from_secs(s));
        let child = ChildSa {
            id: pending.child,
            ike_sa: id,
            peer_identity: identity,
            endpoint,
            proxy: pending.proxy,
            inbound_spis: pending
                .inbound
                .iter()
                .map(|s| (s.protocol, s.spi))
                .collect(),
            outbound_spis: pending
                .outbound
                .iter()
                .map(|s| (s.protocol, s.spi))
                .collect(),
            expires,
        };
        tracing::info!(
            peer = %remote,
            proxy_remote = %pending.proxy.remote,
            proxy_local = %pending.proxy.local,
            spi_in = format_args!("{:08x}", child.inbound_spis[0].1),
            spi_out = format_args!("{:08x}", child.outbound_spis[0].1),
            rekey = pending.rekey_of.is_some(),
            "child SA established"
        );
        let first_inbound = child.inbound_spis[0];
        self.children.insert(pending.child, child);
        self.events.push_back(IkeEvent::ChildSaUp {
            ike_sa: id,
            child: pending.child,
            peer: endpoint,
            proxy: pending.proxy,
            inbound: pending.inbound,
            outbound: pending.outbound,
            rekey_of: pending.rekey_of,
        });
        if commit {
            // RFC 2409 section 5.5: with the commit bit the initiator waits for CONNECTED.
            let proto = match first_inbound.0 {
                IpsecProtocol::Esp => protocol::ESP,
                IpsecProtocol::Ah => protocol::AH,
            };
            self.send_notify(
                id,
                proto,
                notify_type::CONNECTED,
                first_inbound.1.to_be_bytes().to_vec(),
                Vec::new(),
            );
        }
    }
}
