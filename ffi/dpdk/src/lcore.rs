//! Logical cores: which exist, which one we are on, running a closure on a worker lcore, and
//! registering a plain std thread with EAL so it may use per-lcore caches and rings.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{DpdkError, Result};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// The lcore id of the calling thread; `None` for threads EAL does not know.
pub fn current() -> Option<u32> {
    // SAFETY: reads a thread-local.
    let id = unsafe { dpdk_sys::dyntun_lcore_id() };
    (id != u32::MAX).then_some(id)
}

/// The lcore EAL runs `main` on (the control thread).
pub fn main_lcore() -> u32 {
    // SAFETY: plain query.
    unsafe { dpdk_sys::rte_get_main_lcore() }
}

/// Worker lcores (all enabled lcores except the main one), in ascending order.
pub fn workers() -> Vec<u32> {
    let mut ids = Vec::new();
    let mut id = u32::MAX;
    loop {
        // SAFETY: plain query; u32::MAX as the start means "from the first".
        id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
        if id >= dpdk_sys::RTE_MAX_LCORE {
            return ids;
        }
        ids.push(id);
    }
}

/// A closure running on a worker lcore; `wait` joins it, and so does dropping it (so a worker
/// loop must have a way to be told to stop before its handle is dropped).
#[derive(Debug)]
#[must_use = "a launched worker should be waited for"]
pub struct LaunchedWorker {
    lcore: u32,
    waited: bool,
}

extern "C" fn run_job(arg: *mut c_void) -> c_int {
    // SAFETY: `launch` passed a leaked Box<Job> and gives it to exactly one run.
    let job = unsafe { Box::from_raw(arg as *mut Job) };
    // Unwinding into C is undefined, so a panicking worker reports -1 instead.
    catch_unwind(AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `job` on worker `lcore` (pinned by EAL). Fails when the lcore is not an idle worker.
pub fn launch<F>(lcore: u32, job: F) -> Result<LaunchedWorker>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: run_job takes ownership of `arg` if and only if the launch succeeds.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(run_job), arg, lcore) };
    if ret < 0 {
        // SAFETY: not launched, so we still own the job.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::new("launch on", format!("lcore {lcore}"), ret));
    }
    Ok(LaunchedWorker {
        lcore,
        waited: false,
    })
}

impl LaunchedWorker {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Blocks until the closure returns; gives its return value (-1 if it panicked).
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        // SAFETY: the lcore was launched by us.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for LaunchedWorker {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: as in `wait`; joining keeps the lcore reusable.
            unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        }
    }
}

/// Makes the calling std thread an EAL thread with its own lcore id (outside the `-l` set), so
/// mempool caches and rte_lcore_id() work in it. Returns the assigned lcore id.
pub fn register_current_thread() -> Result<u32> {
    // SAFETY: plain call on the current thread.
    let ret = unsafe { dpdk_sys::rte_thread_register() };
    if ret < 0 {
        return Err(DpdkError::from_rte_errno("register thread", "current"));
    }
    current().ok_or_else(|| DpdkError::local("register thread", "current", 22, "no lcore id"))
}

/// Undoes [`register_current_thread`]; call before the thread ends.
pub fn unregister_current_thread() {
    // SAFETY: plain call on the current thread.
    unsafe { dpdk_sys::rte_thread_unregister() }
}

/// Current TSC value, and its rate in Hz (for timing without syscalls).
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter.
    unsafe { dpdk_sys::dyntun_tsc_cycles() }
}

pub fn tsc_hz() -> u64 {
    // SAFETY: plain query.
    unsafe { dpdk_sys::dyntun_tsc_hz() }
}
