//! Tunnel and reverse-route events for a host that embeds dyntun: its own routing uses the
//! reverse routes. Derived by comparing the tunnel manager's view before and after the control
//! loop did something, so every path that changes state (IKE, lifetimes, clear, shutdown)
//! reports the same way without each having to remember to.

use std::collections::BTreeMap;
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
    known: BTreeMap<TunnelId, TunnelView>,
}

impl EventTracker {
    /// The events that turn the last reported state into `tunnels`, in the order a router
    /// wants them: withdrawals before removals, insertions after additions.
    pub fn update(&mut self, tunnels: Vec<TunnelView>) -> Vec<GatewayEvent> {
        let now: BTreeMap<TunnelId, TunnelView> = tunnels.into_iter().map(|t| (t.id, t)).collect();
        let mut events = Vec::new();
        for (id, old) in &self.known {
            let replaced = now.get(id).is_some_and(|new| !same_tunnel(old, new));
            if !now.contains_key(id) || replaced {
                if old.reverse_route.is_some() {
                    events.push(event(GatewayEventKind::RouteWithdraw, old));
                }
                events.push(event(GatewayEventKind::TunnelDown, old));
            } else if let Some(new) = now.get(id) {
                if old.reverse_route.is_some() && old.reverse_route != new.reverse_route {
                    events.push(event(GatewayEventKind::RouteWithdraw, old));
                }
            }
        }
        for (id, new) in &now {
            match self.known.get(id) {
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
        events
    }
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
