//! Consecutive runs of one suite as one summary: the side of an A/B comparison, measured as
//! interleaved segments (base, head, head, base, …), becomes the summary one run of that side
//! would have written, with one segment per run, in the order they ran.
//!
//! Exact where the data allows, as the shards' merge is: counts summed, HDR histograms added
//! and every percentile read from the sum, SLOs judged again. The runs are laid end to end:
//! windows and samples move by the seconds measured before them (whole seconds, so no two
//! windows share one). What the databases did is summed statement by statement and command
//! by command; the machine's load is the time-weighted mean of the runs'.

use std::collections::BTreeMap;

use super::merge::{MergeError, merge_endpoint, merge_windows};
use super::model::{
    EndpointSegment, EndpointSummary, Profile, RedisStats, ResourceUsage, ScenarioSummary, Statement, Statements, Summary, Underneath,
};
use super::slo;
use crate::engine::{BEHIND_SCHEDULE, behind_schedule};
use crate::util::machine::MachineLoad;

/// The runs `parts` (at least one, of one suite, in the order they ran) as one summary.
pub fn concat(parts: &[Summary]) -> Result<Summary, MergeError> {
    concat_with(parts, false)
}

/// Passes of one side of an A/B (each already [`concat`]enated from its segments, in the order
/// they ran), or a suite's runs one after the other, as one summary whose segments are every
/// pass's, in order: the pairs of the second pass follow those of the first.
pub fn concat_passes(passes: &[Summary]) -> Result<Summary, MergeError> {
    concat_with(passes, true)
}

/// `keep_segments`: each part's own segments are kept (moved by the part's offset) instead of
/// the part becoming one segment.
fn concat_with(parts: &[Summary], keep_segments: bool) -> Result<Summary, MergeError> {
    let Some(first) = parts.first() else {
        return Err(MergeError("no run to put together".into()));
    };
    let offsets: Vec<f64> = parts
        .iter()
        .scan(0.0, |at, s| {
            let start = *at;
            *at += s.run.duration_s.ceil();
            Some(start)
        })
        .collect();
    let duration_s: f64 = parts.iter().map(|s| s.run.duration_s).sum();
    let mut endpoints = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = parts.iter().flat_map(|s| s.endpoints.keys()).collect();
    for name in names {
        let present: Vec<(&EndpointSummary, f64)> =
            parts.iter().zip(&offsets).filter_map(|(s, off)| s.endpoints.get(name).map(|e| (e, *off))).collect();
        let mut e = merge_endpoint(name, &present, duration_s)?;
        e.segments = if keep_segments {
            parts.iter().zip(&offsets).flat_map(|(s, off)| segments_of(s.endpoints.get(name), *off)).collect()
        } else {
            parts.iter().zip(&offsets).map(|(s, off)| segment(s.endpoints.get(name), *off, s.run.duration_s)).collect()
        };
        endpoints.insert(name.clone(), e);
    }
    let scenarios = scenarios(parts);
    let invalid_reasons = invalid_reasons(parts, &scenarios);
    let mut run = first.run.clone();
    run.duration_s = duration_s;
    let slo = slo::reevaluate(&first.slo, &endpoints);
    Ok(Summary {
        valid: invalid_reasons.is_empty(),
        invalid_reasons,
        scenarios,
        windows: merge_windows(parts.iter().zip(&offsets).map(|(s, off)| (s.windows.as_slice(), *off))),
        endpoints,
        slo,
        resources: resources(parts, &offsets),
        app_metrics: match (first.app_metrics.as_ref(), parts.last().and_then(|s| s.app_metrics.as_ref())) {
            (Some(a), Some(b)) => Some(super::model::AppMetrics { before: a.before.clone(), after: b.after.clone() }),
            _ => None,
        },
        underneath: underneath(parts),
        machine: machine(parts),
        profile: profile(parts),
        ..Summary::new(first.suite.clone(), first.kind.clone(), run)
    })
}

/// Why the runs together cannot be trusted: each run's own reasons, except falling behind
/// schedule, which is judged again over all the runs' starts (the rule a single run of that
/// length would meet: three late starts in one run of three seconds are a moment of the
/// machine's, and in an A/B pair they fall on one side of one pair).
fn invalid_reasons(parts: &[Summary], scenarios: &BTreeMap<String, ScenarioSummary>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in parts.iter().enumerate() {
        out.extend(s.invalid_reasons.iter().filter(|r| !r.contains(BEHIND_SCHEDULE)).map(|r| format!("segment {}: {r}", i + 1)));
        if !s.valid && s.invalid_reasons.is_empty() {
            out.push(format!("segment {} is invalid", i + 1));
        }
    }
    for (name, sc) in scenarios {
        let made = sc.iterations + sc.interrupted_iterations;
        if let Some(reason) = behind_schedule(name, sc.late_starts, sc.dropped_iterations, made + sc.dropped_iterations, None) {
            out.push(format!("over its {} segments, {reason}", parts.len()));
        }
    }
    out
}

