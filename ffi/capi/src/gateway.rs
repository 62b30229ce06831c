//! The gateway handle: create from configuration text, bind interfaces to the host's ports,
//! start and stop the control thread, ask operational questions, free.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use dataplane::pipeline::PipelineCounters;

use ::dyntun_gateway::daemon::embedded::{EmbeddedGateway, EmbeddedOptions};

use crate::events::{dyntun_event_callback, HostCallback};
use crate::status::{dyntun_status, fail, guard, guard_status, owned_c_string, text_argument};
use crate::worker::dyntun_worker;

/// A configured interface and the host's DPDK port behind it.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct dyntun_port_binding {
    /// The physical interface as configured (`ge-0/0/0`).
    pub interface: *const c_char,
    /// The host's port id (`rte_eth_dev` port), configured and started by the host.
    pub port_id: u16,
}

/// One dyntun gateway. Opaque; every function on it may be called from any thread (calls are
/// serialised inside), but never from the event callback.
#[allow(non_camel_case_types)]
pub struct dyntun_gateway {
    inner: Mutex<EmbeddedGateway>,
    /// Each worker's counters, outside the lock: reading them never waits for a `stop` or a
    /// `show` that holds it.
    worker_counters: Vec<Arc<PipelineCounters>>,
}

impl dyntun_gateway {
    fn with<T>(&self, body: impl FnOnce(&mut EmbeddedGateway) -> T) -> T {
        // A panic while the lock was held poisons it; the state is still consistent enough to
        // stop and free, which is all a host does after a DYNTUN_ERR_PANIC.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        body(&mut inner)
    }
}

/// Creates a gateway from Junos configuration text (curly-brace or `set` form, with a
/// `dataplane { pic NAME { cores [ … ]; } }` hierarchy: the number of cores of each services
/// PIC is the number of workers the host will drive; the cores themselves and any
/// `dataplane interface … device` entries are ignored, the host's bindings replace them).
///
/// - `config_text`: NUL-terminated; copied, the host keeps ownership.
/// - `config_name`: names the text in error messages; NULL means "config".
/// - `ports`/`port_count`: one binding per configured physical interface dyntun uses; the
///   ports must be configured and started by the host, with a tx queue the host uses for what
///   `dyntun_worker_take_tx` returns.
/// - `socket_path`: NULL, or a Unix socket path where `dyntun show …` can ask this gateway.
/// - `gateway_out`: receives the gateway, which the host frees with `dyntun_gateway_free`.
///
/// The EAL must be initialised. Call from a thread that may use DPDK (an EAL thread or one
/// registered with `rte_thread_register`). On failure `dyntun_last_error()` holds the reason
/// (the commit-check messages for DYNTUN_ERR_CONFIG) and nothing is left allocated but, if
/// the failure came late, dyntun's mempool (DPDK pools live until `rte_eal_cleanup`).
///
/// # Safety
/// Pointers are NULL or valid for the call; `ports` points to `port_count` bindings.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_create(
    config_text: *const c_char,
    config_name: *const c_char,
    ports: *const dyntun_port_binding,
    port_count: usize,
    socket_path: *const c_char,
    gateway_out: *mut *mut dyntun_gateway,
) -> dyntun_status {
    guard_status(|| {
        if gateway_out.is_null() {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway_out is NULL",
            );
        }
        *gateway_out = std::ptr::null_mut();
        let text = match text_argument(config_text, "config_text") {
            Ok(text) => text,
            Err(status) => return status,
        };
        let name = if config_name.is_null() {
            "config"
        } else {
            match text_argument(config_name, "config_name") {
                Ok(name) => name,
                Err(status) => return status,
            }
        };
        if ports.is_null() && port_count > 0 {
            return fail(dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT, "ports is NULL");
        }
        let mut bindings = Vec::with_capacity(port_count);
        for index in 0..port_count {
            let binding = &*ports.add(index);
            match text_argument(binding.interface, "port binding interface") {
                Ok(interface) => bindings.push((interface.to_string(), binding.port_id)),
                Err(status) => return status,
            }
        }
        let socket = if socket_path.is_null() {
            None
        } else {
            match text_argument(socket_path, "socket_path") {
                Ok(path) => Some(std::path::PathBuf::from(path)),
                Err(status) => return status,
            }
        };
        // A configuration that fails the commit check is the only error whose text starts
        // with the configuration's name.
        if let Err(errors) = ::dyntun_gateway::daemon::embedded::check_config(text, name) {
            return fail(dyntun_status::DYNTUN_ERR_CONFIG, errors);
        }
        let options = EmbeddedOptions {
            config_text: text.to_string(),
            config_name: name.to_string(),
            ports: bindings,
            socket,
        };
        match EmbeddedGateway::create(options) {
            Ok(gateway) => {
                let worker_counters = (0..gateway.worker_count())
                    .filter_map(|index| gateway.worker_counters(index))
                    .collect();
                *gateway_out = Box::into_raw(Box::new(dyntun_gateway {
                    inner: Mutex::new(gateway),
                    worker_counters,
                }));
                dyntun_status::DYNTUN_OK
            }
            Err(message) => fail(dyntun_status::DYNTUN_ERR_RESOURCE, message),
        }
    })
}

