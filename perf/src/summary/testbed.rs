//! Testbeds: what a measurement can only be compared with.
//!
//! Latency measured with local processes and latency measured through Docker's networking
//! differ by tens of percent on the same code; so do two CPU models, a 2-core and an 8-core
//! runner, or a 30-second `--quick` suite and a full one. A baseline therefore belongs to a
//! testbed (Bencher's word): the backend, the host class (CPU model and count, memory class,
//! container runtime), the link to the databases the plan models (`[environment]
//! link_latency`: a run whose round trips to PostgreSQL cost 0.5 ms more each way is slower for
//! it, on the same code) and the suite length. Stored baselines live under
//! `results/baseline/<key>/<suite>.json`, and the gate only judges a run against a baseline of
//! its own testbed; anything else is "not comparable", never a failure.
//!
//! The key is short and readable (`local-2cpu-epyc-24g-link500us-quick`); the full facts travel
//! inside every summary (`run.testbed`). Pure: detection lives in `super::host`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Link;

/// How much faster or slower a host may be on the CPU calibration than the baseline's host,
/// as a fraction, and still count as the same testbed. Two machines of one cloud instance type
/// can differ by this much (steal time, another CPU stepping): their latencies do too.
pub const CPU_SCORE_TOLERANCE: f64 = 0.25;

/// The machine and set-up a run measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Testbed {
    /// `<backend>-<cpus>cpu-<cpu class>-<memory class>g[-link<latency>[-jitter<jitter>]][-quick][-<N>shards]`,
    /// e.g. `local-2cpu-epyc-24g` or `local-2cpu-epyc-24g-link500us`. Derived from the other
    /// fields by [`Testbed::new`], [`Testbed::with_link`] and [`Testbed::merged`].
    pub key: String,
    /// `local`, `docker` or `external`.
    pub backend: String,
    /// CPUs available to the gate's process.
    pub cpus: u32,
    /// `/proc/cpuinfo`'s model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// Total memory, GiB, rounded up to a common size (8, 16, 24, 32…).
    pub memory_gib: u32,
    /// The container engine the services ran in (`docker 28.2.2`); none for local processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `--quick`: suites shrunk to 30 s.
    pub quick: bool,
    /// Single-core calibration: SHA-256 MB/s over CPU time, best of five rounds. Two hosts
    /// of one class whose scores differ by more than [`CPU_SCORE_TOLERANCE`] are not
    /// compared (not part of the key: it varies a little from run to run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_score: Option<f64>,
    /// A run merged from this many shards (`cargo perf merge`), each on a machine of this
    /// class: the load of N machines is compared only with the load of N machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// The link to the databases the run modelled (`[environment] link_latency`), in whole
    /// microseconds each way; absent when the app reached them directly. Since minor 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_latency_us: Option<u64>,
    /// Its jitter (`link_jitter`), absent when none. Since minor 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_jitter_us: Option<u64>,
}

impl Testbed {
    /// A testbed from its facts; the key is derived from them.
    pub fn new(
        backend: &str,
        cpus: u32,
        cpu_model: Option<String>,
        memory_gib: u32,
        runtime: Option<String>,
        quick: bool,
        cpu_score: Option<f64>,
    ) -> Testbed {
        let mut t = Testbed {
            key: String::new(),
            backend: backend.to_string(),
            cpus,
            cpu_model,
            memory_gib,
            runtime,
            quick,
            cpu_score,
            shards: None,
            link_latency_us: None,
            link_jitter_us: None,
        };
        t.key = t.derived_key();
        t
    }

    /// This testbed with the link to the databases a run models (`None`: direct connections).
    /// The key says it (`-link500us`, `-link1ms-jitter200us`): a baseline measured with another
    /// link, or none, is not comparable.
    pub fn with_link(mut self, link: Option<Link>) -> Testbed {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.link_latency_us = link.map(|l| us(l.latency));
        self.link_jitter_us = link.filter(|l| !l.jitter.is_zero()).map(|l| us(l.jitter));
        self.key = self.derived_key();
        self
    }

    /// The link to the databases this testbed modelled, if any.
    pub fn link(&self) -> Option<Link> {
        let latency = Duration::from_micros(self.link_latency_us?);
        Some(Link { latency, jitter: Duration::from_micros(self.link_jitter_us.unwrap_or(0)) })
    }

    /// The key the fields make (see [`Testbed::key`]).
    fn derived_key(&self) -> String {
        let mut key = format!("{}-{}cpu-{}-{}g", self.backend, self.cpus, cpu_class(self.cpu_model.as_deref()), self.memory_gib);
        if let Some(link) = self.link() {
            key.push_str(&format!("-link{}", Link::key_part(link.latency)));
            if !link.jitter.is_zero() {
                key.push_str(&format!("-jitter{}", Link::key_part(link.jitter)));
            }
        }
        if self.quick {
            key.push_str("-quick");
        }
        if let Some(n) = self.shards {
            key.push_str(&format!("-{n}shards"));
        }
        key
    }

