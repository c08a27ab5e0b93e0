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
use crate::env::Environment;
use crate::plan::SuiteKind;
use crate::plan::compiled::Suite;
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

/// Which of the `sides` of a run in turns get their segments recorded: all of them, unless
/// [`SWITCH`] names one side of an A/B (`PERF_PROFILE=base` or `head`: the other side then
/// runs without the profiler, and the comparison is what the profiler costs).
pub fn recorded_sides(sides: usize) -> Vec<bool> {
    recorded_sides_for(std::env::var(SWITCH).ok().as_deref(), sides)
}

fn recorded_sides_for(switch: Option<&str>, sides: usize) -> Vec<bool> {
    let only = match switch.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("base") if sides == 2 => Some(0),
        Some("head") if sides == 2 => Some(1),
        _ => None,
    };
    (0..sides).map(|i| only.is_none_or(|o| o == i)).collect()
}

/// What an A/B side's summary says when [`recorded_sides`] left it out.
pub fn not_recorded() -> Profile {
    Profile::unavailable(format!("not profiled: {SWITCH}={} records the other side only", std::env::var(SWITCH).unwrap_or_default().trim()))
}

/// Whether `suite`'s runs measured for judging get the app's CPU sampled: load suites (chaos
/// and the other special kinds are judged by their checks, not against a baseline), unless
/// [`SWITCH`] says off.
pub fn wanted(suite: &Suite) -> bool {
    suite.kind == SuiteKind::Load && !switched_off()
}

/// Records the app's processes `pids` (or says why they cannot be) from the measured start on
/// `clock` until `done`, and folds what was sampled: the profile without its requests, which
/// the caller knows. When `interrupted` fires (Ctrl-C), the samples are not read: `perf` is
/// stopped and its file removed at once.
pub async fn record(
    pids: Result<Vec<u32>, String>,
    clock: tokio::sync::watch::Receiver<Option<RunClock>>,
    done: CancellationToken,
    interrupted: CancellationToken,
) -> Profile {
    let pids = match pids {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return Profile::unavailable("the app's process was not found"),
        Err(why) => return Profile::unavailable(why),
    };
    let sampled = async {
        // Started when the load's clock is known, that is when the load starts: perf's own
        // start falls in the warm-up.
        let measured_start = measured_start(clock, &done).await?;
        let mut session = Session::start(&pids)?;
        session.on_between(measured_start, &done).await;
        session.finish(std::slice::from_ref(&pids), &interrupted).await.pop().unwrap_or_else(|| Err("nothing was read".into()))
    };
    let sampled = tokio::select! {
        sampled = sampled => sampled,
        _ = interrupted.cancelled() => Err("interrupted".into()),
    };
    folded_profile(sampled)
}

/// When the load's measured part starts, once its clock is known; why not when the load ends
/// first.
async fn measured_start(
    mut clock: tokio::sync::watch::Receiver<Option<RunClock>>,
    done: &CancellationToken,
) -> Result<std::time::Instant, String> {
    loop {
        if let Some(c) = *clock.borrow_and_update() {
            return Ok(c.measured_start);
        }
        tokio::select! {
            _ = done.cancelled() => return Err("the load ended before its measured part".into()),
            changed = clock.changed() => if changed.is_err() { return Err("the load's clock was never known".into()) },
        }
    }
}

