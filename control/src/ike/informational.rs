//! Informational exchanges: DPD (RFC 3706, answered never initiated), deletes of IKE and IPsec
//! SAs in both directions, and the protected notifications we send.

use std::time::Instant;

use dataplane::sa::{IpsecProtocol, PeerEndpoint};

use super::events::{ChildId, DownReason, Exchange, FailureReason, IkeSaId};
use super::header::{Header, HEADER_LEN};
use super::ike_sa::same_peer;
use super::notify::{Delete, Notify};
use super::numbers::{exchange, flags, notify_type, protocol};
use super::payload::{Chain, Payload};
use super::protection::{check_leading_hash, hashed_payloads, open_or_fail, seal};
use super::responder::Responder;

const INFO: Exchange = Exchange::Informational;

impl Responder {
    pub(super) fn informational(
        &mut self,
        _now: Instant,
        id: IkeSaId,
        endpoint: PeerEndpoint,
        header: &Header,
        bytes: &[u8],
    ) {
        let remote = endpoint.remote;
        let Some(sa) = self.sas.get(&id) else { return };
        if header.flags & flags::ENCRYPTION == 0 {
            // Unprotected notifications (e.g. an error during Main Mode) are only logged: they
            // are unauthenticated and must not change anything.
            match Chain::parse(header.next_payload, bytes[HEADER_LEN..].to_vec(), false) {
                Ok(chain) => {
                    for p in chain.iter() {
                        if let Payload::Notify(n) = p {
                            tracing::info!(peer = %remote, notify = n.message_type, "unprotected notify from peer");
                        }
                    }
                    *self.drops.entry("unprotected-informational").or_default() += 1;
                }
                Err(e) => self.fail(remote, INFO, FailureReason::Malformed(e)),
            }
            return;
        }
        let Some(keys) = sa.keys.as_ref().filter(|_| sa.is_established()) else {
            return self.fail(remote, INFO, FailureReason::WrongState);
        };
        let mid = header.message_id;
        let iv = keys.exchange_iv(&sa.phase1_last_block, mid);
        let opened = match open_or_fail(keys, &iv, header, bytes)
            .and_then(|o| check_leading_hash(keys, mid, &o.chain, "HASH").map(|()| o))
        {
            Ok(o) => o,
            Err(reason) => return self.fail(remote, INFO, reason),
        };
        let chain = &opened.chain;
        let cookies: Vec<u8> = [sa.cookie_i, sa.cookie_r].concat();
        let identity = sa.peer_identity.clone();
        let payloads: Vec<Payload> = chain.iter().skip(1).cloned().collect();
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.endpoint = endpoint;
        }
        for payload in payloads {
            match payload {
                Payload::Notify(n) if n.message_type == notify_type::R_U_THERE => {
                    if n.spi != cookies || n.data.len() != 4 {
                        self.fail(
                            remote,
                            INFO,
                            FailureReason::Malformed(super::codec_error::CodecError::BadNotify),
                        );
                        continue;
                    }
                    *self.drops.entry("dpd-answered").or_default() += 1;
                    self.send_notify(
                        id,
                        protocol::ISAKMP,
                        notify_type::R_U_THERE_ACK,
                        n.spi,
                        n.data,
                    );
                }
                Payload::Notify(n) => {
                    tracing::info!(peer = %remote, notify = n.message_type, "notify from peer");
                }
                Payload::Delete(d) if d.protocol == protocol::ISAKMP => {
                    for spi in &d.spis {
                        if spi.len() != 16 {
                            continue;
                        }
                        let (mut ci, mut cr) = ([0u8; 8], [0u8; 8]);
                        ci.copy_from_slice(&spi[..8]);
                        cr.copy_from_slice(&spi[8..]);
                        match self.by_cookies.get(&(ci, cr)).copied() {
                            // Only SAs of the same peer identity can be deleted through this one.
                            Some(target)
                                if target == id
                                    || self
                                        .sas
                                        .get(&target)
                                        .and_then(|t| t.peer_identity.as_ref())
                                        .zip(identity.as_ref())
                                        .is_some_and(|(a, b)| same_peer(a, b)) =>
                            {
                                self.remove_ike_sa(target, DownReason::DeletedByPeer)
                            }
                            _ => self.fail(remote, INFO, FailureReason::UnknownSpi),
                        }
                    }
                }
                Payload::Delete(d) if d.protocol == protocol::ESP || d.protocol == protocol::AH => {
                    let proto = if d.protocol == protocol::ESP {
                        IpsecProtocol::Esp
                    } else {
                        IpsecProtocol::Ah
                    };
                    for spi in &d.spis {
                        let Ok(raw) = <[u8; 4]>::try_from(spi.as_slice()) else {
                            continue;
                        };
                        let spi = u32::from_be_bytes(raw);
                        let found = self
                            .children
                            .values()
                            .find(|c| {
                                c.outbound_spis.contains(&(proto, spi))
                                    && identity
                                        .as_ref()
                                        .is_some_and(|i| same_peer(i, &c.peer_identity))
                            })
                            .map(|c| c.id);
                        match found {
                            Some(child) => self.remove_child(child, DownReason::DeletedByPeer),
                            None => self.fail(remote, INFO, FailureReason::UnknownSpi),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends a protected Informational with one notification over IKE SA `id`.
    pub(super) fn send_notify(
        &mut self,
        id: IkeSaId,
        proto: u8,
        kind: u16,
        spi: Vec<u8>,
        data: Vec<u8>,
    ) {
        let notify = Payload::Notify(Notify::new(proto, kind, spi, data));
        self.send_informational(id, vec![notify]);
    }

    fn send_informational(&mut self, id: IkeSaId, rest: Vec<Payload>) {
        if !self.sas.get(&id).is_some_and(|sa| sa.is_established()) {
            return;
        }
        if let Some((endpoint, bytes)) = self.protected_informational(id, rest) {
            self.send(endpoint, &bytes);
        }
    }

    /// A protected Informational over IKE SA `id` (keys must exist; phase 1 need not be
    /// finished: its IV chain starts from `phase1_last_block`).
    pub(super) fn protected_informational(
        &self,
        id: IkeSaId,
        rest: Vec<Payload>,
    ) -> Option<(dataplane::sa::PeerEndpoint, Vec<u8>)> {
        let sa = self.sas.get(&id)?;
        let keys = sa.keys.as_ref()?;
        let mut raw = [0u8; 4];
        getrandom::getrandom(&mut raw).ok()?;
        let mid = u32::from_be_bytes(raw).max(1);
        let iv = keys.exchange_iv(&sa.phase1_last_block, mid);
        let payloads = hashed_payloads(keys, mid, rest, &[]);
        let header = Header {
            initiator_cookie: sa.cookie_i,
            responder_cookie: sa.cookie_r,
            next_payload: 0,
            exchange: exchange::INFORMATIONAL,
            flags: 0,
            message_id: mid,
            length: 0,
        };
        let sealed = seal(keys, &iv, header, &payloads).ok()?;
        Some((sa.endpoint, sealed.bytes))
    }

    /// Deletes a child SA locally and tells the peer (over the newest IKE SA of that peer).
    pub fn delete_child(&mut self, child: ChildId) {
        self.delete_child_because(child, DownReason::DeletedLocally);
    }

    /// Also used at hard expiry, so that the peer drops its half of the pair at once instead of
    /// sending into an SA we no longer have.
    pub(super) fn delete_child_because(&mut self, child: ChildId, reason: DownReason) {
        let Some(c) = self.children.get(&child) else {
            return;
        };
        let identity = c.peer_identity.clone();
        let inbound_spis = c.inbound_spis.clone();
        let ike = self
            .sas
            .values()
            .filter(|s| {
                s.is_established()
                    && s.peer_identity
                        .as_ref()
                        .is_some_and(|i| same_peer(i, &identity))
            })
            .map(|s| s.id)
            .max();
        for proto in [IpsecProtocol::Esp, IpsecProtocol::Ah] {
            let spis: Vec<Vec<u8>> = inbound_spis
                .iter()
                .filter(|(p, _)| *p == proto)
                .map(|(_, s)| s.to_be_bytes().to_vec())
                .collect();
            if let (Some(ike), false) = (ike, spis.is_empty()) {
                let number = if proto == IpsecProtocol::Esp {
                    protocol::ESP
                } else {
                    protocol::AH
                };
                self.send_informational(ike, vec![Payload::Delete(Delete::new(number, spis))]);
            }
        }
        self.remove_child(child, reason);
    }

    /// Deletes an IKE SA locally and tells the peer; its child SAs stay (IKEv1 semantics).
    pub fn delete_ike_sa(&mut self, id: IkeSaId) {
        self.delete_ike_sa_because(id, DownReason::DeletedLocally);
    }

    pub(super) fn delete_ike_sa_because(&mut self, id: IkeSaId, reason: DownReason) {
        let Some(sa) = self.sas.get(&id) else { return };
        if sa.is_established() {
            let cookies = [sa.cookie_i, sa.cookie_r].concat();
            self.send_informational(
                id,
                vec![Payload::Delete(Delete::new(
                    protocol::ISAKMP,
                    vec![cookies],
                ))],
            );
        }
        self.remove_ike_sa(id, reason);
    }

    /// Deletes every IKE SA and child SA whose peer is at `peer` (operator "clear"), telling
    /// the peer about each: the child SAs' deletes first, then the IKE SAs'.
    pub fn delete_peer(&mut self, peer: std::net::IpAddr) {
        self.delete_peer_children(peer);
        self.delete_peer_ike_sas(peer);
    }

    /// The first half of [`delete_peer`](Self::delete_peer): the child SAs of `peer` go, and
    /// their deletes are sent over its IKE SA, which stays. A caller that can wait lets them
    /// reach the peer before the IKE SA's delete: a multi-threaded peer such as strongSwan
    /// handles two back-to-back messages in parallel, and one that meets the IKE SA's delete
    /// first drops the other without reading it.
    pub fn delete_peer_children(&mut self, peer: std::net::IpAddr) {
        let children: Vec<ChildId> = self
            .children
            .values()
            .filter(|c| c.endpoint.remote.ip() == peer)
            .map(|c| c.id)
            .collect();
        for child in children {
            self.delete_child(child);
        }
    }

    /// The second half of [`delete_peer`](Self::delete_peer): the IKE SAs of `peer` go, each
    /// with its delete.
    pub fn delete_peer_ike_sas(&mut self, peer: std::net::IpAddr) {
        let sas: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|s| s.endpoint.remote.ip() == peer)
            .map(|s| s.id)
            .collect();
        for id in sas {
            self.delete_ike_sa(id);
        }
    }
}
