//! How busy the machine was with work the gate did not give it, while a suite was measured.
//!
//! Latency on a shared machine depends on what else runs there: on this project's 2-core CI
//! machine, a compiler running beside the quick start doubled the reference app's p95 and
//! made the gate report a regression on unchanged code. A verdict is only as good as the
//! quiet of the machine it was measured on, so the gate measures that quiet:
//!
//! - the machine's busy CPU time (`/proc/stat`: user, nice and system; interrupts and
//!   softirqs are left out, loopback traffic is accounted there and belongs to no process);
//! - the CPU time of the processes serving the run: the gate's own process tree (the load
//!   engine, and with the local backend PostgreSQL, Redis and the app, its children) and, when
//!   Docker runs the services, the engine's processes (`dockerd`, `containerd`, the shims,
//!   `docker-proxy`) and every process in a container's cgroup;
//! - the difference is **foreign** CPU: processes the run did not start; plus the time the
//!   hypervisor **stole** from this machine's virtual CPUs.
//!
//! A process of the run that exits inside the window (a PostgreSQL backend) counts as
//! foreign: conservative in the gate's favour only by the little such processes use.

use std::time::Instant;

use procfs::CurrentSI;
use serde::{Deserialize, Serialize};

/// Share of the machine's CPU capacity that foreign and stolen time together may take before
/// the machine counts as busy: 15% (0.3 of a core on a 2-core runner). A quiet machine here
/// measures 0-3%; a compiler beside the run, 60-90%.
pub const BUSY_SHARE: f64 = 0.15;

/// CPU counters at one moment.
#[derive(Debug, Clone)]
pub struct MachineSnapshot {
    at: Instant,
    /// Busy ticks of the whole machine (user + nice + system).
    busy: u64,
    /// Stolen ticks.
    steal: u64,
    /// CPU ticks of the processes that serve the run, live ones and the children they reaped.
    ours: u64,
    cpus: u32,
}

/// What the machine did during a window, in cores (CPU seconds per second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// CPUs of the machine.
    pub cpus: u32,
    /// Length of the window, seconds.
    pub window_s: f64,
    /// All busy CPU time.
    pub busy_cores: f64,
    /// CPU of the processes serving the run (the gate, the services, the app).
    pub run_cores: f64,
    /// CPU of everything else.
    pub foreign_cores: f64,
    /// Time the hypervisor gave to other machines.
    pub steal_cores: f64,
}

impl MachineLoad {
    /// Foreign and stolen time as a share of the machine's capacity.
    pub fn taken_share(&self) -> f64 {
        if self.cpus == 0 {
            return 0.0;
        }
        (self.foreign_cores + self.steal_cores) / f64::from(self.cpus)
    }

    /// Why the machine counts as busy, or `None` when it was quiet enough to measure on.
    pub fn busy(&self) -> Option<String> {
        let share = self.taken_share();
        if share < BUSY_SHARE {
            return None;
        }
        let stolen = if self.steal_cores >= 0.01 { format!(", and the hypervisor stole {:.2}", self.steal_cores) } else { String::new() };
        Some(format!(
            "the machine was busy with other work: processes the gate did not start used {:.2} of its {} CPUs{stolen} during the measurement ({:.0}% of its capacity, limit {:.0}%)",
            self.foreign_cores,
            self.cpus,
            share * 100.0,
            BUSY_SHARE * 100.0
        ))
    }
}

/// The machine's counters now; `None` where `/proc` cannot be read (not Linux).
pub fn snapshot(docker: bool) -> Option<MachineSnapshot> {
    let stats = procfs::KernelStats::current().ok()?;
    let t = &stats.total;
    let busy = t.user + t.nice + t.system;
    let steal = t.steal.unwrap_or(0);
    let cpus = stats.cpu_time.len().max(1) as u32;
    Some(MachineSnapshot { at: Instant::now(), busy, steal, ours: run_ticks(docker), cpus })
}

/// The window between two snapshots.
pub fn between(before: &MachineSnapshot, after: &MachineSnapshot) -> MachineLoad {
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let window_s = after.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let cores = |a: u64, b: u64| (b.saturating_sub(a) as f64 / ticks / window_s * 100.0).round() / 100.0;
    let busy_cores = cores(before.busy, after.busy);
    let run_cores = cores(before.ours, after.ours).min(busy_cores);
    MachineLoad {
        cpus: after.cpus,
        window_s: (window_s * 10.0).round() / 10.0,
        busy_cores,
        run_cores,
        foreign_cores: ((busy_cores - run_cores).max(0.0) * 100.0).round() / 100.0,
        steal_cores: cores(before.steal, after.steal),
    }
}