/// One run's part of an endpoint as a segment (empty when the endpoint sent nothing then).
fn segment(e: Option<&EndpointSummary>, t: f64, seconds: f64) -> EndpointSegment {
    match e {
        Some(e) => EndpointSegment { t, seconds, requests: e.requests, errors: e.errors.total, histogram: e.histogram.clone() },
        None => EndpointSegment { t, seconds, requests: 0, errors: 0, histogram: String::new() },
    }
}

/// A pass's segments of an endpoint, moved by `t` (none when the endpoint sent nothing then).
fn segments_of(e: Option<&EndpointSummary>, t: f64) -> Vec<EndpointSegment> {
    e.map(|e| e.segments.iter().map(|s| EndpointSegment { t: s.t + t, ..s.clone() }).collect()).unwrap_or_default()
}

/// Schedule keeping summed over the runs; the most users any run had at once.
fn scenarios(parts: &[Summary]) -> BTreeMap<String, ScenarioSummary> {
    let mut out: BTreeMap<String, ScenarioSummary> = BTreeMap::new();
    for (name, sc) in parts.iter().flat_map(|s| &s.scenarios) {
        let into = out.entry(name.clone()).or_insert_with(|| ScenarioSummary {
            executor: sc.executor.clone(),
            iterations: 0,
            dropped_iterations: 0,
            late_starts: 0,
            interrupted_iterations: 0,
            aborted_iterations: 0,
            max_vus: 0,
        });
        into.iterations += sc.iterations;
        into.dropped_iterations += sc.dropped_iterations;
        into.late_starts += sc.late_starts;
        into.interrupted_iterations += sc.interrupted_iterations;
        into.aborted_iterations += sc.aborted_iterations;
        into.max_vus = into.max_vus.max(sc.max_vus);
    }
    out
}

/// Each service's CPU summed over the runs, its peak memory, and its series end to end.
fn resources(parts: &[Summary], offsets: &[f64]) -> BTreeMap<String, ResourceUsage> {
    let mut out: BTreeMap<String, ResourceUsage> = BTreeMap::new();
    for (s, off) in parts.iter().zip(offsets) {
        for (service, r) in &s.resources {
            let into = out.entry(service.clone()).or_default();
            let before = into.cpu_seconds;
            into.cpu_series.extend(r.cpu_series.iter().map(|[t, cpu]| [t + off, cpu + before]));
            into.cpu_seconds += r.cpu_seconds;
            into.peak_memory_bytes = into.peak_memory_bytes.max(r.peak_memory_bytes);
            into.memory_series.extend(&r.memory_series);
        }
    }
    out
}

/// The app's profile over all the runs: samples and requests added stack by stack, bounded
/// again. A run without a profile leaves the side without one (its requests were not
/// sampled), with the first run's reason.
fn profile(parts: &[Summary]) -> Option<Profile> {
    let all: Vec<&Profile> = parts.iter().filter_map(|s| s.profile.as_ref()).collect();
    let first = *all.first()?;
    if let Some(missing) = all.iter().find(|p| p.unavailable.is_some()) {
        return Some(Profile::unavailable(missing.unavailable.clone().unwrap_or_default()));
    }
    if all.len() < parts.len() {
        return Some(Profile::unavailable(format!("{} of {} runs were not profiled", parts.len() - all.len(), parts.len())));
    }
    let mut out = Profile { hz: first.hz, ..Profile::default() };
    for p in all {
        out.requests += p.requests;
        out.samples += p.samples;
        out.stacks_left_out += p.stacks_left_out;
        out.samples_left_out += p.samples_left_out;
        for (stack, n) in &p.stacks {
            *out.stacks.entry(stack.clone()).or_default() += n;
        }
    }
    out.bound();
    Some(out)
}

/// What the databases did over all the runs: statements and commands summed.
fn underneath(parts: &[Summary]) -> Option<Underneath> {
    let all: Vec<&Underneath> = parts.iter().filter_map(|s| s.underneath.as_ref()).collect();
    let first = *all.first()?;
    let postgres = all.iter().filter_map(|u| u.postgres.as_ref()).fold(None, |acc: Option<Statements>, p| Some(add_statements(acc, p)));
    let redis = all.iter().filter_map(|u| u.redis.as_ref()).fold(None, |acc: Option<RedisStats>, r| {
        // Measured parts only when every run's were.
        let from_measured_start = acc.as_ref().is_none_or(|a| a.from_measured_start) && r.from_measured_start;
        let mut into = acc.unwrap_or_default();
        into.from_measured_start = from_measured_start;
        for (cmd, c) in &r.commands {
            let e = into.commands.entry(cmd.clone()).or_default();
            e.calls += c.calls;
            e.usec += c.usec;
        }
        into.keyspace_hits += r.keyspace_hits;
        into.keyspace_misses += r.keyspace_misses;
        Some(into)
    });
    Some(Underneath {
        postgres_unavailable: if postgres.is_none() { first.postgres_unavailable.clone() } else { None },
        redis_unavailable: if redis.is_none() { first.redis_unavailable.clone() } else { None },
        postgres,
        redis,
    })
}

