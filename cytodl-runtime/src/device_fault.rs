//! Failures on burn's GPU device threads, turned into errors instead of silently wrong results.
//!
//! CubeCL (burn's CUDA and wgpu runtimes) runs each device's work — allocations, kernel
//! compilation, launches — as tasks on a thread of its own, named `DSD-…` or `DSU-…`
//! (`cubecl-common`'s device service), and catches a task that panics there: it logs a warning
//! and goes on. So a GPU out of memory, or a kernel its compiler rejects, leaves that task's
//! outputs unwritten and the run continues on whatever the buffers held: checked on wgpu, a
//! 16 GiB allocation fails on the device thread and the `sum` of the tensor then reads back 0.
//!
//! [`watch`] installs a panic hook (after the one already installed, which still prints) that
//! records the first such panic; training, evaluation, testing and prediction call [`check`]
//! after each batch, once its results have been read back (which waits for the device), and
//! stop with a [`DeviceFault`] naming the cause — before a wrong step is applied, checkpointed
//! or written.

use std::panic::PanicHookInfo;
use std::sync::{Mutex, Once};

use thiserror::Error;

/// A task that failed on a GPU device thread.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the GPU failed a task on its device thread `{thread}`: {message}{hint}; results computed after it cannot be trusted, so the run stopped")]
pub struct DeviceFault {
    /// The device thread's name (`DSD-<runtime>-<device index>`).
    pub thread: String,
    /// The panic's message and where it was raised.
    pub message: String,
    /// What to do about it, when the message says (out of memory).
    hint: &'static str,
}

impl DeviceFault {
    fn new(thread: String, message: String) -> Self {
        let lower = message.to_lowercase();
        let hint = if lower.contains("allocate") || lower.contains("out of memory") {
            " (the GPU ran out of memory: a smaller `data.batch_size` or patch shape needs less)"
        } else {
            ""
        };
        DeviceFault { thread, message, hint }
    }
}

/// The first fault not yet taken.
static FAULT: Mutex<Option<DeviceFault>> = Mutex::new(None);

/// Records panics of GPU device threads from now on (installing the hook once per process).
pub fn watch() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(thread) = std::thread::current().name().filter(|name| is_device_thread(name)) {
                record(thread, info);
            }
            previous(info);
        }));
    });
}

/// Whether a thread of this name is one of CubeCL's device threads (`DS{D,U}-<id>-<index>`).
pub fn is_device_thread(name: &str) -> bool {
    name.starts_with("DSD-") || name.starts_with("DSU-")
}

fn record(thread: &str, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message =
        payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".to_string());
    let message = match info.location() {
        Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
        None => message,
    };
    let mut fault = FAULT.lock().unwrap_or_else(|p| p.into_inner());
    if fault.is_none() {
        *fault = Some(DeviceFault::new(thread.to_string(), message));
    }
}

/// The fault recorded since the last call, if any (taken: one caller reports it; the peers of
/// a data-parallel run then see that one stop).
pub fn check() -> Result<(), DeviceFault> {
    match FAULT.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}
