//! One error type for every DPDK call that can fail: what was attempted, on which device or
//! object, and DPDK's own reason (`rte_strerror`), so a failure reads as a single clear line.

use std::ffi::CStr;

/// A failed DPDK operation. Displays as `"<operation> <subject>: <reason> (errno <n>)"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {subject}: {reason} (errno {errno})")]
pub struct DpdkError {
    /// What was attempted, e.g. "probe device" or "configure port".
    pub operation: &'static str,
    /// The device, port, pool or ring it was attempted on.
    pub subject: String,
    /// DPDK's explanation of `errno`.
    pub reason: String,
    /// The (positive) errno value DPDK reported.
    pub errno: i32,
}

/// The error `Eal::init` returns; the same shape as every other failure.
pub type EalError = DpdkError;

pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    pub(crate) fn new(operation: &'static str, subject: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        DpdkError {
            operation,
            subject: subject.into(),
            reason: strerror(errno),
            errno,
        }
    }

    /// An error whose errno DPDK left in the per-thread `rte_errno`.
    pub(crate) fn from_rte_errno(operation: &'static str, subject: impl Into<String>) -> Self {
        // SAFETY: reads a thread-local integer.
        let errno = unsafe { dpdk_sys::dyntun_errno() };
        Self::new(operation, subject, errno)
    }

    /// An error for a condition our layer detects itself, with our own reason text.
    pub(crate) fn local(
        operation: &'static str,
        subject: impl Into<String>,
        errno: i32,
        reason: &str,
    ) -> Self {
        DpdkError {
            operation,
            subject: subject.into(),
            reason: reason.to_owned(),
            errno,
        }
    }
}

/// DPDK's text for an errno value, covering its own codes (E_RTE_SECONDARY, ...) and libc's.
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe {
        let text = dpdk_sys::rte_strerror(errno);
        if text.is_null() {
            return format!("unknown error {errno}");
        }
        CStr::from_ptr(text).to_string_lossy().into_owned()
    }
}

/// Turns DPDK's "negative errno on failure" return convention into a `Result`.
pub(crate) fn check(
    ret: i32,
    operation: &'static str,
    subject: impl FnOnce() -> String,
) -> Result<i32> {
    if ret < 0 {
        Err(DpdkError::new(operation, subject(), ret))
    } else {
        Ok(ret)
    }
}