    /// The testbed of a run merged from `count` shards measured on `self`'s class of machine:
    /// `<key>-<count>shards`. Three 2-core machines sending a third of the load each are not one
    /// 2-core machine sending all of it, nor two sending half: a merged run's baseline is a
    /// merged run with as many shards.
    pub fn merged(&self, count: u32) -> Testbed {
        let base = match self.shards {
            Some(n) => self.key.strip_suffix(&format!("-{n}shards")).unwrap_or(&self.key),
            None => &self.key,
        };
        Testbed { key: format!("{base}-{count}shards"), shards: Some(count), ..self.clone() }
    }

    /// Why a run on `self` cannot be judged against a baseline recorded on `base`; `None`
    /// when they are the same testbed.
    pub fn mismatch(&self, base: &Testbed) -> Option<String> {
        if self.key != base.key {
            let mut why = format!("the baseline was recorded on testbed {}, this run is on {}", base.key, self.key);
            let (here, there) = (self.link(), base.link());
            if here != there {
                let say = |l: Option<Link>| l.map_or_else(|| "none (direct connections)".to_string(), |l| l.describe());
                why.push_str(&format!(
                    " (the link to the databases: {} in the baseline, {} in this run; round trips cost what the link says)",
                    say(there),
                    say(here)
                ));
            }
            return Some(why);
        }
        if let (Some(here), Some(there)) = (self.cpu_score, base.cpu_score)
            && there > 0.0
        {
            let change = here / there - 1.0;
            if change.abs() > CPU_SCORE_TOLERANCE {
                let how = if change < 0.0 { "slower" } else { "faster" };
                return Some(format!(
                    "same testbed {}, but this host is {:.0}% {how} on the CPU calibration ({here:.0} vs {there:.0} MB/s): another machine of the class, not comparable",
                    self.key,
                    change.abs() * 100.0
                ));
            }
        }
        None
    }
}

