//! Status codes, the per-thread last error message, and the guard every exported function runs
//! its body in, so that no panic ever unwinds into the host's C code.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a dyntun function returns. Anything but `DYNTUN_OK` leaves a message that
/// `dyntun_last_error()` returns on the same thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum dyntun_status {
    DYNTUN_OK = 0,
    /// A NULL pointer, bad UTF-8, an index out of range.
    DYNTUN_ERR_INVALID_ARGUMENT = 1,
    /// The configuration text failed the commit check; the message holds every error as
    /// `NAME:LINE:COL: error: PATH: WHAT`, one per line.
    DYNTUN_ERR_CONFIG = 2,
    /// The call does not fit the gateway's state (started twice, worker already taken, …).
    DYNTUN_ERR_STATE = 3,
    /// A DPDK or operating-system resource could not be had (ports, rings, pools, threads).
    DYNTUN_ERR_RESOURCE = 4,
    /// The control thread did not answer in time.
    DYNTUN_ERR_TIMEOUT = 5,
    /// A bug inside dyntun: a panic was caught at the boundary; the message says where.
    DYNTUN_ERR_PANIC = 6,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub fn set_last_error(message: &str) {
    // Interior NULs cannot travel in a C string; they become spaces.
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

/// Records `message` and returns `status`.
pub fn fail(status: dyntun_status, message: impl AsRef<str>) -> dyntun_status {
    set_last_error(message.as_ref());
    status
}

/// Runs `body`; a panic becomes `on_panic` and a message naming it.
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            set_last_error(&format!("internal error (panic caught): {what}"));
            on_panic
        }
    }
}

/// Runs `body`, which returns a status, turning a panic into `DYNTUN_ERR_PANIC`.
pub fn guard_status(body: impl FnOnce() -> dyntun_status) -> dyntun_status {
    guard(dyntun_status::DYNTUN_ERR_PANIC, body)
}

/// The message of the last failed call on this thread ("" if none). The pointer stays valid
/// until the next dyntun call on this thread; copy it to keep it. Any thread.
#[no_mangle]
pub extern "C" fn dyntun_last_error() -> *const c_char {
    guard(std::ptr::null(), || {
        LAST_ERROR.with(|slot| slot.borrow().as_ptr())
    })
}

/// Reads a C string argument.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string valid for the call.
pub unsafe fn text_argument<'a>(text: *const c_char, what: &str) -> Result<&'a str, dyntun_status> {
    if text.is_null() {
        return Err(fail(
            dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
            format!("{what} is NULL"),
        ));
    }
    std::ffi::CStr::from_ptr(text).to_str().map_err(|_| {
        fail(
            dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
            format!("{what} is not UTF-8"),
        )
    })
}

/// A string the host frees with `dyntun_string_free`.
pub fn owned_c_string(text: String) -> *mut c_char {
    CString::new(text.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// Frees a string dyntun returned (`dyntun_gateway_show_json`, `dyntun_worker_counters_json`).
/// NULL is ignored. Any thread.
///
/// # Safety
/// `text` is NULL or came from dyntun and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn dyntun_string_free(text: *mut c_char) {
    guard((), || {
        if !text.is_null() {
            drop(CString::from_raw(text));
        }
    })
}
