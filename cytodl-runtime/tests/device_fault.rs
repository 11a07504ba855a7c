//! A GPU task that fails on its device thread stops training with an error that names it and
//! keeps the last good checkpoint (`cytodl_runtime::device_fault`). CubeCL catches a task that
//! panics on a device thread and goes on; this test does the same on a thread named like
//! CubeCL's, so that it runs on the CPU (`backend_paths` checks a real wgpu allocation failure).
//! Its own test binary: a recorded fault is process-wide, and other trainers running beside it
//! would see it.

#[path = "common/tiny_trainer.rs"]
mod tiny_trainer;

use cytodl_runtime::device_fault;
use cytodl_runtime::train::error::TrainError;
use tiny_trainer::*;

/// Panics on a thread named `name` and catches it there, as CubeCL's device service does.
fn panic_caught_on_thread(name: &str, message: &'static str) {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let caught = std::panic::catch_unwind(|| panic!("{message}"));
            assert!(caught.is_err());
        })
        .expect("spawn")
        .join()
        .expect("the panic was caught on its thread");
}

#[test]
fn a_failed_device_task_stops_training_and_keeps_the_last_good_checkpoint() {
    let dir = tmp("device-fault");
    let val = loader(samples(2, None));
    trainer(&dir, 2).fit(&loader(samples(6, None)), Some(&val)).expect("the clean epochs train");
    let last = dir.join("checkpoints/last.ckpt");
    let before = std::fs::read(&last).expect("last.ckpt");

    let mut t = trainer(&dir, 4);
    t.resume(&last).expect("resume");
    // A panic on any other thread is not a device fault.
    panic_caught_on_thread("loader-0", "not the GPU");
    assert_eq!(device_fault::check(), Ok(()));
    panic_caught_on_thread("DSD-7-0", "can't allocate buffer of size: 17179869184");
    let err = t.fit(&loader(samples(6, None)), Some(&val)).expect_err("the fault stops training");
    assert!(matches!(err, TrainError::Device { .. }), "{err}");
    let msg = err.to_string();
    for part in ["DSD-7-0", "can't allocate buffer of size", "ran out of memory", "at epoch 2, step 6", "last good checkpoint is kept: ", "checkpoints"] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    assert_eq!(std::fs::read(&last).expect("last.ckpt"), before, "last.ckpt untouched");

    // Reported once; a restart from the checkpoint trains on.
    assert_eq!(device_fault::check(), Ok(()));
    let mut t = trainer(&dir, 3);
    t.resume(&last).expect("resume");
    let report = t.fit(&loader(samples(6, None)), Some(&val)).expect("trains after the fault");
    assert_eq!(report.epochs_run, 1);
}