/// How many PIC workers the gateway has (the sum of the configured PICs' cores). Each must be
/// taken with `dyntun_gateway_take_worker` and driven by the host. Any thread.
///
/// # Safety
/// `gateway` is NULL (0 is returned) or a live gateway.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_worker_count(gateway: *const dyntun_gateway) -> usize {
    guard(0, || match gateway.as_ref() {
        Some(gateway) => gateway.with(|g| g.worker_count()),
        None => 0,
    })
}

/// Hands worker `index` (0 ≤ index < worker count) to the host, once per index. Worker 0 also
/// carries the control thread's frames (IKE, ARP, ND, ICMP replies): the host must drive it.
/// The worker is then the host's: one thread at a time drives it, and the host frees it with
/// `dyntun_worker_free` before `rte_eal_cleanup`. Any thread.
///
/// # Safety
/// `gateway` is a live gateway; `worker_out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_take_worker(
    gateway: *mut dyntun_gateway,
    index: usize,
    worker_out: *mut *mut dyntun_worker,
) -> dyntun_status {
    guard_status(|| {
        let (Some(gateway), false) = (gateway.as_ref(), worker_out.is_null()) else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway or worker_out is NULL",
            );
        };
        *worker_out = std::ptr::null_mut();
        let count = gateway.with(|g| g.worker_count());
        if index >= count {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                format!("worker {index} does not exist (the gateway has {count})"),
            );
        }
        match gateway.with(|g| g.take_worker(index)) {
            Some(worker) => {
                *worker_out = dyntun_worker::boxed(worker);
                dyntun_status::DYNTUN_OK
            }
            None => fail(
                dyntun_status::DYNTUN_ERR_STATE,
                format!("worker {index} was already taken"),
            ),
        }
    })
}

/// Worker `index`'s counters as JSON (as `dyntun_worker_counters_json`), freed with
/// `dyntun_string_free`. Any thread, whether or not the worker was taken or is running: the
/// counters are atomics the worker updates, read without stopping it.
///
/// # Safety
/// `gateway` is a live gateway; `json_out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_worker_counters_json(
    gateway: *const dyntun_gateway,
    index: usize,
    json_out: *mut *mut c_char,
) -> dyntun_status {
    guard_status(|| {
        let (Some(gateway), false) = (gateway.as_ref(), json_out.is_null()) else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway or json_out is NULL",
            );
        };
        *json_out = std::ptr::null_mut();
        match gateway.worker_counters.get(index) {
            Some(counters) => {
                *json_out = owned_c_string(crate::worker::counters_json(counters));
                dyntun_status::DYNTUN_OK
            }
            None => fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                format!("worker {index} does not exist"),
            ),
        }
    })
}

/// Registers the callback for tunnel up/down and reverse-route insert/withdraw events; only
/// before `dyntun_gateway_start`. It is called on dyntun's control thread with `user_data`;
/// tunnels already up are reported at registration (on the calling thread). Any thread.
///
/// # Safety
/// `gateway` is a live gateway; `callback` and `user_data` stay valid until the gateway is
/// freed.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_set_event_callback(
    gateway: *mut dyntun_gateway,
    callback: dyntun_event_callback,
    user_data: *mut c_void,
) -> dyntun_status {
    guard_status(|| {
        let (Some(gateway), Some(callback)) = (gateway.as_ref(), callback) else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway or callback is NULL",
            );
        };
        let host = HostCallback {
            callback,
            user_data,
        };
        let observer = Box::new(
            move |event: &::dyntun_gateway::daemon::events::GatewayEvent| {
                // A panic must not unwind through the control loop's caller into C either.
                guard((), || host.deliver(event));
            },
        );
        match gateway.with(|g| g.observe(observer)) {
            Ok(()) => dyntun_status::DYNTUN_OK,
            Err(message) => fail(dyntun_status::DYNTUN_ERR_STATE, message),
        }
    })
}

