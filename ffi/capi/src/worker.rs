//! A PIC worker in the host's hands: bursts of the host's mbufs in, per-port mbufs to transmit
//! out, on the host's lcore. Nothing here locks or allocates per packet.

use std::ffi::c_char;

use dataplane::pipeline::PipelineCounters;
use dataplane::tables::PortId;
use dpdk::sys::rte_mbuf;
use dpdk::Mbuf;
use dyntun_gateway::daemon::host_worker::HostWorker;

use crate::status::{dyntun_status, fail, guard, guard_status, owned_c_string};

/// The frame was queued for transmission: `dyntun_worker_take_tx` returns it (maybe rewritten,
/// e.g. encrypted) on its output port.
pub const DYNTUN_VERDICT_TRANSMIT: u8 = 0;
/// The control thread took the frame (IKE, ARP, ND, ICMP to the gateway).
pub const DYNTUN_VERDICT_PUNTED: u8 = 1;
/// Another worker took it (it owns the frame's SA); that worker's take_tx returns the result.
pub const DYNTUN_VERDICT_HANDED_OFF: u8 = 2;
/// Freed by dyntun; the reason is counted (`dyntun_worker_counters_json`, `drop_*`).
pub const DYNTUN_VERDICT_DROPPED: u8 = 3;
/// Split into fragments (inner packet too big for its tunnel, DF clear), processed in its place.
pub const DYNTUN_VERDICT_FRAGMENTED: u8 = 4;
/// Kept until the next hop's MAC is resolved; a later `dyntun_worker_poll` queues it for
/// transmission (or frees it, counted as `drop_no_neighbor`, if no answer comes in 3 s).
pub const DYNTUN_VERDICT_HELD: u8 = 5;

/// What one `dyntun_worker_rx` call did with the burst.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct dyntun_burst_result {
    /// Frames queued for transmission (fragments count one each).
    pub transmit: u32,
    /// Frames taken by the control thread or another worker, or held for their next hop's
    /// ARP/ND answer (`DYNTUN_VERDICT_HELD`).
    pub consumed: u32,
    /// Frames freed, each counted under its reason.
    pub dropped: u32,
}

/// A PIC worker the host drives. Opaque. Not thread-safe: one thread at a time (normally
/// one of the host's lcores, always the same); different workers on different threads.
#[allow(non_camel_case_types)]
pub struct dyntun_worker {
    inner: HostWorker,
}

impl dyntun_worker {
    pub fn boxed(inner: HostWorker) -> *mut dyntun_worker {
        Box::into_raw(Box::new(dyntun_worker { inner }))
    }
}

/// Processes `count` frames the host received on `port_id`. dyntun takes ownership of every
/// one of `pkts[0..count]` (whatever the status, unless DYNTUN_ERR_INVALID_ARGUMENT, in which
/// case none was taken): the host must not touch or free them afterwards. Each must be a
/// single-segment mbuf holding an Ethernet frame; dyntun sets its `port` field to `port_id`.
/// `verdicts` (NULL or `count` bytes) receives a
/// `DYNTUN_VERDICT_*` per frame; `result` (NULL allowed) the counts. Call
/// `dyntun_worker_take_tx` for each port afterwards. The worker's thread only.
///
/// # Safety
/// `worker` is a live worker; `pkts` holds `count` valid mbufs the caller owns; `verdicts`
/// and `result` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dyntun_worker_rx(
    worker: *mut dyntun_worker,
    port_id: u16,
    pkts: *mut *mut rte_mbuf,
    count: u16,
    verdicts: *mut u8,
    result: *mut dyntun_burst_result,
) -> dyntun_status {
    guard_status(|| {
        let Some(worker) = worker.as_mut() else {
            return fail(dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT, "worker is NULL");
        };
        if count == 0 {
            if let Some(result) = result.as_mut() {
                *result = dyntun_burst_result::default();
            }
            return dyntun_status::DYNTUN_OK;
        }
        if pkts.is_null() {
            return fail(dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT, "pkts is NULL");
        }
        let raw = std::slice::from_raw_parts(pkts, usize::from(count));
        if raw.iter().any(|p| p.is_null()) {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "pkts holds a NULL mbuf",
            );
        }
        let verdicts = if verdicts.is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts_mut(verdicts, usize::from(count)))
        };
        let frames = HandedOver { raw, next: 0 };
        let outcome = worker.inner.receive(PortId(port_id), frames, verdicts);
        if let Some(result) = result.as_mut() {
            *result = dyntun_burst_result {
                transmit: outcome.transmit,
                consumed: outcome.consumed,
                dropped: outcome.dropped,
            };
        }
        dyntun_status::DYNTUN_OK
    })
}