/// The profile of what one set of processes was sampled doing, without its requests.
fn folded_profile(sampled: Result<(BTreeMap<String, u64>, u64), String>) -> Profile {
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

/// One `perf record` over runs that take turns on several apps (A/B's base and head, the
/// experiment's copies), each run's segment measured on one of them: switched on during each
/// run's measured part ([`Turns::session`], given to the run), off between, and read once per
/// app at the end. One recording instead of one per segment: stopping `perf record` and
/// reading its samples took about a second each time, a fifth of a 3 s segment's turn.
pub struct Turns {
    session: Result<Session, String>,
    apps: Vec<Result<Vec<u32>, String>>,
}

impl Turns {
    /// A recording of the apps of `envs` when `suite` is profiled ([`wanted`]).
    pub async fn of(suite: &Suite, envs: &[Environment]) -> Option<Turns> {
        if !wanted(suite) {
            return None;
        }
        let mut apps = Vec::new();
        for env in envs {
            apps.push(env.app_pids().await);
        }
        Some(Turns::start(apps))
    }

    /// Starts recording (events off) the processes of every app (`apps`: each app's
    /// processes, or why they are not known). Never fails: what went wrong is each app's
    /// profile at the end.
    fn start(apps: Vec<Result<Vec<u32>, String>>) -> Turns {
        let pids: Vec<u32> = apps.iter().filter_map(|a| a.as_ref().ok()).flatten().copied().collect();
        let session = if pids.is_empty() { Err("the apps' processes were not found".to_string()) } else { Session::start(&pids) };
        Turns { session, apps }
    }

    /// The recording, for a run to switch on during its measured part (`None` when it could
    /// not start).
    pub fn session(&mut self) -> Option<&mut Session> {
        self.session.as_mut().ok()
    }

    /// Stops recording and keeps each app's profile in its run's summary (`runs`: one per
    /// app, in the order given).
    pub async fn finish_into(self, runs: &mut [crate::summary::Summary], interrupted: &CancellationToken) {
        for (run, profile) in runs.iter_mut().zip(self.finish(interrupted).await) {
            run.set_profile(profile);
        }
    }

    /// Stops recording and folds each app's samples: one profile per app, in the order given,
    /// without their requests (the caller knows them).
    async fn finish(self, interrupted: &CancellationToken) -> Vec<Profile> {
        let read = match self.session {
            Ok(session) => {
                let known: Vec<Vec<u32>> = self.apps.iter().filter_map(|a| a.as_ref().ok()).cloned().collect();
                let mut read = session.finish(&known, interrupted).await.into_iter();
                self.apps.iter().map(|a| a.clone().and_then(|_| read.next().unwrap_or_else(|| Err("nothing was read".into())))).collect()
            }
            Err(why) => self.apps.iter().map(|_| Err(why.clone())).collect::<Vec<_>>(),
        };
        read.into_iter().map(folded_profile).collect()
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

/// A `perf record` of some processes, started with its events off (its start reads every
/// process's memory maps: a burst of CPU that belongs in a warm-up, not in a measurement) and
/// switched on and off through its control FIFO. Killed when dropped; its file lives in a
/// temporary folder removed with it.
pub struct Session {
    child: Child,
    data: std::path::PathBuf,
    control: std::fs::File,
    whole: bool,
    said: tokio::task::JoinHandle<String>,
    /// Why the recording is no good (perf ended by itself, a measured part began before the
    /// run's clock was known…): every profile read from it says so.
    broken: Option<String>,
    _dir: tempfile::TempDir,
}

impl Session {
    /// `perf record` of `pids` started now, its events off.
    fn start(pids: &[u32]) -> Result<Session, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder for perf's data: {e}"))?;
        let data = dir.path().join("perf.data");
        let fifo = dir.path().join("control");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
            .map_err(|e| format!("no control FIFO for perf: {e}"))?;
        // Read and write: opening a FIFO so never waits for the other end (Linux), and what is
        // written waits in it until perf reads.
        let control = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(|e| format!("perf's control FIFO could not be opened: {e}"))?;
        let whole = whole_machine_allowed();
        let mut rec = Command::new("perf");
        // --no-buildid-cache: perf would otherwise copy every binary it sampled into ~/.debug,
        // once per build (gigabytes after a few weeks of CI); `perf script` reads them in place.
        rec.args(["record", "--quiet", "--no-buildid-cache", "-F", &HZ.to_string(), "-g", "-D", "-1", "--control"])
            .arg(format!("fifo:{}", fifo.display()))
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
        Ok(Session { child, data, control, whole, said, broken: None, _dir: dir })
    }

    /// Events on from the run's measured start on `clock` until `done` (the end of its load),
    /// then off. A run that ends before its measured part, or a perf that ends by itself,
    /// breaks the recording: the profiles read from it say why.
    pub async fn during(&mut self, clock: tokio::sync::watch::Receiver<Option<RunClock>>, done: &CancellationToken) {
        match measured_start(clock, done).await {
            Ok(at) => self.on_between(at, done).await,
            Err(why) => self.break_with(why),
        }
    }

    /// Events on from `measured_start` until `done`, then off.
    async fn on_between(&mut self, measured_start: std::time::Instant, done: &CancellationToken) {
        if self.broken.is_some() {
            return;
        }
        tokio::select! {
            _ = done.cancelled() => return self.break_with("the load ended before its measured part".into()),
            status = self.child.wait() => return self.ended(status.ok()).await,
            _ = tokio::time::sleep_until(measured_start.into()) => {}
        }
        if let Err(e) = self.switch(b"enable\n") {
            return self.break_with(e);
        }
        tokio::select! {
            _ = done.cancelled() => {}
            status = self.child.wait() => return self.ended(status.ok()).await,
        }
        if let Err(e) = self.switch(b"disable\n") {
            self.break_with(e);
        }
    }

    fn switch(&mut self, command: &[u8]) -> Result<(), String> {
        std::io::Write::write_all(&mut self.control, command).map_err(|e| format!("perf's control FIFO could not be written: {e}"))
    }

    fn break_with(&mut self, why: String) {
        self.broken.get_or_insert(why);
    }

    /// perf ended by itself: what it said is why.
    async fn ended(&mut self, status: Option<std::process::ExitStatus>) {
        let said = (&mut self.said).await.unwrap_or_default();
        let why = refused(status, &said, self.whole);
        self.break_with(why);
    }

    /// Stops `perf record` (SIGINT: it writes its file) and folds the samples of each set of
    /// processes in `sets` (`perf script --pid`): stacks and the samples in all, per set. When
    /// `interrupted` fires, nothing is read.
    async fn finish(mut self, sets: &[Vec<u32>], interrupted: &CancellationToken) -> Vec<Result<(BTreeMap<String, u64>, u64), String>> {
        let all = |why: String| sets.iter().map(|_| Err(why.clone())).collect();
        if let Some(why) = self.broken.take() {
            return all(why);
        }
        if let Err(why) = stop(&mut self.child).await {
            return all(why);
        }
        let said = (&mut self.said).await.unwrap_or_default();
        if std::fs::metadata(&self.data).map(|m| m.len()).unwrap_or(0) == 0 {
            return all(refused(None, &said, self.whole));
        }
        let mut out = Vec::new();
        for pids in sets {
            let read = tokio::select! {
                read = script(&self.data, pids) => read,
                _ = interrupted.cancelled() => Err("interrupted".into()),
            };
            out.push(read);
        }
        out
    }
}

/// `perf script` of the samples of `pids` in `data`, folded.
async fn script(data: &std::path::Path, pids: &[u32]) -> Result<(BTreeMap<String, u64>, u64), String> {
    let mut script = Command::new("perf");
    // No period in the fields: inferno then counts samples, not the event's period (ns of
    // cpu-clock, or cycles); `--no-inline` spares an addr2line per frame.
    script.args(["script", "--no-inline", "-F", "comm,pid,tid,time,event,ip,sym,dso", "-i"]).arg(data).args(["--pid", &pid_list(pids)]);
    script.stdin(Stdio::null()).kill_on_drop(true);
    dies_with_the_gate(&mut script);
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, script.output())
        .await
        .map_err(|_| format!("perf script took more than {}s", SCRIPT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("perf script could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf script failed: {}", first_line(&String::from_utf8_lossy(&out.stderr))));
    }
    // The processes' names now (they are still running): what their unnamed threads get.
    let names: BTreeMap<String, String> = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok().map(|c| (p.to_string(), c.trim().to_string())))
        .collect();
    fold(&out.stdout, &names).map_err(|e| format!("the samples could not be folded: {e}"))
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
/// `processes` (pid → name) names the threads perf saw no name for.
pub fn fold(script: &[u8], processes: &BTreeMap<String, String>) -> std::io::Result<(BTreeMap<String, u64>, u64)> {
    let script = name_unknown_threads(&String::from_utf8_lossy(script), processes);
    let script = script.as_bytes();
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

/// Threads perf saw no name for are called `:<tid>` by `perf script`: a thread started while
/// the events were off (perf records names only while on), such as a server's thread per
/// connection opened in a segment's lead-in. Each would be a root of its own; they get the
/// name of their process (what a new thread inherits): from `processes`, else from a thread
/// of it that perf named, else they keep perf's.
fn name_unknown_threads(script: &str, processes: &BTreeMap<String, String>) -> String {
    // An event line: `<comm> <pid>/<tid> <time>: …`; the comm may hold spaces.
    fn parts(line: &str) -> Option<(&str, &str, &str, usize)> {
        if line.starts_with('\t') || line.trim().is_empty() {
            return None; // a frame of a stack, or the blank line after one
        }
        // Words with where each starts; the first `digits/digits` after the comm's first word.
        let mut at = 0;
        let words = line.split(' ').map(|w| {
            let start = at;
            at += w.len() + 1;
            (start, w)
        });
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (start, ids) =
            words.filter(|(_, w)| !w.is_empty()).skip(1).find(|(_, w)| w.split_once('/').is_some_and(|(p, t)| digits(p) && digits(t)))?;
        let (pid, tid) = ids.split_once('/')?;
        Some((line[..start].trim(), pid, tid, start))
    }
    let mut names: BTreeMap<&str, &str> = processes.iter().map(|(p, n)| (p.as_str(), n.as_str())).collect();
    for line in script.lines() {
        if let Some((comm, pid, tid, _)) = parts(line)
            && comm.strip_prefix(':') != Some(tid)
            && !processes.contains_key(pid)
            && (pid == tid || !names.contains_key(pid))
        {
            names.insert(pid, comm);
        }
    }
    let mut out = String::with_capacity(script.len());
    for line in script.lines() {
        match parts(line) {
            Some((comm, pid, tid, at)) if comm.strip_prefix(':') == Some(tid) && names.contains_key(pid) => {
                out.push_str(names[pid]);
                out.push(' ');
                out.push_str(&line[at..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
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
    fn one_side_of_an_a_b_is_recorded_when_the_switch_names_it() {
        assert_eq!(recorded_sides_for(None, 2), [true, true]);
        assert_eq!(recorded_sides_for(Some("on"), 2), [true, true]);
        assert_eq!(recorded_sides_for(Some("base"), 2), [true, false]);
        assert_eq!(recorded_sides_for(Some(" Head "), 2), [false, true]);
        // Not an A/B (the experiment's seven copies): every side, as without the switch.
        assert_eq!(recorded_sides_for(Some("head"), 7), [true; 7]);
    }

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
        let (stacks, total) = fold(script, &BTreeMap::new()).unwrap();
        assert_eq!(total, 2);
        assert_eq!(stacks.len(), 1, "{stacks:?}");
        let (stack, n) = stacks.iter().next().unwrap();
        assert_eq!(*n, 2);
        assert!(stack.ends_with("refapp::metrics::track::{{closure}};refapp::metrics::busy_work"), "{stack}");
    }

    #[test]
    fn threads_perf_saw_no_name_for_take_their_process_name() {
        let script = b"         python3 200/200 1.000: cpu-clock:ppp: \n\
\t    55d0 _PyEval_EvalFrameDefault+0x10 (/usr/bin/python3.11)\n\
\n\
          :201 200/201 1.010: cpu-clock:ppp: \n\
\t    55d0 _PyEval_EvalFrameDefault+0x10 (/usr/bin/python3.11)\n\
\n\
          :301 300/301 1.020: cpu-clock:ppp: \n\
\t    55d0 main+0x10 (/x/other)\n\
\n\
         bash 500/500 1.025: cpu-clock:ppp: \n\
\t    55d0 main+0x10 (/bin/bash)\n\
\n\
  Web Content 400/400 1.030: cpu-clock:ppp: \n\
\t    55d0 main+0x10 (/x/browser)\n\
\n";
        let (stacks, total) = fold(script, &BTreeMap::new()).unwrap();
        assert_eq!(total, 5);
        assert_eq!(stacks.get("bash;main"), Some(&1), "{stacks:?}");
        assert_eq!(stacks.get("python3;_PyEval_EvalFrameDefault"), Some(&2), "{stacks:?}");
        assert_eq!(stacks.get(":301;main"), Some(&1), "a process none of whose threads has a name keeps perf's: {stacks:?}");
        assert_eq!(stacks.get("Web_Content;main"), Some(&1), "{stacks:?}");
        // The processes' names as they run (the main thread may take no sample at all).
        let processes = BTreeMap::from([("300".to_string(), "worker".to_string())]);
        let (stacks, _) = fold(script, &processes).unwrap();
        assert_eq!(stacks.get("worker;main"), Some(&1), "{stacks:?}");
        assert_eq!(stacks.get("python3;_PyEval_EvalFrameDefault"), Some(&2), "{stacks:?}");
    }

    #[test]
    fn hashes_come_off_and_other_frames_stay() {
        assert_eq!(without_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(without_hash("a::hello"), "a::hello");
        assert_eq!(without_hash("memcpy"), "memcpy");
    }
}
