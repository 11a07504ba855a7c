//! Ctrl-C and SIGTERM (what a scheduler sends before killing a job) during `train`: the first
//! asks the trainer to stop before its next batch, so that the loggers record the run as
//! KILLED and deliver what they hold; a second one ends the process at once (exit 130).

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first signal; the trainer reads it.
pub static REQUESTED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
mod unix {
    use super::*;

    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }

    /// Async-signal-safe: an atomic swap, and `_exit` on the second signal.
    extern "C" fn on_signal(_: i32) {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // SAFETY: `_exit` is async-signal-safe and ends the process.
            unsafe { _exit(130) }
        }
    }

    pub fn install() {
        for sig in [SIGINT, SIGTERM] {
            // SAFETY: installing a handler that only touches an atomic and calls `_exit`.
            unsafe { signal(sig, on_signal) };
        }
    }
}

/// Installs the handlers (once per process) and returns the flag they set.
pub fn install() -> &'static AtomicBool {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(unix::install);
    }
    &REQUESTED
}
