//! The Environment Abstraction Layer: initialised once per process, cleaned up once.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::error::{DpdkError, EalError};
use crate::port::{device_name, Port};

const EINVAL: i32 = 22;
const EALREADY: i32 = 114;

static INIT_ATTEMPTED: AtomicBool = AtomicBool::new(false);
static GLOBAL: OnceLock<Result<Eal, EalError>> = OnceLock::new();

/// Proof that the EAL is initialised. Every other type in this crate assumes one exists.
///
/// Dropping it calls `rte_eal_cleanup` (after which DPDK cannot be used again in this process)
/// and removes the runtime directory of a file prefix this crate generated.
#[derive(Debug)]
pub struct Eal {
    generated_runtime_dir: Option<PathBuf>,
    cleaned_up: bool,
}

impl Eal {
    /// Initialises DPDK with EAL arguments, without the program name (e.g.
    /// `["-l", "0-1", "--no-huge", "-m", "256", "--vdev=net_null0"]`).
    ///
    /// Every Ethernet `--vdev` must attach: EAL itself would only log a failure and start without
    /// the port, so one that is missing afterwards turns into an error naming the devargs and
    /// DPDK's reason (and EAL is cleaned up again).
    ///
    /// Only the first call in a process reaches DPDK; later calls fail with `EALREADY`, because
    /// DPDK cannot always be initialised again after a failed or finished attempt.
    /// Without `--file-prefix` one unique to this process is added, so parallel processes never
    /// share a runtime directory; it is removed again on cleanup (with `--no-shconf`, right after
    /// start-up, since it stays empty).
    pub fn init<I, S>(args: I) -> Result<Eal, EalError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let summary = args.join(" ");
        if INIT_ATTEMPTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::local(
                "initialise EAL",
                summary,
                EALREADY,
                "EAL was already initialised (or tried) in this process",
            ));
        }
        let generated_prefix = !args.iter().any(|a| a.starts_with("--file-prefix"));
        if generated_prefix {
            args.push(format!("--file-prefix=dyntun-{}", std::process::id()));
        }

        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("dyntun").expect("no NUL in a literal"));
        for arg in &args {
            match CString::new(arg.as_str()) {
                Ok(c) => owned.push(c),
                Err(_) => {
                    return Err(DpdkError::local(
                        "initialise EAL",
                        summary,
                        EINVAL,
                        "an argument contains a NUL byte",
                    ))
                }
            }
        }
        // EAL keeps pointers into argv for the life of the process, so the strings are leaked on
        // purpose; this happens once per process.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .iter()
                .map(|c| c.as_ptr() as *mut c_char)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );

        // SAFETY: argv points to `owned.len()` valid NUL-terminated strings that are never freed.
        let ret = unsafe { dpdk_sys::rte_eal_init(owned.len() as c_int, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = DpdkError::from_rte_errno("initialise EAL with", summary);
            if generated_prefix {
                if let Some(dir) = runtime_dir() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            return Err(err);
        }
        let mut generated_runtime_dir = generated_prefix.then(runtime_dir).flatten();
        if let Err(err) = attach_ethernet_vdevs(&args) {
            drop(Eal {
                generated_runtime_dir,
                cleaned_up: false,
            });
            return Err(err);
        }
        if args.iter().any(|a| a == "--no-shconf") {
            // Without shared config (and telemetry) nothing is written there, so an empty
            // directory can go now and is not left behind by processes that never drop their
            // `Eal` (test binaries); otherwise it goes at cleanup.
            if let Some(dir) = &generated_runtime_dir {
                if std::fs::remove_dir(dir).is_ok() {
                    generated_runtime_dir = None;
                }
            }
        }
        Ok(Eal {
            generated_runtime_dir,
            cleaned_up: false,
        })
    }

    /// The process-wide EAL, initialised with `args` by the first caller; later callers get the
    /// same instance (or the same error) whatever their arguments. Meant for test binaries,
    /// where several tests and modules share one process. It is never cleaned up.
    pub fn init_global<I, S>(args: I) -> Result<&'static Eal, EalError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        GLOBAL
            .get_or_init(|| Eal::init(args))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// [`init_global`](Self::init_global) with what a test on virtual devices needs: one
    /// lcore, `--no-huge` with `memory_mb` of ordinary memory, no PCI scan, telemetry or
    /// shared config, and EAL chatter only at warning level.
    pub fn init_global_in_memory(memory_mb: u32) -> Result<&'static Eal, EalError> {
        let memory = memory_mb.to_string();
        Self::init_global([
            "-l",
            "0",
            "--no-huge",
            "-m",
            memory.as_str(),
            "--no-pci",
            "--no-telemetry",
            "--no-shconf",
            "--log-level=lib.eal:warning",
        ])
    }

    /// Releases DPDK's resources now instead of on drop, reporting DPDK's error if any.
    pub fn cleanup(mut self) -> Result<(), DpdkError> {
        self.cleanup_once()
    }

    fn cleanup_once(&mut self) -> Result<(), DpdkError> {
        if self.cleaned_up {
            return Ok(());
        }
        self.cleaned_up = true;
        // SAFETY: EAL was initialised by `init`, and cleanup runs at most once.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if let Some(dir) = self.generated_runtime_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        crate::error::check(ret, "clean up", || "EAL".to_owned()).map(|_| ())
    }

    /// Number of lcores EAL was started with (main included).
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::rte_lcore_count() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        let _ = self.cleanup_once();
    }
}

/// EAL only logs a `--vdev` that fails to attach and starts anyway, which would surface much
/// later as a missing port. Probing each missing Ethernet vdev again yields DPDK's reason now.
fn attach_ethernet_vdevs(args: &[String]) -> Result<(), DpdkError> {
    let mut vdevs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(devargs) = arg.strip_prefix("--vdev=") {
            vdevs.push(devargs);
        } else if arg == "--vdev" {
            if let Some(devargs) = iter.next() {
                vdevs.push(devargs);
            }
        }
    }
    for devargs in vdevs {
        if device_name(devargs).starts_with("net_") {
            Port::probe(devargs)?;
        }
    }
    Ok(())
}

fn runtime_dir() -> Option<PathBuf> {
    // SAFETY: returns a pointer to EAL's static runtime-dir string once EAL is initialised.
    let ptr = unsafe { dpdk_sys::rte_eal_get_runtime_dir() };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, static.
    let dir = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}
