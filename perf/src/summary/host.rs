//! What a summary records about the machine and the source tree. These look at the system
//! (`/proc/cpuinfo`, `git`), so they stay out of the pure [`super::build`].

use std::path::Path;
use std::process::Command;

use super::model::{GitInfo, HostInfo};

/// CPUs available to this process, CPU model (Linux), operating system.
pub fn host_info() -> HostInfo {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    HostInfo { cpus, cpu_model, os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH) }
}

/// Commit, branch and dirtiness of the repository at `repo_dir`, by running `git`. Each part
/// is `None` when git is missing or cannot tell (not a repository, detached HEAD). In GitHub
/// Actions, where pull requests check out a merge commit on a detached HEAD, the branch falls
/// back to `GITHUB_HEAD_REF`, then `GITHUB_REF_NAME`.
pub fn git_info(repo_dir: &Path) -> GitInfo {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(repo_dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
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

    #[test]
    fn host_has_cpus_and_os() {
        let h = host_info();
        assert!(h.cpus >= 1);
        assert!(h.os.contains(std::env::consts::OS));
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
