//! Merging the summaries of a suite's shards (`--shard K/N` on N machines) into the one
//! summary a single machine sending all the load would have written, so that the normal gate
//! judges it.
//!
//! Exact where the data allows: requests, errors, statuses and bytes are summed; latency and
//! service-time HDR histograms are added (never an average of percentiles), and every
//! percentile is read from the sum; SLOs are judged again on the merged figures. Per-second
//! windows are merged by wall-clock second (each shard's start plus its window's offset,
//! rounded to the second): requests and errors are summed exactly, while a window's p50, p95
//! and p99 are the request-weighted mean of the shards' (the summary keeps no per-second
//! histogram); they draw charts and feed the per-window test, not the gate's percentiles.
//! Resource figures stay per shard, named `<service>@shard<K>`.
//!
//! Refused, naming the files: summaries of different plans or suites, two files claiming the
//! same shard, shard counts that disagree, a file that is not a shard. A missing shard makes
//! the merged summary invalid, naming the shards that are missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::build::latency;
use super::model::{
    EndpointSegment, EndpointSummary, EndpointWindow, Errors, MergedShard, ResourceUsage, RunInfo, ScenarioSummary, Shard, Summary, Window,
};
use super::{hist, slo};
use crate::util::machine::MachineLoad;

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

/// Merges one suite's shard summaries (`(file, summary)`, in any order).
pub fn merge(parts: &[(PathBuf, Summary)]) -> Result<Summary, MergeError> {
    let Some((_, first)) = parts.first() else {
        return Err(MergeError("no summary to merge".into()));
    };
    let (by_index, count) = shards_by_index(parts)?;
    let shards: Vec<&Summary> = by_index.values().map(|(_, s)| *s).collect();

    let starts: Vec<f64> = shards.iter().map(|s| start_secs(&s.run.started_at)).collect::<Result<_, _>>().map_err(MergeError)?;
    let t0 = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let end = shards.iter().zip(&starts).map(|(s, st)| st + s.run.duration_s).fold(f64::NEG_INFINITY, f64::max);
    let duration_s = (end - t0).max(0.0);
    let earliest = shards.iter().zip(&starts).min_by(|a, b| a.1.total_cmp(b.1)).map(|(s, _)| *s).expect("one shard at least");
    // Each shard's part on the merged timeline: its summary and its start's offset from t0.
    let offsets: Vec<(&Summary, f64)> = shards.iter().zip(&starts).map(|(s, st)| (*s, st - t0)).collect();

    let endpoints = merge_endpoints(&offsets, duration_s)?;
    let invalid_reasons = invalid_reasons(&by_index, count);
    let slo = slo::reevaluate(&earliest.slo, &endpoints);
    Ok(Summary {
        valid: invalid_reasons.is_empty(),
        invalid_reasons,
        endpoints,
        scenarios: merge_scenarios(&shards),
        windows: merge_windows(offsets.iter().map(|(s, offset)| (s.windows.as_slice(), *offset))),
        slo,
        resources: shard_resources(&by_index),
        machine: busiest_machine(&shards),
        ..Summary::new(first.suite.clone(), first.kind.clone(), merged_run(&earliest.run, duration_s, &by_index, count))
    })
}

/// The shards by their index (1 to the count), each with its file.
type ByIndex<'a> = BTreeMap<u32, (&'a PathBuf, &'a Summary)>;

/// The shards by their index, and how many the run was split into; refuses parts of different
/// suites or plans, shard counts that disagree, and two parts claiming one shard.
fn shards_by_index(parts: &[(PathBuf, Summary)]) -> Result<(ByIndex<'_>, u32), MergeError> {
    let (first_path, first) = &parts[0];
    let name = |p: &Path| p.display().to_string();
    let mut by_index: ByIndex<'_> = BTreeMap::new();
    let first_shard = shard_of(first_path, first)?;
    let count = first_shard.count;
    for (path, s) in parts {
        let shard = shard_of(path, s)?;
        if s.suite != first.suite {
            return Err(MergeError(format!("{} is suite `{}` but {} is suite `{}`", name(path), s.suite, name(first_path), first.suite)));
        }
        if s.run.plan_hash != first.run.plan_hash || s.run.suite_hash != first.run.suite_hash {
            return Err(MergeError(format!(
                "{} and {} were run from different plans (plan hash {} and {}): shards must run the same plan",
                name(first_path),
                name(path),
                short(&first.run.plan_hash),
                short(&s.run.plan_hash)
            )));
        }
        if shard.count != count {
            return Err(MergeError(format!(
                "{} says shard {}/{} but {} says shard {}/{}: the shard counts disagree",
                name(first_path),
                first_shard.index,
                count,
                name(path),
                shard.index,
                shard.count
            )));
        }
        if let Some((other, _)) = by_index.insert(shard.index, (path, s)) {
            return Err(MergeError(format!("{} and {} both claim shard {}/{count}", name(other), name(path), shard.index)));
        }
    }
    Ok((by_index, count))
}

