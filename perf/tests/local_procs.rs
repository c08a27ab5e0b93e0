//! Guarantees of `procs::ManagedChild` that the cleanup story rests on.

use std::time::Duration;

use nix::sys::signal::Signal;
use perf::env::procs::{ManagedChild, RunAs, Spawn};
use perf::env::resources::is_alive;

fn sleeper(dir: &std::path::Path, run_as: Option<RunAs>) -> Spawn {
    Spawn {
        program: "/bin/sleep".into(),
        args: vec!["600".into()],
        cwd: "/".into(),
        env: Vec::new(),
        log: dir.join("sleep.log"),
        run_as,
        parent_death_signal: Signal::SIGKILL,
    }
}

fn wait_dead(pid: u32) -> bool {
    for _ in 0..200 {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Even when nobody stops it (the gate was killed), a child dies with the thread that
/// spawned it; also when it runs as another account (the uid change happens before the
/// parent-death signal is set, which would otherwise be cleared).
#[test]
fn a_child_dies_with_the_thread_that_spawned_it() {
    let dir = tempfile::tempdir().unwrap();
    for run_as in [None, RunAs::for_postgres().unwrap()] {
        let spec = sleeper(dir.path(), run_as.clone());
        let pid = std::thread::spawn(move || {
            let child = ManagedChild::spawn("sleep", &spec).unwrap();
            let pid = child.pid();
            std::mem::forget(child); // no Drop: only the kernel can stop it now
            pid
        })
        .join()
        .unwrap();
        assert!(wait_dead(pid), "pid {pid} (run as {:?}) outlived its spawning thread", run_as.map(|r| r.name));
        // Reap the zombie left by the forgotten handle.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    }
}

/// Each child leads its own process group, so a terminal's Ctrl-C does not reach it, and
/// dropping the handle kills it.
#[test]
fn a_child_has_its_own_process_group_and_dies_with_its_handle() {
    let dir = tempfile::tempdir().unwrap();
    let child = ManagedChild::spawn("sleep", &sleeper(dir.path(), None)).unwrap();
    let pid = child.pid() as i32;
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).unwrap();
    assert_eq!(pgid.as_raw(), pid);
    assert_ne!(pgid, nix::unistd::getpgrp());
    drop(child);
    assert!(!is_alive(pid as u32));
}
