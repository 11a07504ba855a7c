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
use std::sync::atomic::{AtomicBool, Ordering};
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
            let current = std::thread::current();
            let name = current.name().unwrap_or("");
            let probed = *PROBER.lock().unwrap_or_else(|p| p.into_inner()) == Some(current.id()) || (is_device_thread(name) && PROBING.load(Ordering::SeqCst));
            if probed {
                PROBED.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_string(), message(info)));
                return;
            }
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

/// A panic's message.
fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".to_string())
}

fn record(thread: &str, info: &PanicHookInfo<'_>) {
    let message = message(info);
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

/// Whether a [`first_use`] is running: its thread's and the device threads' panics are then
/// collected quietly, not printed.
static PROBING: AtomicBool = AtomicBool::new(false);
/// The thread running [`first_use`].
static PROBER: Mutex<Option<std::thread::ThreadId>> = Mutex::new(None);
/// The panics (thread, message) of the running [`first_use`].
static PROBED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Runs `use_device` — the first use of a device, before anything depends on it — and says
/// why it failed: a GPU the machine does not have (no driver, no adapter) makes burn's
/// runtimes panic, first on the device thread (the cause), then on the caller's (a closed
/// channel). The panics are caught and not printed; the device thread's message is returned
/// (its first 400 characters: a driver search lists dozens of file names), else the
/// caller's. One probe runs at a time; call it at a command's start, before devices train
/// (while it runs, every device thread's panic is taken as its cause, not as a fault).
pub fn first_use<T>(use_device: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    /// Ends the probe however `use_device` returns.
    struct Probing;
    impl Drop for Probing {
        fn drop(&mut self) {
            PROBING.store(false, Ordering::SeqCst);
            *PROBER.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
    watch();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    PROBED.lock().unwrap_or_else(|p| p.into_inner()).clear();
    *PROBER.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current().id());
    PROBING.store(true, Ordering::SeqCst);
    let probing = Probing;
    let result = std::panic::catch_unwind(use_device);
    drop(probing);
    let panics = std::mem::take(&mut *PROBED.lock().unwrap_or_else(|p| p.into_inner()));
    let cause = panics.iter().find(|(thread, _)| is_device_thread(thread)).or(panics.first()).map(|(_, message)| abridged(message, 400));
    match (result, cause) {
        (Ok(value), None) => Ok(value),
        (_, Some(cause)) => Err(cause),
        (Err(_), None) => Err("it panicked".to_string()),
    }
}

/// `text` cut to its first `limit` characters, marked when cut.
fn abridged(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{} …", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_first_use_is_a_message_not_a_panic() {
        assert_eq!(first_use(|| 7), Ok(7));
        // The cause raised on a device thread is reported, not the caller's consequence.
        let err = first_use(|| {
            let device_thread = std::thread::Builder::new().name("DSD-9-0".into()).spawn(|| panic!("no adapter")).expect("spawn");
            let _ = device_thread.join();
            panic!("channel closed")
        })
        .unwrap_err();
        assert_eq!(err, "no adapter");
        assert_eq!(first_use(|| -> () { panic!("on the caller") }), Err("on the caller".to_string()));
        let long = first_use(|| -> () { panic!("{}", "x".repeat(1000)) }).unwrap_err();
        assert_eq!(long, format!("{} …", "x".repeat(400)));
        // Quiet only while probing: a device-thread panic afterwards is a recorded fault again.
        let device_thread = std::thread::Builder::new().name("DSD-9-1".into()).spawn(|| panic!("after the probe")).expect("spawn");
        let _ = device_thread.join();
        let fault = check().expect_err("recorded");
        assert_eq!((fault.thread.as_str(), fault.message.split(" (at").next()), ("DSD-9-1", Some("after the probe")));
    }
}
