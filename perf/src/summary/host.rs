//! What a summary records about the machine and the source tree. These look at the system
//! (`/proc/cpuinfo`, `git`), so they stay out of the pure [`super::build`].

use std::path::Path;

use super::model::{GitInfo, HostInfo};
use super::testbed::{Testbed, memory_class};

/// CPUs available to this process, CPU model (Linux), operating system.
pub fn host_info() -> HostInfo {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
    });
    HostInfo { cpus, cpu_model, os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH) }
}

/// The testbed of a run on this machine with `backend` (`local`, `docker`, `external`);
/// `runtime` is the container engine's name and version when the services run in one.
/// Takes about a tenth of a second: the CPU calibration hashes a few megabytes.
pub fn testbed(backend: &str, quick: bool, runtime: Option<String>) -> Testbed {
    let host = host_info();
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| meminfo_total_bytes(&t)).unwrap_or(0);
    Testbed::new(backend, host.cpus, host.cpu_model, memory_class(memory), runtime, quick, Some(cpu_score()))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Single-core speed: SHA-256 throughput over 8 MiB in MB/s, the best of five rounds, timed
/// by the CPU time this thread got ([`thread_cpu_seconds`]), not by the wall clock: a
/// busy neighbour process takes turns on the core but not CPU speed, so the score describes
/// the core, not the moment. Falls back to the wall clock where that clock cannot be read.
/// The rounds are 20 ms apart: a neighbour on the core's other hardware thread does slow the
/// CPU time's throughput, and a burst of its work (another gate process calibrating at the
/// same moment) then spoils one round, not all five.
pub fn cpu_score() -> f64 {
    use sha2::Digest;
    let data = vec![0x5au8; 8 << 20];
    let mut best = f64::MAX;
    for round in 0..5 {
        if round > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (cpu, wall) = (thread_cpu_seconds(), std::time::Instant::now());
        std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&data)));
        let took = match (cpu, thread_cpu_seconds()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall.elapsed().as_secs_f64(),
        };
        best = best.min(took);
    }
    ((data.len() as f64 / 1e6 / best.max(1e-9)) * 10.0).round() / 10.0
}

/// Seconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`, exact to the call).
/// `/proc/thread-self/schedstat` was read here before: it is brought up to date at the
/// scheduler's ticks, so a 4 ms round read from it could count half its CPU time, and the
/// best of five then picked the round it undercounted most (scores 1.7× too high, and two runs
/// of one machine 40% apart).
fn thread_cpu_seconds() -> Option<f64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Commit, branch and dirtiness of the repository at `repo_dir`, by running `git`. Each part
/// is `None` when git is missing or cannot tell (not a repository, detached HEAD). In GitHub
/// Actions, where pull requests check out a merge commit on a detached HEAD, the branch falls
/// back to `GITHUB_HEAD_REF`, then `GITHUB_REF_NAME`.
pub fn git_info(repo_dir: &Path) -> GitInfo {
    let git = |args: &[&str]| crate::util::git(repo_dir, args).ok();
    let sha = git(&["rev-parse", "HEAD"]).filter(|s| !s.is_empty());
    let branch = git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("GITHUB_HEAD_REF").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("GITHUB_REF_NAME").ok().filter(|s| !s.is_empty()));
    let dirty = sha.as_ref().and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()));
    GitInfo { sha, branch, dirty }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn host_has_cpus_and_os() {
        let h = host_info();
        assert!(h.cpus >= 1);
        assert!(h.os.contains(std::env::consts::OS));
    }

    #[test]
    fn testbed_of_this_machine_is_complete() {
        let t = testbed("local", true, None);
        assert!(t.key.starts_with(&format!("local-{}cpu-", t.cpus)) && t.key.ends_with("-quick"), "{}", t.key);
        assert!(t.memory_gib >= 1, "{t:?}");
        assert!(t.cpu_score.is_some_and(|s| s > 1.0), "{t:?}");
        assert_eq!(meminfo_total_bytes("MemTotal:       24019820 kB\nMemFree: 1 kB\n"), Some(24019820 * 1024));
        assert_eq!(meminfo_total_bytes("nothing"), None);
    }

    #[test]
    fn git_info_reads_a_real_repository() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git").arg("-C").arg(dir.path()).args(args).output().unwrap().status.success();
            assert!(ok, "git {args:?}");
        };
        // Outside a repository nothing is known.
        let none = git_info(dir.path());
        assert_eq!(none.sha, None);
        assert_eq!(none.dirty, None);
        run(&["init", "-q", "-b", "trunk"]);
        std::fs::write(dir.path().join("a.txt"), "1").unwrap();
        run(&["add", "a.txt"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "one"]);
        let info = git_info(dir.path());
        assert_eq!(info.sha.as_deref().map(str::len), Some(40));
        assert_eq!(info.branch.as_deref(), Some("trunk"));
        assert_eq!(info.dirty, Some(false));
        std::fs::write(dir.path().join("a.txt"), "2").unwrap();
        assert_eq!(git_info(dir.path()).dirty, Some(true));
    }
}