/// CPU ticks (live processes plus the children they reaped) of the processes serving the run.
fn run_ticks(docker: bool) -> u64 {
    let Ok(all) = procfs::process::all_processes() else { return 0 };
    let mut parents = std::collections::HashMap::new();
    let mut stats = Vec::new();
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        parents.insert(stat.pid, stat.ppid);
        let ticks = stat.utime + stat.stime + (stat.cutime.max(0) + stat.cstime.max(0)) as u64;
        let docker_side = docker && (is_docker_engine(&stat.comm) || in_container(stat.pid));
        stats.push((stat.pid, ticks, docker_side));
    }
    let me = std::process::id() as i32;
    let below_me = |mut pid: i32| {
        for _ in 0..64 {
            if pid == me {
                return true;
            }
            match parents.get(&pid) {
                Some(&parent) if parent > 0 && parent != pid => pid = parent,
                _ => return false,
            }
        }
        false
    };
    stats.into_iter().filter(|(pid, _, docker_side)| *docker_side || below_me(*pid)).map(|(_, t, _)| t).sum()
}

/// The Docker engine's own processes, which carry the run's containers and published ports.
fn is_docker_engine(comm: &str) -> bool {
    matches!(comm, "dockerd" | "containerd" | "docker-proxy") || comm.starts_with("containerd-shim")
}

/// Whether a process runs inside a container (its cgroup path names Docker or containerd).
fn in_container(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains("docker") || c.contains("containerd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(foreign: f64, steal: f64) -> MachineLoad {
        MachineLoad { cpus: 2, window_s: 30.0, busy_cores: 1.0 + foreign, run_cores: 1.0, foreign_cores: foreign, steal_cores: steal }
    }

    #[test]
    fn busy_when_foreign_and_stolen_time_take_a_sixth_of_the_machine() {
        assert_eq!(load(0.05, 0.0).busy(), None);
        assert_eq!(load(0.2, 0.05).busy(), None, "0.25 of 2 CPUs is 12.5%");
        let why = load(1.6, 0.0).busy().unwrap();
        assert!(why.contains("used 1.60 of its 2 CPUs") && why.contains("80% of its capacity"), "{why}");
        let why = load(0.2, 0.2).busy().unwrap();
        assert!(why.contains("the hypervisor stole 0.20") && why.contains("20%"), "{why}");
    }

    /// A process this test starts burns CPU on a core: it is not the gate's child once
    /// detached, so it is foreign; then the gate's own thread burns CPU: the run's.
    #[test]
    fn a_busy_neighbour_is_foreign_and_the_gates_own_work_is_not() {
        let Some(before) = snapshot(false) else { return };
        // `sh -c 'busy loop' &` in its own session, reparented to init: not below the gate.
        let out = std::process::Command::new("sh")
            .args(["-c", "setsid sh -c 'end=$(($(date +%s)+2)); while [ $(date +%s) -lt $end ]; do :; done' >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let after = snapshot(false).unwrap();
        let neighbour = between(&before, &after);
        assert!(neighbour.foreign_cores > 0.3, "a looping neighbour is foreign: {neighbour:?}");

        std::thread::sleep(std::time::Duration::from_millis(700)); // let the neighbour finish
        // This process's CPU seconds, whatever share of a core the machine gave it.
        let cpu_s = || {
            let stat = procfs::process::Process::myself().unwrap().stat().unwrap();
            (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
        };
        let (before, cpu0) = (snapshot(false).unwrap(), cpu_s());
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(1000) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (after, used) = (snapshot(false).unwrap(), cpu_s() - cpu0);
        let own = between(&before, &after);
        // Other tests may run beside this one (foreign to it) and take cores from the loop:
        // what is asserted is that whatever CPU the loop got is counted as the run's.
        assert!(used > 0.2, "the loop ran: {used} CPU s");
        assert!(own.run_cores * own.window_s > 0.8 * used, "the gate's own loop is the run's: {own:?}, loop {used:.2} CPU s");
    }
}
