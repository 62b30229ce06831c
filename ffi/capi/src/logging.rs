//! dyntun's log lines (IKE failures, tunnels up and down; never keys) on the host's stderr.

use std::ffi::c_char;

use crate::status::{dyntun_status, fail, guard_status, text_argument};

/// Sends dyntun's log to stderr with a filter such as `"info"` or `"warn,dyntun_gateway=info"`
/// (NULL means `"info"`). Once per process; later calls change nothing and return DYNTUN_OK.
/// Optional: without it dyntun logs nothing. Any thread.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dyntun_log_init(filter: *const c_char) -> dyntun_status {
    guard_status(|| {
        let filter = if filter.is_null() {
            "info"
        } else {
            match text_argument(filter, "filter") {
                Ok(filter) => filter,
                Err(status) => return status,
            }
        };
        let filter = match tracing_subscriber::EnvFilter::try_new(filter) {
            Ok(filter) => filter,
            Err(e) => {
                return fail(
                    dyntun_status::DYNTUN_ERR_INVALID_ARGUMENT,
                    format!("log filter: {e}"),
                )
            }
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        dyntun_status::DYNTUN_OK
    })
}
