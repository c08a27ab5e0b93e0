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

/// A child that ignores the stop signal is killed after the grace period together with its
/// descendants, even one that left the process group (as PostgreSQL's backends do).
#[tokio::test]
async fn a_stubborn_child_is_killed_with_all_its_descendants() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sleeper(dir.path(), None);
    spec.program = "/bin/sh".into();
    spec.args = vec!["-c".into(), "trap '' TERM; setsid sleep 600 & wait".into()];
    let mut child = ManagedChild::spawn("stubborn", &spec).unwrap();
    let mut tree = Vec::new();
    let pgid_of = |pid: u32| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32))).ok().map(|p| p.as_raw());
    // Until the forked shell child has run `setsid`, it is still in the group: wait for that.
    for _ in 0..250 {
        tree = perf::env::resources::process_tree(child.pid());
        if tree.len() == 2 && pgid_of(tree[1]).is_some_and(|g| g != child.pid() as i32) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tree.len(), 2, "sh and its sleep: {tree:?}");
    assert_ne!(pgid_of(tree[1]), Some(child.pid() as i32), "the sleep left the group");

    let clean = child.stop(Signal::SIGTERM, Duration::from_millis(300)).await;
    assert!(!clean, "sh ignores SIGTERM");
    assert!(wait_dead(tree[0]) && wait_dead(tree[1]), "{tree:?} survive");
}
