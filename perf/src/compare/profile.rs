//! Where the app's CPU went: two sides' profiles ([`crate::summary::Profile`], folded stacks
//! sampled by `perf`) compared per 1000 measured requests, so that a run that sent more
//! requests does not look slower. Pure.
//!
//! A function's self time is the samples whose stack ends in it (the leaf frame); the
//! functions are ranked by how much their self samples per 1000 requests changed, largest
//! first. The whole profile's samples per 1000 requests is the app's CPU per request as the
//! profiler saw it. [`differential_folded`] gives the two sides' stacks on one scale for a
//! differential flame graph (`inferno::differential`).

use std::collections::BTreeMap;

use crate::summary::{Profile, Summary};

/// A change of the whole profile's samples per 1000 requests beyond this share is worth a
/// section even when the suite did not regress.
pub const TOTAL_MOVED: f64 = 0.10;
/// Functions kept in a [`ProfileChange`].
pub const KEPT: usize = 20;
/// The differential flame graph's scale: samples per this many requests (whole numbers).
pub const FLAME_PER: f64 = 1_000_000.0;

/// One function's self samples per 1000 requests on each side.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionChange {
    pub function: String,
    pub base: f64,
    pub head: f64,
}

impl FunctionChange {
    pub fn delta(&self) -> f64 {
        self.head - self.base
    }
}

/// Both sides' profiles compared.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileChange {
    /// Samples per second and CPU (the head's).
    pub hz: u32,
    /// The whole profile's samples per 1000 requests, each side.
    pub base_per_1k: f64,
    pub head_per_1k: f64,
    /// The functions whose self time changed most, largest change first (at most [`KEPT`]).
    pub functions: Vec<FunctionChange>,
    /// What the reader should know: stacks left out to bound a side.
    pub notes: Vec<String>,
}

impl ProfileChange {
    /// The relative change of the whole profile per request (`None` on an empty baseline).
    pub fn total_change(&self) -> Option<f64> {
        (self.base_per_1k > 0.0).then(|| (self.head_per_1k - self.base_per_1k) / self.base_per_1k)
    }

    /// Whether the app's CPU per request moved by more than [`TOTAL_MOVED`].
    pub fn moved(&self) -> bool {
        self.total_change().is_some_and(|c| c.abs() > TOTAL_MOVED)
    }

    /// Milliseconds of CPU per 1000 requests for `samples_per_1k` at this profile's rate.
    pub fn cpu_ms(&self, samples_per_1k: f64) -> f64 {
        if self.hz == 0 { 0.0 } else { samples_per_1k * 1000.0 / f64::from(self.hz) }
    }
}

/// The comparison of two sides' profiles, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileComparison {
    Compared(ProfileChange),
    /// One line: which side has no profile, and why.
    Missing(String),
}

/// The profiles of `base` and `head` compared, or `None` when neither side was profiled
/// (summaries written before profiles, special suites).
pub fn profiles(base: &Summary, head: &Summary) -> Option<ProfileComparison> {
    match (base.profile.as_ref(), head.profile.as_ref()) {
        (None, None) => None,
        (b, h) => Some(compare(b, h)),
    }
}

/// Two sides' profiles compared.
pub fn compare(base: Option<&Profile>, head: Option<&Profile>) -> ProfileComparison {
    let usable = |p: Option<&Profile>, side: &str| -> Result<Profile, String> {
        match p {
            None => Err(format!("the {side} has no CPU profile (measured before profiles, or not profiled)")),
            Some(p) => match &p.unavailable {
                Some(why) => Err(format!("the {side} has no CPU profile: {why}")),
                None if p.requests == 0 || p.samples == 0 => Err(format!("the {side}'s CPU profile holds no sample or no request")),
                None => Ok(p.clone()),
            },
        }
    };
    let (base, head) = match (usable(base, "baseline"), usable(head, "run")) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(why), _) | (_, Err(why)) => return ProfileComparison::Missing(why),
    };
    let (bs, hs) = (self_per_1k(&base), self_per_1k(&head));
    let names: std::collections::BTreeSet<&String> = bs.keys().chain(hs.keys()).collect();
    let mut functions: Vec<FunctionChange> = names
        .into_iter()
        .map(|f| FunctionChange { function: f.clone(), base: bs.get(f).copied().unwrap_or(0.0), head: hs.get(f).copied().unwrap_or(0.0) })
        .filter(|c| c.delta() != 0.0)
        .collect();
    functions.sort_by(|a, b| b.delta().abs().total_cmp(&a.delta().abs()).then_with(|| a.function.cmp(&b.function)));
    functions.truncate(KEPT);
    let mut notes = Vec::new();
    for (side, p) in [("baseline", &base), ("run", &head)] {
        if p.stacks_left_out > 0 {
            notes.push(format!(
                "the {side}'s profile left out its {} least sampled stacks ({} samples) to stay bounded",
                p.stacks_left_out, p.samples_left_out
            ));
        }
    }
    ProfileComparison::Compared(ProfileChange {
        hz: head.hz,
        base_per_1k: per_1k(&base, base.samples),
        head_per_1k: per_1k(&head, head.samples),
        functions,
        notes,
    })
}

