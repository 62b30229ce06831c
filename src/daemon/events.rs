//! Tunnel and reverse-route events for a host that embeds dyntun: its own routing uses the
//! reverse routes. Derived by comparing the tunnel manager's view before and after the control
//! loop did something, so every path that changes state (IKE, lifetimes, clear, shutdown)
//! reports the same way without each having to remember to.

use std::net::SocketAddr;

use control::tunnels::TunnelView;
use dataplane::prefix::Prefix;
use dataplane::tables::TunnelId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayEventKind {
    TunnelUp,
    TunnelDown,
    RouteInsert,
    RouteWithdraw,
}

/// One change, with what the host needs to act on it (never any key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayEvent {
    pub kind: GatewayEventKind,
    pub tunnel: TunnelId,
    pub service_set: String,
    pub peer: SocketAddr,
    pub inside_interface: String,
    pub local_identity: Prefix,
    pub remote_identity: Prefix,
    /// The reverse route's table and prefix (route events, and tunnels that have one).
    pub route: Option<(String, Prefix)>,
}

pub type EventObserver = Box<dyn FnMut(&GatewayEvent) + Send>;

/// What was reported last, so that the next view yields only the differences.
#[derive(Default)]
pub struct EventTracker {
    /// Sorted by id, one entry per id.
    known: Vec<TunnelView>,
    /// The tunnel manager's change count `known` was taken at; `None` until there is one.
    seen_changes: Option<u64>,
}

impl EventTracker {
    /// [`EventTracker::update`] when `changes` (the tunnel manager's
    /// [`tunnel_changes`](control::tunnels::TunnelManager::tunnel_changes)) moved since the last
    /// call; otherwise nothing changed, and `tunnels` is not even asked for the view, which is
    /// what makes a control-loop turn cheap with many tunnels.
    pub fn update_if_changed(
        &mut self,
        changes: u64,
        tunnels: impl FnOnce() -> Vec<TunnelView>,
    ) -> Vec<GatewayEvent> {
        if self.seen_changes == Some(changes) {
            return Vec::new();
        }
        let events = self.update(tunnels());
        self.seen_changes = Some(changes);
        events
    }

