//! The sans-IO responder: datagrams and time in, datagrams and events out. It owns every IKE SA
//! of the gateway; the exchanges themselves live in `main_mode`, `quick_mode` and
//! `informational`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use dataplane::sa::PeerEndpoint;

use super::events::{ChildId, DownReason, Exchange, FailureReason, IkeEvent, IkeFailure, IkeSaId};
use super::header::{Cookie, Header};
use super::ike_sa::{ChildSa, IkeSa, MainModeState};
use super::numbers::{exchange, NATT_PORT};
use super::policy::{RandomSpis, ResponderPolicy, SpiAllocator};

/// One datagram to send. `bytes` already carries the non-ESP marker when sent from port 4500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Operational view of one IKE SA (no keys).
#[derive(Clone, Debug, serde::Serialize)]
pub struct IkeSaView {
    pub id: IkeSaId,
    /// ISAKMP cookies, as `show … ike security-associations` prints them.
    pub cookie_i: super::header::Cookie,
    pub cookie_r: super::header::Cookie,
    pub peer: PeerEndpoint,
    pub identity: Option<String>,
    pub state: MainModeState,
    pub cipher: super::crypto::IkeCipher,
    pub hash: super::crypto::HashAlg,
    pub group: super::dh::DhGroup,
    pub lifetime_seconds: u64,
    pub nat_traversal: bool,
    pub children: usize,
    pub auth_method: super::auth_method::AuthMethod,
    /// With certificate authentication: the peer's certificate and ours (names and validity).
    pub peer_certificate: Option<crate::pki::CertificateSummary>,
    pub local_certificate: Option<crate::pki::CertificateSummary>,
}

pub struct Responder {
    pub(super) policy: ResponderPolicy,
    pub(super) spis: Box<dyn SpiAllocator>,
    pub(super) sas: HashMap<IkeSaId, IkeSa>,
    pub(super) by_cookies: HashMap<(Cookie, Cookie), IkeSaId>,
    /// Half-open SAs by initiator cookie, to answer a retransmitted MM1.
    pub(super) by_initiator: HashMap<Cookie, IkeSaId>,
    pub(super) children: BTreeMap<ChildId, ChildSa>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<IkeEvent>,
    pub(super) drops: BTreeMap<&'static str, u64>,
    next_id: u64,
}

impl Responder {
    pub fn new(policy: ResponderPolicy) -> Self {
        Self::with_spi_allocator(policy, Box::new(RandomSpis::default()))
    }

    pub fn with_spi_allocator(policy: ResponderPolicy, spis: Box<dyn SpiAllocator>) -> Self {
        Responder {
            policy,
            spis,
            sas: HashMap::new(),
            by_cookies: HashMap::new(),
            by_initiator: HashMap::new(),
            children: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: BTreeMap::new(),
            next_id: 1,
        }
    }

    pub fn policy(&self) -> &ResponderPolicy {
        &self.policy
    }