fn per_1k(p: &Profile, samples: u64) -> f64 {
    samples as f64 * 1000.0 / p.requests as f64
}

/// The last frame of a folded stack.
pub fn leaf(stack: &str) -> &str {
    stack.rsplit(';').next().unwrap_or(stack)
}

/// Self samples per 1000 requests by function.
fn self_per_1k(p: &Profile) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (stack, n) in &p.stacks {
        *out.entry(leaf(stack).to_string()).or_default() += per_1k(p, *n);
    }
    out
}

/// A side's stacks in folded form, samples per [`FLAME_PER`] requests, rounded.
fn folded_scaled(p: &Profile) -> String {
    let scale = FLAME_PER / p.requests.max(1) as f64;
    let mut out = String::new();
    for (stack, n) in &p.stacks {
        let v = (*n as f64 * scale).round() as u64;
        if v > 0 {
            out.push_str(&format!("{stack} {v}\n"));
        }
    }
    out
}

/// The differential folded stacks (`stack before after`, samples per [`FLAME_PER`] requests)
/// of two usable profiles, as `inferno::differential` writes them; `None` when a side has no
/// usable profile.
pub fn differential_folded(base: Option<&Profile>, head: Option<&Profile>) -> Option<String> {
    let (base, head) = (base?, head?);
    if base.unavailable.is_some() || head.unavailable.is_some() || base.requests == 0 || head.requests == 0 {
        return None;
    }
    let mut out = Vec::new();
    let opts = inferno::differential::Options { normalize: false, strip_hex: false };
    inferno::differential::from_readers(opts, folded_scaled(base).as_bytes(), folded_scaled(head).as_bytes(), &mut out).ok()?;
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(requests: u64, stacks: &[(&str, u64)]) -> Profile {
        let stacks: BTreeMap<String, u64> = stacks.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        Profile { hz: 99, requests, samples: stacks.values().sum(), stacks, ..Profile::default() }
    }

    #[test]
    fn functions_are_ranked_by_their_change_in_self_samples_per_request() {
        // The baseline sent 2000 requests, the run 4000: twice the requests, so the same
        // samples per request on every function but `busy`, which grew from 0 to 50 per 1k.
        let base = profile(2000, &[("app;main;serve;parse", 40), ("app;main;serve;query", 20), ("app;main;serve", 10)]);
        let head = profile(
            4000,
            &[("app;main;serve;parse", 80), ("app;main;serve;query", 40), ("app;main;serve", 20), ("app;main;track;busy", 200)],
        );
        let ProfileComparison::Compared(c) = compare(Some(&base), Some(&head)) else { panic!("both sides have a profile") };
        assert_eq!(c.functions.len(), 1, "only busy moved: {:?}", c.functions);
        assert_eq!(c.functions[0], FunctionChange { function: "busy".into(), base: 0.0, head: 50.0 });
        assert_eq!(c.base_per_1k, 35.0);
        assert_eq!(c.head_per_1k, 85.0);
        assert!(c.moved());
        assert!((c.cpu_ms(50.0) - 505.05).abs() < 0.01, "50 samples at 99 Hz are 505 ms");
    }

    #[test]
    fn a_shrunk_function_ranks_by_the_size_of_its_change() {
        let base = profile(1000, &[("a;x", 30), ("a;y", 10)]);
        let head = profile(1000, &[("a;x", 5), ("a;y", 20)]);
        let ProfileComparison::Compared(c) = compare(Some(&base), Some(&head)) else { panic!() };
        let names: Vec<&str> = c.functions.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(c.functions[0].delta(), -25.0);
        assert!(c.moved(), "40 → 25 per 1k is -37%");
    }

    #[test]
    fn a_side_without_a_profile_says_why() {
        let head = profile(1000, &[("a;x", 3)]);
        let none = Profile::unavailable("perf is not installed");
        assert_eq!(
            compare(Some(&none), Some(&head)),
            ProfileComparison::Missing("the baseline has no CPU profile: perf is not installed".into())
        );
        assert!(matches!(compare(None, Some(&head)), ProfileComparison::Missing(w) if w.contains("before profiles")));
        assert!(differential_folded(Some(&none), Some(&head)).is_none());
    }

    #[test]
    fn the_differential_folded_stacks_are_per_million_requests_on_both_sides() {
        let base = profile(2000, &[("a;x", 4)]);
        let head = profile(1000, &[("a;x", 4), ("a;y", 1)]);
        let diff = differential_folded(Some(&base), Some(&head)).unwrap();
        let lines: BTreeMap<&str, &str> = diff.lines().filter_map(|l| l.split_once(' ')).collect();
        assert_eq!(lines["a;x"], "2000 4000", "{diff}");
        assert_eq!(lines["a;y"], "0 1000", "{diff}");
    }
}