/// Every endpoint any shard measured, merged over the shards that have it.
fn merge_endpoints(offsets: &[(&Summary, f64)], duration_s: f64) -> Result<BTreeMap<String, EndpointSummary>, MergeError> {
    let names: std::collections::BTreeSet<&String> = offsets.iter().flat_map(|(s, _)| s.endpoints.keys()).collect();
    let mut endpoints: BTreeMap<String, EndpointSummary> = BTreeMap::new();
    for ep in names {
        let present: Vec<(&EndpointSummary, f64)> =
            offsets.iter().filter_map(|(s, offset)| s.endpoints.get(ep).map(|e| (e, *offset))).collect();
        let mut merged = merge_endpoint(ep, &present, duration_s)?;
        merged.segments = segments_by_index(ep, present.iter().map(|(e, _)| e.segments.as_slice()))?;
        endpoints.insert(ep.clone(), merged);
    }
    Ok(endpoints)
}

/// The scenarios' schedule keeping, summed over the shards.
fn merge_scenarios(shards: &[&Summary]) -> BTreeMap<String, ScenarioSummary> {
    let mut scenarios: BTreeMap<String, ScenarioSummary> = BTreeMap::new();
    for s in shards {
        for (n, sc) in &s.scenarios {
            let into = scenarios.entry(n.clone()).or_insert_with(|| ScenarioSummary {
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
            // Each shard's own peak: their sum is the most users that were ever at once.
            into.max_vus += sc.max_vus;
        }
    }
    scenarios
}

/// Each shard's resources, kept apart as `<service>@shard<K>`.
fn shard_resources(by_index: &ByIndex<'_>) -> BTreeMap<String, ResourceUsage> {
    let mut resources: BTreeMap<String, ResourceUsage> = BTreeMap::new();
    for (i, s) in by_index {
        for (service, r) in &s.1.resources {
            resources.insert(format!("{service}@shard{i}"), r.clone());
        }
    }
    resources
}

/// Why the merged run cannot be trusted: missing shards first, then each shard's own reasons.
fn invalid_reasons(by_index: &ByIndex<'_>, count: u32) -> Vec<String> {
    let missing: Vec<String> = (1..=count).filter(|i| !by_index.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    let mut invalid_reasons = Vec::new();
    if !missing.is_empty() {
        let (noun, verb) = if missing.len() == 1 { ("shard", "is") } else { ("shards", "are") };
        invalid_reasons.push(format!("{noun} {} {verb} missing: the merged load is not the plan's", missing.join(", ")));
    }
    for (i, (_, s)) in by_index {
        invalid_reasons.extend(s.invalid_reasons.iter().map(|r| format!("shard {i}/{count}: {r}")));
        if !s.valid && s.invalid_reasons.is_empty() {
            invalid_reasons.push(format!("shard {i}/{count} is invalid"));
        }
    }
    invalid_reasons
}

/// The earliest shard's run, stretched over every shard's time, no longer a shard, and listing
/// the shards it was merged from.
fn merged_run(earliest: &RunInfo, duration_s: f64, by_index: &ByIndex<'_>, count: u32) -> RunInfo {
    let mut run = earliest.clone();
    run.duration_s = duration_s;
    run.shard = None;
    run.testbed = run.testbed.map(|t| {
        let mut t = t.merged(count);
        t.cpu_score = fastest_calibration(by_index).or(t.cpu_score);
        t
    });
    run.merged_from = by_index
        .iter()
        .map(|(i, (_, s))| MergedShard {
            index: *i,
            started_at: s.run.started_at.clone(),
            duration_s: s.run.duration_s,
            host: s.run.host.clone(),
            valid: s.valid,
        })
        .collect();
    run
}

/// The best CPU calibration among the shards: the machine class's speed. Shards that start on
/// one machine calibrate at the same moment and slow each other's calibration (by a third with
/// three shards on two cores); shards on machines of one class agree within tolerance anyway.
fn fastest_calibration(by_index: &ByIndex<'_>) -> Option<f64> {
    by_index.values().filter_map(|(_, s)| s.run.testbed.as_ref()?.cpu_score).reduce(f64::max)
}

/// The busiest shard's machine: a regression measured on any busy shard is not trusted.
fn busiest_machine(shards: &[&Summary]) -> Option<MachineLoad> {
    shards
        .iter()
        .filter_map(|s| s.machine.clone())
        .max_by(|a, b| (a.foreign_cores + a.steal_cores).total_cmp(&(b.foreign_cores + b.steal_cores)))
}

fn shard_of(path: &Path, s: &Summary) -> Result<Shard, MergeError> {
    match s.run.shard {
        Some(sh) if sh.index >= 1 && sh.index <= sh.count => Ok(sh),
        Some(sh) => {
            Err(MergeError(format!("{}: shard {}/{} is not a shard: expected K/N with 1 ≤ K ≤ N", path.display(), sh.index, sh.count)))
        }
        None => Err(MergeError(format!(
            "{}: suite `{}` was not run as a shard (no `run.shard`): run each part with --shard K/N",
            path.display(),
            s.suite
        ))),
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Seconds since the epoch of an RFC 3339 time.
fn start_secs(at: &str) -> Result<f64, String> {
    let ts: jiff::Timestamp = at.parse().map_err(|e| format!("run.started_at {at:?} is not an RFC 3339 time: {e}"))?;
    Ok(ts.as_millisecond() as f64 / 1000.0)
}

/// One endpoint over `parts` (each with its offset on the merged timeline, seconds): counts
/// summed, histograms added, windows put on the merged timeline. `segments` is left empty:
/// shards share a timeline (their segments add up by index), consecutive runs do not.
pub(super) fn merge_endpoint(name: &str, parts: &[(&EndpointSummary, f64)], duration_s: f64) -> Result<EndpointSummary, MergeError> {
    let hist_err = |e: hist::HistError| MergeError(format!("endpoint `{name}`: {e}"));
    let mut lat = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
    let mut svc = lat.clone();
    lat.auto(true);
    svc.auto(true);
    let mut errors = Errors::default();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let (mut requests, mut sent, mut received) = (0u64, 0u64, 0u64);
    let mut messages: Option<u64> = None;
    for (e, _) in parts {
        requests += e.requests;
        sent += e.bytes_sent;
        received += e.bytes_received;
        errors.total += e.errors.total;
        for (k, n) in &e.errors.by_kind {
            *errors.by_kind.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &e.errors.by_status {
            *errors.by_status.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &e.statuses {
            *statuses.entry(k.clone()).or_default() += n;
        }
        if let Some(m) = e.messages_received {
            *messages.get_or_insert(0) += m;
        }
        if !e.histogram.is_empty() {
            hist::merge_into(&mut lat, &e.histogram).map_err(hist_err)?;
        }
        if !e.service_histogram.is_empty() {
            hist::merge_into(&mut svc, &e.service_histogram).map_err(hist_err)?;
        }
    }
    let windows = merge_endpoint_windows(parts.iter().map(|(e, offset)| (e.windows.as_slice(), *offset)));
    Ok(EndpointSummary {
        requests,
        errors,
        statuses,
        rps: if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 },
        bytes_sent: sent,
        bytes_received: received,
        latency_ms: latency(&lat),
        service_ms: latency(&svc),
        histogram: hist::encode(&lat),
        service_histogram: hist::encode(&svc),
        windows,
        kind: parts[0].0.kind.clone(),
        messages_received: messages,
        segments: Vec::new(),
    })
}

/// Shards' segments added up index by index: the shards ran the same timeline at the same
/// time, so their `i`-th segments cover the same seconds.
fn segments_by_index<'a>(name: &str, parts: impl Iterator<Item = &'a [EndpointSegment]>) -> Result<Vec<EndpointSegment>, MergeError> {
    let mut out: Vec<(EndpointSegment, hdrhistogram::Histogram<u64>)> = Vec::new();
    for segments in parts {
        for (i, seg) in segments.iter().enumerate() {
            if out.len() <= i {
                let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
                h.auto(true);
                out.push((EndpointSegment { requests: 0, errors: 0, histogram: String::new(), ..seg.clone() }, h));
            }
            let (into, h) = &mut out[i];
            into.requests += seg.requests;
            into.errors += seg.errors;
            into.seconds = into.seconds.max(seg.seconds);
            if !seg.histogram.is_empty() {
                hist::merge_into(h, &seg.histogram).map_err(|e| MergeError(format!("endpoint `{name}`, segment {}: {e}", i + 1)))?;
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(mut seg, h)| {
            seg.histogram = if h.is_empty() { String::new() } else { hist::encode(&h) };
            seg
        })
        .collect())
}

/// Request-weighted mean of per-window percentiles (see the module documentation).
#[derive(Default)]
struct Acc {
    requests: u64,
    errors: u64,
    active_vus: u32,
    weighted: [f64; 3],
    weight: [u64; 3],
}

impl Acc {
    fn add(&mut self, requests: u64, errors: u64, ps: [Option<f64>; 3]) {
        self.requests += requests;
        self.errors += errors;
        for (i, p) in ps.into_iter().enumerate() {
            if let Some(p) = p {
                let w = requests.max(1);
                self.weighted[i] += p * w as f64;
                self.weight[i] += w;
            }
        }
    }

    fn p(&self, i: usize) -> Option<f64> {
        (self.weight[i] > 0).then(|| self.weighted[i] / self.weight[i] as f64)
    }
}

fn second(t: u32, offset: f64) -> u32 {
    (t as f64 + offset).round().max(0.0) as u32
}

pub(super) fn merge_windows<'a>(parts: impl Iterator<Item = (&'a [Window], f64)>) -> Vec<Window> {
    let mut by_t: BTreeMap<u32, Acc> = BTreeMap::new();
    for (windows, offset) in parts {
        for w in windows {
            let acc = by_t.entry(second(w.t, offset)).or_default();
            acc.add(w.requests, w.errors, [w.p50, w.p95, w.p99]);
            acc.active_vus += w.active_vus;
        }
    }
    by_t.into_iter()
        .map(|(t, a)| Window { t, requests: a.requests, errors: a.errors, active_vus: a.active_vus, p50: a.p(0), p95: a.p(1), p99: a.p(2) })
        .collect()
}

fn merge_endpoint_windows<'a>(parts: impl Iterator<Item = (&'a [EndpointWindow], f64)>) -> Vec<EndpointWindow> {
    let mut by_t: BTreeMap<u32, Acc> = BTreeMap::new();
    for (windows, offset) in parts {
        for w in windows {
            by_t.entry(second(w.t, offset)).or_default().add(w.requests, w.errors, [w.p50, w.p95, w.p99]);
        }
    }
    by_t.into_iter()
        .map(|(t, a)| EndpointWindow { t, requests: a.requests, errors: a.errors, p50: a.p(0), p95: a.p(1), p99: a.p(2) })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::compare::testkit::{empty_endpoint, summary};
    use crate::summary::model::SloResult;
    use crate::summary::testbed::Testbed;

    /// A shard's summary holding `latencies_us` on endpoint `get` (and `errors` failures).
    fn shard(index: u32, count: u32, latencies_us: &[u64], errors: u64) -> (PathBuf, Summary) {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in latencies_us {
            h.record(*v).unwrap();
        }
        let mut e = empty_endpoint();
        e.requests = latencies_us.len() as u64 + errors;
        e.errors = Errors { total: errors, by_kind: BTreeMap::from([("timeout".into(), errors)]), by_status: BTreeMap::new() };
        e.statuses = BTreeMap::from([("200".into(), latencies_us.len() as u64)]);
        e.latency_ms = latency(&h);
        e.histogram = hist::encode(&h);
        e.windows = vec![EndpointWindow { t: 0, requests: e.requests, errors, p50: e.latency_ms.p50, p95: e.latency_ms.p95, p99: None }];
        // Two segments of the shared timeline: the first half of the requests, then the rest.
        let half = latencies_us.len() / 2;
        e.segments = [&latencies_us[..half], &latencies_us[half..]]
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut h = Histogram::<u64>::new(3).unwrap();
                part.iter().for_each(|v| h.record(*v).unwrap());
                EndpointSegment { t: 5.0 * i as f64, seconds: 5.0, requests: part.len() as u64, errors: 0, histogram: hist::encode(&h) }
            })
            .collect();
        let mut s = summary("s", 10, vec![("get", e)]);
        s.run.shard = Some(Shard { index, count });
        s.slo = vec![SloResult {
            endpoint: "get".into(),
            metric: "error_rate".into(),
            threshold: 0.05,
            actual: None,
            passed: true,
            reason: None,
        }];
        (PathBuf::from(format!("shard-{index}/s.json")), s)
    }

    /// Heavy-tailed latencies in µs, deterministic.
    fn latencies(n: usize) -> Vec<u64> {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x % 1_000_000) as f64 / 1_000_000.0;
                (800.0 / (1.0 - u).powf(0.7)) as u64
            })
            .collect()
    }

    #[test]
    fn shards_merge_into_exactly_the_histogram_of_one_run() {
        let all = latencies(30_000);
        let parts: Vec<Vec<u64>> = (0..3).map(|k| all.iter().skip(k).step_by(3).copied().collect()).collect();
        let shards: Vec<_> = parts.iter().enumerate().rev().map(|(k, p)| shard(k as u32 + 1, 3, p, 0)).collect();
        let merged = merge(&shards).unwrap();

        let mut one = Histogram::<u64>::new(3).unwrap();
        for v in &all {
            one.record(*v).unwrap();
        }
        let got = hist::decode(&merged.endpoints["get"].histogram).unwrap();
        let counts = |h: &Histogram<u64>| h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>();
        assert_eq!(counts(&got), counts(&one), "every bucket the same");
        assert_eq!(merged.endpoints["get"].latency_ms, latency(&one), "the same percentiles, mean and max");
        assert_eq!(merged.endpoints["get"].requests, 30_000);
        assert!(merged.valid, "{:?}", merged.invalid_reasons);
        assert_eq!(merged.run.merged_from.iter().map(|m| m.index).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(merged.run.shard, None);
        // The shards' segments cover the same seconds: added index by index.
        let segs = &merged.endpoints["get"].segments;
        assert_eq!(segs.len(), 2);
        assert_eq!(segs.iter().map(|s| s.requests).sum::<u64>(), 30_000);
        assert_eq!((segs[1].t, segs[1].seconds), (5.0, 5.0));
        assert_eq!(hist::decode(&segs[0].histogram).unwrap().len(), segs[0].requests);
    }

    #[test]
    fn a_merged_testbed_keeps_the_fastest_shards_calibration() {
        // Three shards started on one machine calibrated at once: two slowed each other.
        let shards: Vec<_> = [2217.0, 3476.0, 2600.0]
            .into_iter()
            .enumerate()
            .map(|(k, score)| {
                let (path, mut s) = shard(k as u32 + 1, 3, &latencies(300), 0);
                s.run.testbed =
                    Some(Testbed::new("external", 2, Some("AMD EPYC 7763".into()), 24, None, false, Some(score)).with_link(None));
                (path, s)
            })
            .collect();
        let merged = merge(&shards).unwrap();
        let testbed = merged.run.testbed.unwrap();
        assert_eq!(testbed.cpu_score, Some(3476.0));
        assert!(testbed.key.ends_with("-3shards"), "{}", testbed.key);
    }

    #[test]
    fn slos_are_judged_again_on_the_merged_figures() {
        // 3% and 8% errors: each shard alone holds or fails the 5% limit; together 5.5% fails.
        let ok = shard(1, 2, &latencies(970), 30);
        let bad = shard(2, 2, &latencies(920), 80);
        let merged = merge(&[ok, bad]).unwrap();
        let r = &merged.slo[0];
        assert!(!r.passed && (r.actual.unwrap() - 0.055).abs() < 1e-9, "{r:?}");
        assert_eq!(merged.endpoints["get"].errors.by_kind["timeout"], 110);
        assert_eq!(merged.endpoints["get"].windows[0].requests, 2000, "same wall-clock second: one window");
    }

    #[test]
    fn a_missing_shard_makes_the_merge_invalid_and_names_it() {
        let merged = merge(&[shard(1, 3, &latencies(100), 0), shard(3, 3, &latencies(100), 0)]).unwrap();
        assert!(!merged.valid);
        assert!(merged.invalid_reasons.iter().any(|r| r.contains("shard 2/3 is missing")), "{:?}", merged.invalid_reasons);
    }

    #[test]
    fn foreign_duplicated_and_miscounted_shards_are_refused_naming_the_files() {
        let mut foreign = shard(2, 2, &latencies(10), 0);
        foreign.1.run.plan_hash = "0ther".into();
        let e = merge(&[shard(1, 2, &latencies(10), 0), foreign]).unwrap_err().0;
        assert!(e.contains("shard-1/s.json") && e.contains("shard-2/s.json") && e.contains("different plans"), "{e}");

        let mut twin = shard(1, 2, &latencies(10), 0);
        twin.0 = PathBuf::from("elsewhere/s.json");
        let e = merge(&[shard(1, 2, &latencies(10), 0), twin]).unwrap_err().0;
        assert!(e.contains("shard-1/s.json and elsewhere/s.json both claim shard 1/2"), "{e}");

        let e = merge(&[shard(1, 2, &latencies(10), 0), shard(2, 3, &latencies(10), 0)]).unwrap_err().0;
        assert!(e.contains("shard counts disagree") && e.contains("shard-2/s.json"), "{e}");

        let mut whole = shard(1, 2, &latencies(10), 0);
        whole.1.run.shard = None;
        let e = merge(&[whole]).unwrap_err().0;
        assert!(e.contains("shard-1/s.json") && e.contains("not run as a shard"), "{e}");
    }
}
