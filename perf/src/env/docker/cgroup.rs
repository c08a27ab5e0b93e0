//! A container's CPU and memory read from its control group's files on this host, the way
//! cAdvisor does: a few reads of `/sys/fs/cgroup` cost microseconds, where the engine's
//! one-shot stats call takes about a second (it waits for a second CPU reading). An A/B run
//! samples every container before and after each of its ~24 segments, so the engine's call
//! alone added seconds per segment.
//!
//! Only when the gate sees the container's processes: the control group named in
//! `/proc/<pid>/cgroup` of the container's main process must carry the container's id (a gate
//! in another PID namespace, or a remote engine, sees another process or none under that pid,
//! and falls back to the engine's stats). cgroup v1 (`cpuacct`, `memory` hierarchies) and v2
//! (the unified hierarchy) alike.

use std::path::{Path, PathBuf};

use crate::env::types::ResourceSample;

/// Where the cgroup hierarchies are mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// Cumulative CPU seconds and current memory (usage less inactive file cache, as `docker
/// stats` shows it) of the control group of process `pid`, which must belong to container
/// `id`; `None` when the files cannot be read or belong to something else.
pub fn sample(pid: u32, id: &str) -> Option<ResourceSample> {
    let listing = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    sample_at(Path::new(ROOT), &listing, id)
}

/// [`sample`] with the hierarchies under `root` and `/proc/<pid>/cgroup`'s text given.
pub fn sample_at(root: &Path, listing: &str, id: &str) -> Option<ResourceSample> {
    let files = Files::find(root, listing, id)?;
    files.read()
}

/// The files of one control group that hold its CPU time and memory.
#[derive(Debug, PartialEq)]
enum Files {
    V1 { cpuacct: PathBuf, memory: PathBuf },
    V2 { group: PathBuf },
}

impl Files {
    /// From `/proc/<pid>/cgroup` (`hierarchy:controllers:path` per line): the v1 `cpuacct`
    /// and `memory` hierarchies when both are there, else the unified one (`0::path`).
    fn find(root: &Path, listing: &str, id: &str) -> Option<Files> {
        if id.len() < 12 {
            return None;
        }
        let mut cpuacct = None;
        let mut memory = None;
        let mut unified = None;
        for line in listing.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if !path.contains(id) {
                continue;
            }
            let relative = path.trim_start_matches('/');
            if controllers.is_empty() {
                unified = Some(relative.to_string());
                continue;
            }
            let names: Vec<&str> = controllers.split(',').collect();
            if names.contains(&"cpuacct") {
                cpuacct = Some(root.join(controllers).join(relative));
            }
            if names.contains(&"memory") {
                memory = Some(root.join(controllers).join(relative));
            }
        }
        if let (Some(cpuacct), Some(memory)) = (cpuacct, memory) {
            return Some(Files::V1 { cpuacct, memory });
        }
        let relative = unified?;
        // The unified hierarchy is the root itself on a v2 host, `unified/` on a hybrid one.
        [root.join(&relative), root.join("unified").join(&relative)]
            .into_iter()
            .find(|g| g.join("cpu.stat").is_file())
            .map(|group| Files::V2 { group })
    }

    fn read(&self) -> Option<ResourceSample> {
        let (cpu_ns, usage, stat, inactive_key) = match self {
            Files::V1 { cpuacct, memory } => (
                read_number(&cpuacct.join("cpuacct.usage"))?,
                read_number(&memory.join("memory.usage_in_bytes"))?,
                std::fs::read_to_string(memory.join("memory.stat")).ok()?,
                "total_inactive_file",
            ),
            Files::V2 { group } => {
                let cpu = std::fs::read_to_string(group.join("cpu.stat")).ok()?;
                let usec = stat_value(&cpu, "usage_usec")?;
                (
                    usec.saturating_mul(1000),
                    read_number(&group.join("memory.current"))?,
                    std::fs::read_to_string(group.join("memory.stat")).ok()?,
                    "inactive_file",
                )
            }
        };
        let inactive = stat_value(&stat, inactive_key).unwrap_or(0);
        Some(ResourceSample { cpu_seconds: cpu_ns as f64 / 1e9, memory_bytes: usage.saturating_sub(inactive) })
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` per line file (`memory.stat`, `cpu.stat`).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "03372b7483310cfa6bc07d9d599ed524877d26717005e44d76c95fd3623c25d8";

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn v1_hierarchies_give_cpu_and_memory_less_inactive_cache() {
        let root = tempfile::tempdir().unwrap();
        let group = format!("docker/{ID}");
        write(&root.path().join("cpu,cpuacct").join(&group).join("cpuacct.usage"), "2500000000\n");
        write(&root.path().join("memory").join(&group).join("memory.usage_in_bytes"), "10000\n");
        write(&root.path().join("memory").join(&group).join("memory.stat"), "cache 5\ninactive_file 7\ntotal_inactive_file 4000\n");
        let listing = format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n2:cpu,cpuacct:/docker/{ID}\n0::/docker/{ID}\n");
        let s = sample_at(root.path(), &listing, ID).unwrap();
        assert_eq!(s.cpu_seconds, 2.5);
        assert_eq!(s.memory_bytes, 6000);
    }

    #[test]
    fn v2_unified_hierarchy_at_the_root_or_under_unified() {
        for under in ["", "unified"] {
            let root = tempfile::tempdir().unwrap();
            let group = root.path().join(under).join(format!("system.slice/docker-{ID}.scope"));
            write(&group.join("cpu.stat"), "usage_usec 1500000\nuser_usec 1000000\n");
            write(&group.join("memory.current"), "9000\n");
            write(&group.join("memory.stat"), "anon 100\ninactive_file 1000\n");
            let listing = format!("0::/system.slice/docker-{ID}.scope\n");
            let s = sample_at(root.path(), &listing, ID).unwrap();
            assert_eq!(s.cpu_seconds, 1.5, "under {under:?}");
            assert_eq!(s.memory_bytes, 8000);
        }
    }

    #[test]
    fn a_process_of_another_container_or_none_gives_nothing() {
        let root = tempfile::tempdir().unwrap();
        let other = "ffffffffffff0cfa6bc07d9d599ed524877d26717005e44d76c95fd3623c25d8";
        let group = root.path().join(format!("docker/{other}"));
        write(&group.join("cpu.stat"), "usage_usec 1\n");
        write(&group.join("memory.current"), "1\n");
        write(&group.join("memory.stat"), "inactive_file 0\n");
        // The pid names another container's group (another PID namespace): not ours.
        assert_eq!(sample_at(root.path(), &format!("0::/docker/{other}\n"), ID), None);
        // Our group, but its files are not there (a remote engine): nothing, the API is asked.
        assert_eq!(sample_at(root.path(), &format!("0::/docker/{ID}\n"), ID), None);
        // An id too short to be a container's.
        assert_eq!(sample_at(root.path(), "0::/\n", ""), None);
    }
}
