//! Resource sampling: CPU seconds and memory of processes (from /proc) and containers.
//!
//! A local service is a process tree: PostgreSQL forks a backend per connection, an app may
//! fork workers. A sample covers the process and all its live descendants:
//! - CPU: user + system time of every live process in the tree, plus the time of children
//!   they have already reaped (`cutime`/`cstime`), so a backend that served a connection and
//!   exited still counts. Cumulative since the process started.
//! - Memory: the proportional set size (PSS) summed over the tree, from
//!   `/proc/PID/smaps_rollup`: a page shared by N processes counts 1/N in each, so shared
//!   buffers are counted once rather than once per backend. For a single process without
//!   shared pages it equals the RSS. Where smaps_rollup is unreadable, the RSS is used.

use std::collections::HashMap;

use super::types::ResourceSample;

/// `pid` and every live process below it, `pid` first. Empty when `pid` does not exist.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let root = pid as i32;
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut root_exists = false;
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            let Ok(stat) = p.stat() else { continue };
            if stat.pid == root {
                root_exists = true;
            }
            children.entry(stat.ppid).or_default().push(stat.pid);
        }
    }
    if !root_exists {
        return Vec::new();
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().copied().filter(|k| *k != root));
        }
        i += 1;
    }
    out.into_iter().map(|p| p as u32).collect()
}

/// CPU seconds and memory of `pid` and its live descendants; `None` when `pid` is gone.
pub fn sample_process_tree(pid: u32) -> Option<ResourceSample> {
    let tree = process_tree(pid);
    if tree.is_empty() {
        return None;
    }
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let page = procfs::page_size();
    let mut sample = ResourceSample::default();
    for p in tree {
        let Ok(proc_) = procfs::process::Process::new(p as i32) else { continue };
        let Ok(stat) = proc_.stat() else { continue };
        let reaped = (stat.cutime.max(0) + stat.cstime.max(0)) as u64;
        sample.cpu_seconds += (stat.utime + stat.stime + reaped) as f64 / ticks;
        let pss = proc_.smaps_rollup().ok().and_then(|r| r.memory_map_rollup.0.first().and_then(|m| m.extension.map.get("Pss").copied()));
        sample.memory_bytes += pss.unwrap_or(stat.rss * page);
    }
    Some(sample)
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32).and_then(|p| p.stat()).map(|s| s.state != 'Z').unwrap_or(false)
}

/// Who owns what a run leaves on this machine: `HOST/BOOT_ID/PID` of the gate's process.
/// Written on what outlives a `kill -9` (Docker objects, local run folders) so that a later
/// run can tell the leftovers of a dead gate from those of one still running.
pub fn owner_token() -> String {
    let (host, boot) = host_and_boot();
    format!("{host}/{boot}/{}", std::process::id())
}

/// True when `token` ([`owner_token`]) names a gate process of this machine that no longer
/// runs: another boot, or a pid that is gone. A token of another host is never called gone.
pub fn owner_is_gone(token: &str) -> bool {
    let mut parts = token.rsplitn(3, '/');
    let (Some(pid), Some(boot), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let (my_host, my_boot) = host_and_boot();
    host == my_host && (boot != my_boot || !is_alive(pid))
}

fn host_and_boot() -> (String, String) {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    (read("/proc/sys/kernel/hostname"), read("/proc/sys/kernel/random/boot_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_owner_is_told_from_a_live_one_and_from_another_host() {
        assert!(!owner_is_gone(&owner_token()), "this process runs");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let (host, boot) = host_and_boot();
        assert!(owner_is_gone(&format!("{host}/{boot}/{}", child.id())), "an exited process");
        assert!(owner_is_gone(&format!("{host}/another-boot/{}", std::process::id())), "before a reboot");
        assert!(!owner_is_gone(&format!("elsewhere/{boot}/{}", child.id())), "another host's engine objects are left alone");
        assert!(!owner_is_gone("garbage"));
    }

    #[test]
    fn the_current_process_is_sampled() {
        let me = std::process::id();
        assert_eq!(process_tree(me).first(), Some(&me));
        let s = sample_process_tree(me).expect("this process exists");
        assert!(s.memory_bytes > 1024 * 1024, "a test binary uses more than 1 MiB: {s:?}");
        assert!(is_alive(me));
    }

    #[test]
    fn a_child_is_part_of_the_tree_and_a_missing_pid_is_none() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let tree = process_tree(std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?} lacks {}", child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_alive(child.id()));
        assert_eq!(sample_process_tree(child.id()), None);
    }
}
