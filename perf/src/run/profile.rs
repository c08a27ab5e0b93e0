//! The app's CPU sampled while a load suite is measured: `perf record` at [`HZ`] with call
//! graphs, from the measured start (the end of the warm-up, on the load's clock) to the end of
//! the load, then `perf script` collapsed into folded stacks by `inferno`. `perf record` starts
//! when the load does, with its events off (`-D -1`): its start reads the memory maps of every
//! process it may watch, a burst of CPU that made the load's first measured requests late; the
//! warm-up absorbs it, and `enable` on its control FIFO switches the events on at the measured
//! start.
//!
//! Never a reason to fail or invalidate a run: a missing `perf`, a `perf_event_paranoid` that
//! forbids it, an app the run does not own or a recording that failed give one line of why
//! ([`crate::summary::Profile::unavailable`]), and the verdict never reads the profile. The
//! profiler is a child process killed when dropped (every error or cancelled path) and by the
//! kernel when the gate itself is killed (parent-death signal), stopped
//! with SIGINT when the load ends so that it writes its file; the file lives in a temporary
//! folder removed with it.
//!
//! Where the gate may watch the whole machine (root, or `perf_event_paranoid` ≤ 0) it records
//! every CPU (`-a`) and keeps the app's processes in `perf script --pid`: attaching to a
//! process (`-p`) counts nothing on some virtual machines. Otherwise it attaches to the app's
//! processes, which an unprivileged user may do for its own processes at
//! `perf_event_paranoid` ≤ 2.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use inferno::collapse::Collapse;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::engine::RunClock;
use crate::summary::Profile;

/// Samples per second and CPU: low enough to cost little, off the beat of timers at 100 Hz.
pub const HZ: u32 = 99;
/// The environment variable that switches profiling off (`PERF_PROFILE=off`), for measuring
/// what it costs.
pub const SWITCH: &str = "PERF_PROFILE";
/// Time `perf record` gets to write its file after SIGINT, and `perf script` to read it.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether profiling was switched off through [`SWITCH`].
pub fn switched_off() -> bool {
    std::env::var(SWITCH).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "0" | "false" | "no"))
}

/// Records the app's processes `pids` (or says why they cannot be) from the measured start on
/// `clock` until `done`, and folds what was sampled: the profile without its requests, which
/// the caller knows. When `interrupted` fires (Ctrl-C), the samples are not read: `perf` is
/// stopped and its file removed at once.
pub async fn record(
    pids: Result<Vec<u32>, String>,
    mut clock: tokio::sync::watch::Receiver<Option<RunClock>>,
    done: CancellationToken,
    interrupted: CancellationToken,
) -> Profile {
    let pids = match pids {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return Profile::unavailable("the app's process was not found"),
        Err(why) => return Profile::unavailable(why),
    };
    let measured_start = loop {
        if let Some(c) = *clock.borrow_and_update() {
            break c.measured_start;
        }
        tokio::select! {
            _ = done.cancelled() => return Profile::unavailable("the load ended before its measured part"),
            changed = clock.changed() => if changed.is_err() { return Profile::unavailable("the load's clock was never known") },
        }
    };
    let sampled = tokio::select! {
        sampled = sample(&pids, measured_start, &done) => sampled,
        _ = interrupted.cancelled() => Err("interrupted".into()),
    };
    match sampled {
        Ok((stacks, samples)) if samples > 0 => {
            let mut p = Profile { hz: HZ, samples, stacks, ..Profile::default() };
            p.bound();
            p
        }
        Ok(_) => Profile::unavailable("perf took no sample of the app (is it allowed to watch the app's processes?)"),
        Err(why) => Profile::unavailable(why),
    }
}

/// Whether this process may record every CPU: root, or `perf_event_paranoid` ≤ 0.
fn whole_machine_allowed() -> bool {
    nix::unistd::geteuid().is_root() || paranoid().is_some_and(|p| p <= 0)
}

fn paranoid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok()?.trim().parse().ok()
}