/// A short, readable name for a CPU model: vendor and marketing words dropped, the family and
/// the model number kept. `AMD EPYC 7763 64-Core Processor` → `epyc-7763`,
/// `Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz` → `xeon-8370c`, unknown → `cpu`.
pub fn cpu_class(model: Option<&str>) -> String {
    const NOISE: &[&str] = &["amd", "intel", "processor", "cpu", "(r)", "(tm)", "genuine", "authentic"];
    let Some(model) = model else { return "cpu".into() };
    let lowered = model.to_ascii_lowercase().replace("(r)", " ").replace("(tm)", " ");
    let words: Vec<String> = lowered
        .split(|c: char| c.is_whitespace() || c == ',')
        .take_while(|w| *w != "@")
        .filter(|w| !w.is_empty() && !NOISE.contains(w) && !w.ends_with("-core") && !w.ends_with("ghz"))
        .map(|w| w.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let Some(family) = words.first() else { return "cpu".into() };
    match words.iter().skip(1).rev().find(|w| w.chars().any(|c| c.is_ascii_digit())) {
        Some(number) => format!("{family}-{number}"),
        None => family.clone(),
    }
}

/// Total memory as a common size in GiB: the smallest of 1, 2, 4, 8, 12, 16, 24, 32, 48, 64,
/// 96, 128… that holds `bytes` (the kernel reports a little less than the machine has).
pub fn memory_class(bytes: u64) -> u32 {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let mut size = 1u32;
    let mut sizes = vec![1u32, 2];
    while size < 1 << 16 {
        size *= 2;
        sizes.push(size);
        if size >= 8 {
            sizes.push(size + size / 2);
        }
    }
    sizes.sort_unstable();
    sizes.into_iter().find(|s| f64::from(*s) >= gib).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_classes_keep_family_and_model_number() {
        assert_eq!(cpu_class(Some("AMD EPYC 7763 64-Core Processor")), "epyc-7763");
        assert_eq!(cpu_class(Some("AMD EPYC")), "epyc");
        assert_eq!(cpu_class(Some("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz")), "xeon-8370c");
        assert_eq!(cpu_class(Some("Intel(R) Core(TM) i7-1165G7 @ 2.80GHz")), "core-i7-1165g7");
        assert_eq!(cpu_class(Some("Apple M2")), "apple-m2");
        assert_eq!(cpu_class(Some("   ")), "cpu");
        assert_eq!(cpu_class(None), "cpu");
    }

    #[test]
    fn memory_rounds_up_to_a_common_size() {
        let gib = |g: f64| (g * (1u64 << 30) as f64) as u64;
        assert_eq!(memory_class(gib(22.9)), 24);
        assert_eq!(memory_class(gib(15.6)), 16);
        assert_eq!(memory_class(gib(7.7)), 8);
        assert_eq!(memory_class(gib(0.5)), 1);
        assert_eq!(memory_class(gib(33.0)), 48);
    }

    #[test]
    fn key_names_backend_host_class_and_length() {
        let t = Testbed::new("local", 2, Some("AMD EPYC".into()), 24, None, false, None);
        assert_eq!(t.key, "local-2cpu-epyc-24g");
        let q = Testbed::new("docker", 4, Some("AMD EPYC 7763 64-Core Processor".into()), 16, Some("docker 28.2.2".into()), true, None);
        assert_eq!(q.key, "docker-4cpu-epyc-7763-16g-quick");
    }

    #[test]
    fn another_key_or_a_much_slower_host_does_not_match() {
        let here = Testbed::new("docker", 2, Some("AMD EPYC".into()), 24, None, false, Some(400.0));
        let local = Testbed::new("local", 2, Some("AMD EPYC".into()), 24, None, false, Some(400.0));
        let why = here.mismatch(&local).expect("other backend");
        assert!(why.contains("local-2cpu-epyc-24g") && why.contains("docker-2cpu-epyc-24g"), "{why}");
        assert_eq!(here.mismatch(&here.clone()), None);
        let close = Testbed { cpu_score: Some(340.0), ..here.clone() };
        assert_eq!(here.mismatch(&close), None, "15% apart is one class");
        let slow = Testbed { cpu_score: Some(600.0), ..here.clone() };
        let why = here.mismatch(&slow).expect("a third slower");
        assert!(why.contains("33% slower"), "{why}");
        let unknown = Testbed { cpu_score: None, ..here.clone() };
        assert_eq!(here.mismatch(&unknown), None, "no score recorded: the key decides");
    }

    #[test]
    fn the_link_to_the_databases_is_in_the_key_and_another_link_is_not_comparable() {
        let link = |latency_us: u64, jitter_us: u64| {
            Some(Link { latency: Duration::from_micros(latency_us), jitter: Duration::from_micros(jitter_us) })
        };
        let direct = Testbed::new("local", 2, Some("AMD EPYC".into()), 24, None, false, Some(400.0));
        let half = direct.clone().with_link(link(500, 0));
        assert_eq!(half.key, "local-2cpu-epyc-24g-link500us");
        assert_eq!((half.link_latency_us, half.link_jitter_us), (Some(500), None));
        assert_eq!(half.link(), link(500, 0));
        let quick = Testbed::new("docker", 2, Some("AMD EPYC".into()), 24, None, true, None).with_link(link(1000, 200));
        assert_eq!(quick.key, "docker-2cpu-epyc-24g-link1ms-jitter200us-quick");
        assert_eq!(half.merged(3).key, "local-2cpu-epyc-24g-link500us-3shards");
        assert_eq!(half.clone().with_link(None), direct, "no link: the testbed of direct connections");

        let why = half.mismatch(&direct).expect("a link against none");
        assert!(why.contains("recorded on testbed local-2cpu-epyc-24g, this run is on local-2cpu-epyc-24g-link500us"), "{why}");
        assert!(why.contains("none (direct connections) in the baseline, 0.5 ms each way in this run"), "{why}");
        let why = half.mismatch(&direct.clone().with_link(link(1000, 0))).expect("another link");
        assert!(why.contains("1 ms each way in the baseline, 0.5 ms each way in this run"), "{why}");
        assert_eq!(half.mismatch(&half.clone()), None);

        // Summaries written before links read as direct connections; a link survives the trip.
        assert!(serde_json::to_value(&direct).unwrap().get("link_latency_us").is_none());
        let back: Testbed = serde_json::from_value(serde_json::to_value(&quick).unwrap()).unwrap();
        assert_eq!(back, quick);
    }

    #[test]
    fn a_merged_run_matches_only_merged_runs_of_as_many_shards() {
        let shard = Testbed::new("external", 2, Some("AMD EPYC".into()), 24, None, false, Some(400.0));
        let three = shard.merged(3);
        assert_eq!(three.key, "external-2cpu-epyc-24g-3shards");
        assert_eq!(three.shards, Some(3));
        assert_eq!(three.merged(3), three, "merging a merged run again keeps one suffix");
        assert_eq!(three.merged(2).key, "external-2cpu-epyc-24g-2shards");
        assert!(three.mismatch(&shard).is_some(), "one machine's run is not three machines'");
        assert!(three.mismatch(&shard.merged(2)).is_some());
        assert_eq!(three.mismatch(&shard.merged(3)), None);
    }
}