    /// The events that turn the last reported state into `tunnels`, in the order a router
    /// wants them: withdrawals before removals, insertions after additions.
    pub fn update(&mut self, mut tunnels: Vec<TunnelView>) -> Vec<GatewayEvent> {
        // Cheap on the manager's view, which is in id order already; the lookups below then
        // are binary searches.
        tunnels.sort_by_key(|t| t.id);
        // Of two views of one id the later one counts.
        tunnels.dedup_by(|later, earlier| {
            let same = later.id == earlier.id;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let now = tunnels;
        let mut events = Vec::new();
        for old in &self.known {
            if let Some(new) = find(&now, old.id).filter(|new| same_tunnel(old, new)) {
                if old.reverse_route.is_some() && old.reverse_route != new.reverse_route {
                    events.push(event(GatewayEventKind::RouteWithdraw, old));
                }
                continue;
            }
            // Gone, or its id now names another tunnel.
            if old.reverse_route.is_some() {
                events.push(event(GatewayEventKind::RouteWithdraw, old));
            }
            events.push(event(GatewayEventKind::TunnelDown, old));
        }
        for new in &now {
            match find(&self.known, new.id) {
                Some(old) if same_tunnel(old, new) => {
                    if new.reverse_route.is_some() && old.reverse_route != new.reverse_route {
                        events.push(event(GatewayEventKind::RouteInsert, new));
                    }
                }
                _ => {
                    events.push(event(GatewayEventKind::TunnelUp, new));
                    if new.reverse_route.is_some() {
                        events.push(event(GatewayEventKind::RouteInsert, new));
                    }
                }
            }
        }
        self.known = now;
        // A caller that passes views itself says nothing about the manager's change count.
        self.seen_changes = None;
        events
    }
}

fn find(sorted: &[TunnelView], id: TunnelId) -> Option<&TunnelView> {
    sorted
        .binary_search_by_key(&id, |t| t.id)
        .ok()
        .map(|index| &sorted[index])
}

/// A tunnel id reused by another peer or proxy pair is another tunnel (a rekey keeps both).
fn same_tunnel(old: &TunnelView, new: &TunnelView) -> bool {
    old.peer == new.peer
        && old.service_set == new.service_set
        && old.source_address == new.source_address
        && old.destination_address == new.destination_address
}

fn event(kind: GatewayEventKind, tunnel: &TunnelView) -> GatewayEvent {
    GatewayEvent {
        kind,
        tunnel: tunnel.id,
        service_set: tunnel.service_set.clone(),
        peer: tunnel.peer,
        inside_interface: tunnel.inside_interface.clone(),
        local_identity: tunnel.source_address,
        remote_identity: tunnel.destination_address,
        route: tunnel
            .reverse_route
            .as_ref()
            .map(|r| (r.table.clone(), r.prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::tunnels::view::ReverseRouteView;
    use dataplane::tables::WorkerId;

    fn tunnel(id: u32, peer: &str, remote: &str, route: bool) -> TunnelView {
        let remote: Prefix = remote.parse().unwrap();
        TunnelView {
            id: TunnelId(id),
            service_set: "dynamic-set".into(),
            pic: "sp-1/2/0".into(),
            worker: WorkerId(0),
            local_gateway: "10.1.1.1".parse().unwrap(),
            peer: peer.parse().unwrap(),
            access_profile: "profile".into(),
            inside_interface: "sp-1/2/0.1".into(),
            rule: "junos-dynamic-rule-1".into(),
            term: "junos-dynamic-term-1".into(),
            rule_type: "dynamic",
            match_direction: "input",
            source_address: "172.16.1.0/24".parse().unwrap(),
            destination_address: remote,
            inbound_spis: vec![1],
            outbound_spis: vec![2],
            reverse_route: route.then(|| ReverseRouteView {
                table: "inet.0".into(),
                prefix: remote,
            }),
        }
    }

    fn kinds(events: &[GatewayEvent]) -> Vec<(GatewayEventKind, u32)> {
        events.iter().map(|e| (e.kind, e.tunnel.0)).collect()
    }

    #[test]
    fn up_then_down_reports_tunnel_and_route_in_router_order() {
        use GatewayEventKind::*;
        let mut tracker = EventTracker::default();
        let up = tracker.update(vec![tunnel(3, "10.3.3.3:4500", "172.16.3.0/24", true)]);
        assert_eq!(kinds(&up), vec![(TunnelUp, 3), (RouteInsert, 3)]);
        assert_eq!(
            up[1].route,
            Some(("inet.0".to_string(), "172.16.3.0/24".parse().unwrap()))
        );
        assert!(tracker
            .update(vec![tunnel(3, "10.3.3.3:4500", "172.16.3.0/24", true)])
            .is_empty());
        let down = tracker.update(Vec::new());
        assert_eq!(kinds(&down), vec![(RouteWithdraw, 3), (TunnelDown, 3)]);
    }

    #[test]
    fn an_unchanged_count_skips_the_view_and_a_new_one_compares_it() {
        use GatewayEventKind::*;
        let mut tracker = EventTracker::default();
        let mut asked = 0;
        let up = tracker.update_if_changed(5, || {
            asked += 1;
            vec![tunnel(2, "10.2.2.2:500", "172.16.2.0/24", true)]
        });
        assert_eq!(kinds(&up), vec![(TunnelUp, 2), (RouteInsert, 2)]);
        // The same count: the view is not built, even if it would differ (it cannot, from the
        // manager; here it proves the skip).
        let skipped = tracker.update_if_changed(5, || {
            asked += 1;
            Vec::new()
        });
        assert!(skipped.is_empty());
        assert_eq!(asked, 1);
        // A new count compares again, and an unchanged view yields nothing.
        let same = tracker.update_if_changed(6, || {
            asked += 1;
            vec![tunnel(2, "10.2.2.2:500", "172.16.2.0/24", true)]
        });
        assert!(same.is_empty());
        assert_eq!(asked, 2);
        let down = tracker.update_if_changed(7, Vec::new);
        assert_eq!(kinds(&down), vec![(RouteWithdraw, 2), (TunnelDown, 2)]);
        // A view passed directly forgets the count, so the next counted call compares.
        assert_eq!(
            kinds(&tracker.update(vec![tunnel(4, "10.4.4.4:500", "0.0.0.0/0", false)])),
            vec![(TunnelUp, 4)]
        );
        assert_eq!(
            kinds(&tracker.update_if_changed(7, Vec::new)),
            vec![(TunnelDown, 4)]
        );
    }

    #[test]
    fn views_in_any_order_compare_by_id() {
        use GatewayEventKind::*;
        let mut tracker = EventTracker::default();
        let up = tracker.update(vec![
            tunnel(9, "10.9.9.9:500", "0.0.0.0/0", false),
            tunnel(1, "10.1.1.9:500", "0.0.0.0/0", false),
        ]);
        assert_eq!(kinds(&up), vec![(TunnelUp, 1), (TunnelUp, 9)]);
        let moved = tracker.update(vec![
            tunnel(9, "10.9.9.9:500", "0.0.0.0/0", false),
            tunnel(5, "10.5.5.5:500", "0.0.0.0/0", false),
        ]);
        assert_eq!(kinds(&moved), vec![(TunnelDown, 1), (TunnelUp, 5)]);
    }

    #[test]
    fn a_tunnel_without_a_reverse_route_reports_no_route_and_a_reused_id_is_a_new_tunnel() {
        use GatewayEventKind::*;
        let mut tracker = EventTracker::default();
        let up = tracker.update(vec![tunnel(1, "10.2.2.2:500", "0.0.0.0/0", false)]);
        assert_eq!(kinds(&up), vec![(TunnelUp, 1)]);
        let moved = tracker.update(vec![tunnel(1, "10.9.9.9:500", "172.16.9.0/24", true)]);
        assert_eq!(
            kinds(&moved),
            vec![(TunnelDown, 1), (TunnelUp, 1), (RouteInsert, 1)]
        );
    }
}