fn add_statements(acc: Option<Statements>, p: &Statements) -> Statements {
    let from_measured_start = acc.as_ref().is_none_or(|a| a.from_measured_start) && p.from_measured_start;
    let mut into = acc.unwrap_or_default();
    into.from_measured_start = from_measured_start;
    for st in &p.top {
        match into.top.iter_mut().find(|x| x.query == st.query) {
            Some(x) => add_statement(x, st),
            None => into.top.push(st.clone()),
        }
    }
    into.top.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms).then_with(|| a.query.cmp(&b.query)));
    into.top.truncate(Statements::MAX_KEPT);
    into.total_calls += p.total_calls;
    into.total_exec_ms += p.total_exec_ms;
    into.count = into.count.max(p.count);
    into.activity_samples += p.activity_samples;
    into
}

fn add_statement(x: &mut Statement, st: &Statement) {
    x.calls += st.calls;
    x.total_ms += st.total_ms;
    x.mean_ms = if x.calls > 0 { x.total_ms / x.calls as f64 } else { 0.0 };
    x.rows += st.rows;
    x.shared_blks_hit += st.shared_blks_hit;
    x.shared_blks_read += st.shared_blks_read;
    x.temp_blks += st.temp_blks;
    if x.plan.is_empty() && !st.plan.is_empty() {
        x.plan = st.plan.clone();
        x.plan_unavailable = None;
    }
    for (app, n) in &st.seen_under {
        *x.seen_under.entry(app.clone()).or_default() += n;
    }
}