fn pid_list(pids: &[u32]) -> String {
    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// `cmd` gets SIGKILL when the gate dies, however it dies: `kill_on_drop` covers every path
/// the gate lives through, not a `kill -9` of the gate, after which a `perf record -a` would
/// go on sampling the machine.
fn dies_with_the_gate(cmd: &mut Command) {
    // SAFETY: the hook calls only async-signal-safe system calls (prctl, getppid).
    unsafe {
        cmd.pre_exec(crate::env::procs::parent_death_hook(nix::sys::signal::Signal::SIGKILL));
    }
}

/// `perf record` started now with its events off (its start, which reads every process's
/// memory maps, falls in the warm-up), switched on at `measured_start` through its control
/// FIFO, stopped at `done`; then `perf script` folded: stacks and the samples in all.
async fn sample(
    pids: &[u32],
    measured_start: std::time::Instant,
    done: &CancellationToken,
) -> Result<(BTreeMap<String, u64>, u64), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder for perf's data: {e}"))?;
    let data = dir.path().join("perf.data");
    let control = dir.path().join("control");
    nix::unistd::mkfifo(&control, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
        .map_err(|e| format!("no control FIFO for perf: {e}"))?;
    let whole = whole_machine_allowed();
    let mut rec = Command::new("perf");
    // --no-buildid-cache: perf would otherwise copy every binary it sampled into ~/.debug,
    // once per build (gigabytes after a few weeks of CI); `perf script` reads them in place.
    rec.args(["record", "--quiet", "--no-buildid-cache", "-F", &HZ.to_string(), "-g", "-D", "-1", "--control"])
        .arg(format!("fifo:{}", control.display()))
        .arg("-o")
        .arg(&data);
    if whole {
        rec.arg("-a");
    } else {
        rec.args(["-p", &pid_list(pids)]);
    }
    rec.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    dies_with_the_gate(&mut rec);
    let mut child = rec.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "perf is not installed (Debian: linux-perf; Ubuntu: linux-tools-generic)".to_string(),
        _ => format!("perf record could not start: {e}"),
    })?;
    let stderr = child.stderr.take();
    let said = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_string(&mut text).await;
        }
        text
    });
    tokio::select! {
        _ = done.cancelled() => return Err("the load ended before its measured part".into()),
        status = child.wait() => {
            let said = said.await.unwrap_or_default();
            return Err(refused(status.ok(), &said, whole));
        }
        _ = tokio::time::sleep_until(measured_start.into()) => {}
    }
    // Read and write: opening a FIFO so never waits for the other end (Linux).
    let enabled = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&control)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"enable\n").map(|()| f));
    let _control = enabled.map_err(|e| format!("perf's control FIFO could not be written: {e}"))?;
    tokio::select! {
        _ = done.cancelled() => {}
        status = child.wait() => {
            let said = said.await.unwrap_or_default();
            return Err(refused(status.ok(), &said, whole));
        }
    }
    stop(&mut child).await?;
    let said = said.await.unwrap_or_default();
    if std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(refused(None, &said, whole));
    }
    let mut script = Command::new("perf");
    // No period in the fields: inferno then counts samples, not the event's period (ns of
    // cpu-clock, or cycles); `--no-inline` spares an addr2line per frame.
    script.args(["script", "--no-inline", "-F", "comm,pid,tid,time,event,ip,sym,dso", "-i"]).arg(&data);
    if whole {
        script.args(["--pid", &pid_list(pids)]);
    }
    script.stdin(Stdio::null()).kill_on_drop(true);
    dies_with_the_gate(&mut script);
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, script.output())
        .await
        .map_err(|_| format!("perf script took more than {}s", SCRIPT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("perf script could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf script failed: {}", first_line(&String::from_utf8_lossy(&out.stderr))));
    }
    fold(&out.stdout).map_err(|e| format!("the samples could not be folded: {e}"))
}

/// SIGINT (perf writes its file), then a kill after [`STOP_TIMEOUT`].
async fn stop(child: &mut Child) -> Result<(), String> {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT);
    }
    match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(_) => Ok(()),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("perf record did not stop within {}s of SIGINT", STOP_TIMEOUT.as_secs()))
        }
    }
}

/// One line for a `perf record` that ended by itself or wrote nothing.
fn refused(status: Option<std::process::ExitStatus>, said: &str, whole: bool) -> String {
    let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
    let line = said.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('[')).unwrap_or("no message");
    let permission = said.contains("perf_event_paranoid") || said.contains("Permission") || said.contains("Access to performance");
    let mut out = format!("perf record ended without a profile{status}: {line}");
    if permission || (!whole && paranoid().is_some_and(|p| p > 2)) {
        out.push_str(&format!(" (perf_event_paranoid is {})", paranoid().map_or("unknown".into(), |p| p.to_string())));
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message")
}

/// `perf script` output → folded stacks (root frame: the thread's name) with their samples,
/// and the samples in all. Rust's symbol hashes (`::h0123456789abcdef`) are taken off every
/// frame, so that two builds of one function fold together.
pub fn fold(script: &[u8]) -> std::io::Result<(BTreeMap<String, u64>, u64)> {
    let mut opts = inferno::collapse::perf::Options::default();
    opts.annotate_kernel = true;
    opts.nthreads = 1;
    let mut folder = inferno::collapse::perf::Folder::from(opts);
    let mut folded = Vec::new();
    folder.collapse(script, &mut folded)?;
    let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for line in String::from_utf8_lossy(&folded).lines() {
        let Some((stack, n)) = line.rsplit_once(' ') else { continue };
        let Ok(n) = n.trim().parse::<u64>() else { continue };
        let stack: Vec<&str> = stack.split(';').map(without_hash).collect();
        *stacks.entry(stack.join(";")).or_default() += n;
        total += n;
    }
    Ok((stacks, total))
}

/// `refapp::f::h0123456789abcdef` → `refapp::f`.
fn without_hash(frame: &str) -> &str {
    match frame.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => head,
        _ => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_script_output_folds_into_stacks_without_hashes() {
        let script = b"refapp 100/101 1.000: cpu-clock:ppp: \n\
\t    55d0 refapp::metrics::busy_work::h0123456789abcdef+0x10 (/x/refapp)\n\
\t    55c0 refapp::metrics::track::{{closure}}+0x20 (/x/refapp)\n\
\t    55b0 main+0x5 (/x/refapp)\n\
\n\
refapp 100/101 1.010: cpu-clock:ppp: \n\
\t    55d0 refapp::metrics::busy_work::hfedcba9876543210+0x11 (/x/refapp)\n\
\t    55c0 refapp::metrics::track::{{closure}}+0x20 (/x/refapp)\n\
\t    55b0 main+0x5 (/x/refapp)\n\
\n";
        let (stacks, total) = fold(script).unwrap();
        assert_eq!(total, 2);
        assert_eq!(stacks.len(), 1, "{stacks:?}");
        let (stack, n) = stacks.iter().next().unwrap();
        assert_eq!(*n, 2);
        assert!(stack.ends_with("refapp::metrics::track::{{closure}};refapp::metrics::busy_work"), "{stack}");
    }

    #[test]
    fn hashes_come_off_and_other_frames_stay() {
        assert_eq!(without_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(without_hash("a::hello"), "a::hello");
        assert_eq!(without_hash("memcpy"), "memcpy");
    }
}