    /// `bytes` is the IKE message; on port 4500 without its 4-byte non-ESP marker.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if local.port() == NATT_PORT && bytes == [0xff] {
            // NAT keepalive (RFC 3948 section 2.3): nothing to do.
            *self.drops.entry("natt-keepalive").or_default() += 1;
            return;
        }
        if !self.policy.local_addresses.is_empty()
            && !self.policy.local_addresses.contains(&local.ip())
        {
            self.fail(remote, Exchange::Other(0), FailureReason::NotForUs);
            return;
        }
        let header = match Header::parse(bytes) {
            Ok(h) => h,
            Err(e) => {
                let exchange = bytes
                    .get(18)
                    .map_or(Exchange::Other(0), |x| Exchange::from_number(*x));
                self.fail(remote, exchange, FailureReason::Malformed(e));
                return;
            }
        };
        let kind = Exchange::from_number(header.exchange);
        if header.exchange == exchange::AGGRESSIVE {
            self.fail(remote, kind, FailureReason::AggressiveModeRefused);
            return;
        }
        let endpoint = PeerEndpoint { local, remote };
        if header.responder_cookie == [0u8; 8] {
            if header.exchange != exchange::IDENTITY_PROTECTION {
                self.fail(remote, kind, FailureReason::UnknownCookies);
                return;
            }
            self.main_mode_first(now, endpoint, &header, bytes);
            return;
        }
        let Some(&id) = self
            .by_cookies
            .get(&(header.initiator_cookie, header.responder_cookie))
        else {
            self.fail(remote, kind, FailureReason::UnknownCookies);
            return;
        };
        match header.exchange {
            exchange::IDENTITY_PROTECTION => self.main_mode_next(now, id, endpoint, &header, bytes),
            exchange::QUICK_MODE => self.quick_mode(now, id, endpoint, &header, bytes),
            exchange::INFORMATIONAL => self.informational(now, id, endpoint, &header, bytes),
            _ => self.fail(remote, kind, FailureReason::UnsupportedExchange),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|sa| sa.deadline <= now)
            .map(|sa| sa.id)
            .collect();
        for id in expired {
            if let Some(sa) = self.sas.get(&id) {
                if sa.is_established() {
                    self.delete_ike_sa_because(id, DownReason::Expired);
                } else {
                    let remote = sa.endpoint.remote;
                    self.remove_ike_sa(id, DownReason::Expired);
                    self.fail(remote, Exchange::MainMode, FailureReason::HalfOpenTimeout);
                }
            }
        }
        let mut stale_quick = Vec::new();
        for sa in self.sas.values_mut() {
            let remote = sa.endpoint.remote;
            sa.quick.retain(|_, q| {
                if q.deadline > now {
                    return true;
                }
                if let Some(p) = q.pending.take() {
                    stale_quick.push((remote, p));
                }
                false
            });
        }
        for (remote, pending) in stale_quick {
            for spec in &pending.inbound {
                self.spis.release(spec.spi);
            }
            self.fail(remote, Exchange::QuickMode, FailureReason::QuickModeTimeout);
        }
        let dead: Vec<ChildId> = self
            .children
            .values()
            .filter(|c| c.expires.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for child in dead {
            self.delete_child_because(child, DownReason::Expired);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let sas = self.sas.values().flat_map(|sa| {
            std::iter::once(sa.deadline).chain(sa.quick.values().map(|q| q.deadline))
        });
        let children = self.children.values().filter_map(|c| c.expires);
        sas.chain(children).min()
    }

    pub fn ike_sas(&self) -> impl Iterator<Item = IkeSaView> + '_ {
        self.sas.values().map(|sa| IkeSaView {
            id: sa.id,
            cookie_i: sa.cookie_i,
            cookie_r: sa.cookie_r,
            peer: sa.endpoint,
            identity: sa.peer_identity.as_ref().map(|i| i.to_string()),
            state: sa.state,
            cipher: sa.choice.cipher,
            hash: sa.choice.hash,
            group: sa.choice.group,
            lifetime_seconds: sa.choice.lifetime_seconds,
            nat_traversal: sa.natt.is_some(),
            children: self.children.values().filter(|c| c.ike_sa == sa.id).count(),
            auth_method: sa.choice.auth,
            peer_certificate: sa.peer_certificate.clone(),
            local_certificate: sa.local_certificate.clone(),
        })
    }

    /// Child SAs currently installed: (child, IKE SA, proxy pair).
    pub fn child_sas(
        &self,
    ) -> impl Iterator<Item = (ChildId, IkeSaId, dataplane::sa::ProxyPair)> + '_ {
        self.children.values().map(|c| (c.id, c.ike_sa, c.proxy))
    }

    /// Drops and refusals by reason since start.
    pub fn drop_counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.drops
    }

    pub(super) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// One log line and one counted drop per failure, strongSwan style.
    pub(super) fn fail(&mut self, peer: SocketAddr, exchange: Exchange, reason: FailureReason) {
        tracing::warn!(peer = %peer, exchange = ?exchange, reason = %reason, "IKE failure");
        *self.drops.entry(reason.counter()).or_default() += 1;
        self.events.push_back(IkeEvent::Failure(IkeFailure {
            peer,
            exchange,
            reason,
        }));
    }

    pub(super) fn send(&mut self, endpoint: PeerEndpoint, message: &[u8]) {
        let mut bytes = Vec::with_capacity(message.len() + 4);
        if endpoint.local.port() == NATT_PORT {
            bytes.extend_from_slice(&[0, 0, 0, 0]);
        }
        bytes.extend_from_slice(message);
        self.transmits.push_back(Transmit {
            local: endpoint.local,
            remote: endpoint.remote,
            bytes,
        });
    }

    pub(super) fn remove_ike_sa(&mut self, id: IkeSaId, reason: DownReason) {
        let Some(sa) = self.sas.remove(&id) else {
            return;
        };
        self.by_cookies.remove(&(sa.cookie_i, sa.cookie_r));
        if self.by_initiator.get(&sa.cookie_i) == Some(&id) {
            self.by_initiator.remove(&sa.cookie_i);
        }
        for q in sa.quick.values() {
            if let Some(p) = &q.pending {
                for spec in &p.inbound {
                    self.spis.release(spec.spi);
                }
            }
        }
        if sa.is_established() {
            tracing::info!(peer = %sa.endpoint.remote, reason = ?reason, "IKE SA down");
            self.events.push_back(IkeEvent::IkeSaDown {
                ike_sa: id,
                peer: sa.endpoint,
                reason,
            });
        }
    }

    pub(super) fn remove_child(&mut self, child: ChildId, reason: DownReason) {
        let Some(c) = self.children.remove(&child) else {
            return;
        };
        for (_, spi) in &c.inbound_spis {
            self.spis.release(*spi);
        }
        tracing::info!(peer = %c.endpoint.remote, proxy_remote = %c.proxy.remote, proxy_local = %c.proxy.local, reason = ?reason, "child SA down");
        self.events
            .push_back(IkeEvent::ChildSaDown { child, reason });
    }

    /// Half-open counts (total, for this peer address) for the limits.
    pub(super) fn half_open(&self, peer: std::net::IpAddr) -> (usize, usize) {
        let open = self.sas.values().filter(|sa| !sa.is_established());
        let total = open.clone().count();
        let this_peer = open.filter(|sa| sa.endpoint.remote.ip() == peer).count();
        (total, this_peer)
    }
}