/// Starts the control thread (IKE responders, tunnel manager, ARP/ND, the operational socket).
/// Once. Any thread.
///
/// # Safety
/// `gateway` is a live gateway.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_start(gateway: *mut dyntun_gateway) -> dyntun_status {
    guard_status(|| {
        let Some(gateway) = gateway.as_ref() else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway is NULL",
            );
        };
        match gateway.with(EmbeddedGateway::start) {
            Ok(()) => dyntun_status::DYNTUN_OK,
            Err(message) => fail(dyntun_status::DYNTUN_ERR_STATE, message),
        }
    })
}

/// Asks the control thread to delete every tunnel, telling each peer, and to stop; returns at
/// once. The deletes leave through worker 0: keep driving it (rx, poll, take_tx) until
/// `dyntun_gateway_is_stopped` says so. Any thread.
///
/// # Safety
/// `gateway` is a live gateway.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_request_stop(
    gateway: *mut dyntun_gateway,
) -> dyntun_status {
    guard_status(|| {
        let Some(gateway) = gateway.as_ref() else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway is NULL",
            );
        };
        gateway.with(|g| g.request_stop());
        dyntun_status::DYNTUN_OK
    })
}

/// 1 when the control thread has finished (or was never started), else 0. Any thread.
///
/// # Safety
/// `gateway` is NULL (1) or a live gateway.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_is_stopped(gateway: *const dyntun_gateway) -> i32 {
    guard(1, || match gateway.as_ref() {
        Some(gateway) => i32::from(gateway.with(|g| g.is_stopped())),
        None => 1,
    })
}

/// Stops the control thread and waits for it (at most about a second more when nobody drives
/// worker 0: the deletes are then dropped). Any thread but the one driving worker 0 if the
/// deletes should reach the peers.
///
/// # Safety
/// `gateway` is a live gateway.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_stop(gateway: *mut dyntun_gateway) -> dyntun_status {
    guard_status(|| {
        let Some(gateway) = gateway.as_ref() else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway is NULL",
            );
        };
        match gateway.with(EmbeddedGateway::stop) {
            Ok(()) => dyntun_status::DYNTUN_OK,
            Err(message) => fail(dyntun_status::DYNTUN_ERR_PANIC, message),
        }
    })
}

/// Answers an operational command exactly as `dyntun show … --json` does, e.g.
/// `"show services ipsec-vpn ipsec security-associations"`, `"show route"`,
/// `"show dataplane statistics"`, or `"clear services ipsec-vpn ike security-associations"`.
/// `*json_out` receives a NUL-terminated string the host frees with `dyntun_string_free`.
/// While the control thread runs the question is answered there (waiting at most 10 s). Any
/// thread, never the event callback.
///
/// # Safety
/// `gateway` is a live gateway; `command` a NUL-terminated string; `json_out` writable.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_show_json(
    gateway: *mut dyntun_gateway,
    command: *const c_char,
    json_out: *mut *mut c_char,
) -> dyntun_status {
    guard_status(|| {
        let (Some(gateway), false) = (gateway.as_ref(), json_out.is_null()) else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "gateway or json_out is NULL",
            );
        };
        *json_out = std::ptr::null_mut();
        let command = match text_argument(command, "command") {
            Ok(command) => command,
            Err(status) => return status,
        };
        match gateway.with(|g| g.ask(command, true)) {
            Ok(answer) if answer.starts_with("error:") => fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                answer.trim_end(),
            ),
            Ok(answer) => {
                *json_out = owned_c_string(answer);
                dyntun_status::DYNTUN_OK
            }
            Err(message) => fail(dyntun_status::DYNTUN_ERR_TIMEOUT, message),
        }
    })
}

/// Stops the control thread if it runs (as `dyntun_gateway_stop`) and frees the gateway: its
/// rings, tables and the operational socket. Workers already taken stay valid until
/// `dyntun_worker_free` but carry no more traffic worth having. NULL is ignored. Call before
/// `rte_eal_cleanup`, from a thread that may use DPDK.
///
/// # Safety
/// `gateway` is NULL or a live gateway that no other thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn dyntun_gateway_free(gateway: *mut dyntun_gateway) {
    guard((), || {
        if !gateway.is_null() {
            drop(Box::from_raw(gateway));
        }
    })
}
