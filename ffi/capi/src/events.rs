//! Tunnel and reverse-route events, delivered to the host's callback on the control thread.

use std::ffi::{c_char, c_void, CString};

use dyntun_gateway::daemon::events::{GatewayEvent, GatewayEventKind};

#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum dyntun_event_kind {
    /// A dynamic tunnel was installed (its rule and SAs are in the workers).
    DYNTUN_EVENT_TUNNEL_UP = 0,
    /// A dynamic tunnel was removed (delete, expiry, operator clear, shutdown).
    DYNTUN_EVENT_TUNNEL_DOWN = 1,
    /// A reverse route (preference 1) for the remote network was inserted into `route_table`.
    DYNTUN_EVENT_ROUTE_INSERT = 2,
    /// That reverse route was withdrawn.
    DYNTUN_EVENT_ROUTE_WITHDRAW = 3,
}

/// One event. Every string is NUL-terminated and valid only during the callback: copy what
/// you keep. Keys are never part of an event.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct dyntun_event {
    pub kind: dyntun_event_kind,
    /// Tunnel index, as `tunnel_index` in `show … --json` (an index may be reused later).
    pub tunnel_id: u32,
    pub service_set: *const c_char,
    /// The peer's address (`10.3.3.3`) and UDP port (500, or 4500 with NAT-T).
    pub remote_gateway: *const c_char,
    pub remote_port: u16,
    /// The services interface unit the tunnel uses (`sp-1/2/0.1`).
    pub inside_interface: *const c_char,
    /// The proxy identities: our side and the peer's side (`172.16.1.0/24`).
    pub local_identity: *const c_char,
    pub remote_identity: *const c_char,
    /// The reverse route's routing table (`inet.0`, `vrf-a.inet.0`) and prefix; NULL when the
    /// tunnel has no reverse route (e.g. a 0.0.0.0/0 remote identity).
    pub route_table: *const c_char,
    pub route_prefix: *const c_char,
}

/// Called on dyntun's control thread for every event, in order: for a tunnel going down the
/// route withdrawal comes first, for one coming up the insertion comes after. It must return
/// quickly and must not call any `dyntun_gateway_*` function.
#[allow(non_camel_case_types)]
pub type dyntun_event_callback =
    Option<unsafe extern "C" fn(event: *const dyntun_event, user_data: *mut c_void)>;

/// The host's callback and its context pointer, which the host promised may be used from the
/// control thread.
pub struct HostCallback {
    pub callback: unsafe extern "C" fn(*const dyntun_event, *mut c_void),
    pub user_data: *mut c_void,
}

// SAFETY: the header's contract for dyntun_gateway_set_event_callback: the callback and its
// user_data are used from the control thread, which the host accepts by registering them.
unsafe impl Send for HostCallback {}

impl HostCallback {
    pub fn deliver(&self, event: &GatewayEvent) {
        let kind = match event.kind {
            GatewayEventKind::TunnelUp => dyntun_event_kind::DYNTUN_EVENT_TUNNEL_UP,
            GatewayEventKind::TunnelDown => dyntun_event_kind::DYNTUN_EVENT_TUNNEL_DOWN,
            GatewayEventKind::RouteInsert => dyntun_event_kind::DYNTUN_EVENT_ROUTE_INSERT,
            GatewayEventKind::RouteWithdraw => dyntun_event_kind::DYNTUN_EVENT_ROUTE_WITHDRAW,
        };
        let text = |s: String| CString::new(s).unwrap_or_default();
        let service_set = text(event.service_set.clone());
        let remote = text(event.peer.ip().to_string());
        let inside = text(event.inside_interface.clone());
        let local_identity = text(event.local_identity.to_string());
        let remote_identity = text(event.remote_identity.to_string());
        let route = event
            .route
            .as_ref()
            .map(|(table, prefix)| (text(table.clone()), text(prefix.to_string())));
        let c_event = dyntun_event {
            kind,
            tunnel_id: event.tunnel.0,
            service_set: service_set.as_ptr(),
            remote_gateway: remote.as_ptr(),
            remote_port: event.peer.port(),
            inside_interface: inside.as_ptr(),
            local_identity: local_identity.as_ptr(),
            remote_identity: remote_identity.as_ptr(),
            route_table: route
                .as_ref()
                .map_or(std::ptr::null(), |(table, _)| table.as_ptr()),
            route_prefix: route
                .as_ref()
                .map_or(std::ptr::null(), |(_, prefix)| prefix.as_ptr()),
        };
        // SAFETY: the host registered a valid function; every pointer lives until it returns.
        unsafe { (self.callback)(&c_event, self.user_data) };
    }
}