/// The host's mbufs, each wrapped as it is taken; whatever was not taken when this is dropped
/// (a panic inside the worker unwinds through it) is freed, so no mbuf is ever leaked.
struct HandedOver<'a> {
    raw: &'a [*mut rte_mbuf],
    next: usize,
}

impl Iterator for HandedOver<'_> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        let raw = *self.raw.get(self.next)?;
        self.next += 1;
        // SAFETY: the caller handed over every mbuf in `raw` (checked non-NULL); `next` moves
        // past each one as it is wrapped, so each is taken exactly once.
        Some(unsafe { Mbuf::from_raw(raw) })
    }
}

impl Drop for HandedOver<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

/// Housekeeping the worker needs even without traffic: applies the control thread's table
/// updates (SAs, rules, routes), processes frames other workers handed over, queues the control
/// thread's frames (worker 0), reports counters. Call it every loop turn (it is cheap when
/// idle). Returns 1 if there was work, 0 if not. The worker's thread only.
///
/// # Safety
/// `worker` is a live worker.
#[no_mangle]
pub unsafe extern "C" fn dyntun_worker_poll(worker: *mut dyntun_worker) -> i32 {
    guard(0, || match worker.as_mut() {
        Some(worker) => i32::from(worker.inner.poll()),
        None => 0,
    })
}

/// Moves up to `max` frames waiting to leave on `port_id` into `out` and returns how many.
/// The host owns them from then on: it transmits them (e.g. `rte_eth_tx_burst`) and frees
/// what the queue did not take. At most 4096 frames wait per port; more are dropped and
/// counted as `drop_tx_full`. The worker's thread only.
///
/// # Safety
/// `worker` is a live worker; `out` has room for `max` pointers.
#[no_mangle]
pub unsafe extern "C" fn dyntun_worker_take_tx(
    worker: *mut dyntun_worker,
    port_id: u16,
    out: *mut *mut rte_mbuf,
    max: u16,
) -> u16 {
    guard(0, || {
        let Some(worker) = worker.as_mut() else {
            return 0;
        };
        if out.is_null() || max == 0 {
            return 0;
        }
        let out = std::slice::from_raw_parts_mut(out, usize::from(max));
        worker.inner.take_tx(PortId(port_id), out) as u16
    })
}

/// The worker's counters as JSON (`rx_packets`, `tx_packets`, `encrypted`, `decrypted`,
/// `punted`, and every drop by its reason, `drop_*`), freed with `dyntun_string_free`. The
/// worker's thread only; any other thread reads them with
/// `dyntun_gateway_worker_counters_json` while the worker runs.
///
/// # Safety
/// `worker` is a live worker; `json_out` writable.
#[no_mangle]
pub unsafe extern "C" fn dyntun_worker_counters_json(
    worker: *const dyntun_worker,
    json_out: *mut *mut c_char,
) -> dyntun_status {
    guard_status(|| {
        let (Some(worker), false) = (worker.as_ref(), json_out.is_null()) else {
            return fail(
                dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                "worker or json_out is NULL",
            );
        };
        *json_out = owned_c_string(counters_json(worker.inner.counters()));
        dyntun_status::DYNTUN_OK
    })
}

/// Frees the worker and every frame it still holds. NULL is ignored. Before `rte_eal_cleanup`;
/// the worker's thread, or any thread once it no longer drives the worker.
///
/// # Safety
/// `worker` is NULL or a live worker nobody uses any more.
#[no_mangle]
pub unsafe extern "C" fn dyntun_worker_free(worker: *mut dyntun_worker) {
    guard((), || {
        if !worker.is_null() {
            drop(Box::from_raw(worker));
        }
    })
}

/// Flat `{"name": value, …}` of every pipeline counter.
pub(crate) fn counters_json(counters: &PipelineCounters) -> String {
    let snapshot = counters.snapshot();
    let mut text = String::from("{");
    for (index, (name, value)) in snapshot.fields().iter().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!("\"{name}\": {value}"));
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyntun_gateway::daemon::host_worker::Verdict;

    #[test]
    fn verdict_constants_are_the_worker_verdicts() {
        assert_eq!(DYNTUN_VERDICT_TRANSMIT, Verdict::Transmit as u8);
        assert_eq!(DYNTUN_VERDICT_PUNTED, Verdict::Punted as u8);
        assert_eq!(DYNTUN_VERDICT_HANDED_OFF, Verdict::HandedOff as u8);
        assert_eq!(DYNTUN_VERDICT_DROPPED, Verdict::Dropped as u8);
        assert_eq!(DYNTUN_VERDICT_FRAGMENTED, Verdict::Fragmented as u8);
        assert_eq!(DYNTUN_VERDICT_HELD, Verdict::Held as u8);
    }
}