/// The machine over all the runs: each figure averaged, weighted by the run's window.
fn machine(parts: &[Summary]) -> Option<MachineLoad> {
    let loads: Vec<&MachineLoad> = parts.iter().filter_map(|s| s.machine.as_ref()).collect();
    let first = *loads.first()?;
    let window: f64 = loads.iter().map(|m| m.window_s).sum();
    let mean = |f: fn(&MachineLoad) -> f64| if window > 0.0 { loads.iter().map(|m| f(m) * m.window_s).sum::<f64>() / window } else { 0.0 };
    Some(MachineLoad {
        cpus: first.cpus,
        window_s: window,
        busy_cores: mean(|m| m.busy_cores),
        run_cores: mean(|m| m.run_cores),
        foreign_cores: mean(|m| m.foreign_cores),
        steal_cores: mean(|m| m.steal_cores),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::hist;

    fn run(values_us: &[u64], errors: u64, seconds: f64) -> Summary {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        values_us.iter().for_each(|v| h.record(*v).unwrap());
        let g = crate::compare::testkit::Gen::new(0, seconds as u32, 1.0, 1);
        let mut s = crate::compare::testkit::one("s", "e", &g);
        s.run.duration_s = seconds;
        let e = s.endpoints.get_mut("e").unwrap();
        e.requests = values_us.len() as u64 + errors;
        e.errors.total = errors;
        e.histogram = hist::encode(&h);
        s
    }

    #[test]
    fn the_profiles_of_the_runs_add_up_stack_by_stack_and_a_missing_one_says_why() {
        let profile = |requests: u64, stacks: &[(&str, u64)]| Profile {
            hz: 99,
            requests,
            samples: stacks.iter().map(|(_, n)| n).sum(),
            stacks: stacks.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            ..Profile::default()
        };
        let mut parts = vec![run(&[1000], 0, 5.0), run(&[2000], 0, 5.0)];
        parts[0].profile = Some(profile(100, &[("a;x", 3), ("a;y", 1)]));
        parts[1].profile = Some(profile(150, &[("a;x", 2)]));
        let p = concat(&parts).unwrap().profile.unwrap();
        assert_eq!((p.requests, p.samples, p.hz), (250, 6, 99));
        assert_eq!(p.stacks, [("a;x".to_string(), 5), ("a;y".to_string(), 1)].into());
        parts[1].profile = Some(Profile::unavailable("perf is not installed"));
        assert_eq!(concat(&parts).unwrap().profile.unwrap().unavailable.as_deref(), Some("perf is not installed"));
        parts[1].profile = None;
        assert!(concat(&parts).unwrap().profile.unwrap().unavailable.unwrap().contains("1 of 2 runs were not profiled"));
    }

    #[test]
    fn a_profile_keeps_its_most_sampled_stacks_and_counts_the_rest() {
        let mut p =
            Profile { stacks: (0..Profile::MAX_STACKS as u64 + 2).map(|i| (format!("s{i}"), i + 1)).collect(), ..Profile::default() };
        p.bound();
        assert_eq!(p.stacks.len(), Profile::MAX_STACKS);
        assert_eq!((p.stacks_left_out, p.samples_left_out), (2, 3), "the two least sampled: 1 and 2");
    }

    #[test]
    fn consecutive_runs_add_up_and_each_is_one_segment() {
        let parts = vec![run(&[1000, 2000], 0, 5.0), run(&[3000], 1, 5.0), run(&[4000, 5000, 6000], 0, 4.5)];
        let all = concat(&parts).unwrap();
        let e = &all.endpoints["e"];
        assert_eq!(e.requests, 7);
        assert_eq!(e.errors.total, 1);
        assert_eq!(all.run.duration_s, 14.5);
        assert_eq!(e.latency_ms.max.map(|m| m.round()), Some(6.0), "percentiles are read from the added histograms");
        assert_eq!(e.latency_ms.p50.map(|m| m.round()), Some(3.0), "the 3rd of 6 timed requests");
        let segs: Vec<(f64, u64)> = e.segments.iter().map(|s| (s.t, s.requests)).collect();
        assert_eq!(segs, vec![(0.0, 2), (5.0, 2), (10.0, 3)]);
        assert_eq!(hist::decode(&e.segments[2].histogram).unwrap().len(), 3);
    }

    #[test]
    fn passes_keep_every_segment_in_the_order_they_ran() {
        let pass = |a: &[u64], b: &[u64]| concat(&[run(a, 0, 5.0), run(b, 0, 5.0)]).unwrap();
        let all = concat_passes(&[pass(&[1000], &[2000, 3000]), pass(&[4000], &[5000])]).unwrap();
        let e = &all.endpoints["e"];
        assert_eq!(e.requests, 5);
        assert_eq!(all.run.duration_s, 20.0);
        let segs: Vec<(f64, u64)> = e.segments.iter().map(|s| (s.t, s.requests)).collect();
        assert_eq!(segs, vec![(0.0, 1), (5.0, 2), (10.0, 1), (15.0, 1)], "the second pass's pairs follow the first's");
        assert_eq!(e.latency_ms.max.map(|m| m.round()), Some(5.0));
    }

    fn behind(mut s: Summary, iterations: u64, late: u64) -> Summary {
        let sc = ScenarioSummary {
            executor: "constant-arrival-rate".into(),
            iterations,
            dropped_iterations: 0,
            late_starts: late,
            interrupted_iterations: 0,
            aborted_iterations: 0,
            max_vus: 2,
        };
        s.scenarios.insert("reads".into(), sc);
        if let Some(r) = crate::engine::behind_schedule("reads", late, 0, iterations, Some(std::time::Duration::from_millis(10))) {
            s.invalid_reasons.push(r);
            s.valid = false;
        }
        s
    }

    #[test]
    fn schedule_keeping_is_judged_over_all_the_runs_other_reasons_per_run() {
        // One run of 120 starts with 3 late is invalid alone; over four such runs, 3 of 480 is not.
        let mut parts = vec![behind(run(&[1000], 0, 3.0), 120, 3), behind(run(&[1000], 0, 3.0), 120, 0)];
        parts.extend([behind(run(&[1000], 0, 3.0), 120, 0), behind(run(&[1000], 0, 3.0), 120, 0)]);
        assert!(!parts[0].valid);
        let all = concat(&parts).unwrap();
        assert!(all.valid, "{:?}", all.invalid_reasons);
        assert_eq!(all.scenarios["reads"].late_starts, 3);
        // Late in every run: behind schedule over the side too, said once.
        let late: Vec<Summary> = (0..4).map(|_| behind(run(&[1000], 0, 3.0), 120, 3)).collect();
        let all = concat(&late).unwrap();
        assert!(!all.valid);
        assert_eq!(all.invalid_reasons.len(), 1, "{:?}", all.invalid_reasons);
        assert!(
            all.invalid_reasons[0].starts_with("over its 4 segments, scenario `reads` fell behind schedule: 12 of 480"),
            "{:?}",
            all.invalid_reasons
        );
        // Any other reason stays, named by its run.
        let mut other = parts.clone();
        other[2].invalid_reasons.push("chaos action `stop redis` failed".into());
        other[2].valid = false;
        let all = concat(&other).unwrap();
        assert_eq!(all.invalid_reasons, vec!["segment 3: chaos action `stop redis` failed".to_string()]);
    }
}
