//! Where the app's CPU went: two sides' profiles ([`crate::summary::Profile`], folded stacks
//! sampled by `perf`) compared per 1000 measured requests, so that a run that sent more
//! requests does not look slower. Pure.
//!
//! A function's self time is the samples whose stack ends in it (the leaf frame); the
//! functions are ranked by how much their self samples per 1000 requests changed, largest
//! first. The whole profile's samples per 1000 requests is the app's CPU per request as the
//! profiler saw it. [`differential_folded`] gives the two sides' stacks on one scale for a
//! differential flame graph (`inferno::differential`).
//!
//! A profile is a sample: at 99 Hz a function with ten samples a side could have had six or
//! fourteen. A function is listed, and the whole profile counts as moved, only when its change
//! is beyond what sampling alone makes likely ([`beyond_sampling`]): otherwise a run of a few
//! dozen samples would name whatever functions its samples happened to land in.

use std::collections::BTreeMap;

use statrs::distribution::{Binomial, DiscreteCDF};

use crate::summary::{Profile, Summary};

/// A change of the whole profile's samples per 1000 requests beyond this share is worth a
/// section even when the suite did not regress.
pub const TOTAL_MOVED: f64 = 0.10;
/// Functions kept in a [`ProfileChange`].
pub const KEPT: usize = 20;
/// A change counts when sampling alone would make one at least as large this rarely
/// (two-sided): strict, as a profile holds hundreds of functions and each is a test.
pub const SAMPLING_P: f64 = 0.001;
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
    /// Whether the whole profile's change per request is beyond sampling noise.
    pub total_beyond_sampling: bool,
    /// What the reader should know: stacks left out to bound a side, functions whose change
    /// sampling could explain.
    pub notes: Vec<String>,
}

impl ProfileChange {
    /// The relative change of the whole profile per request (`None` on an empty baseline).
    pub fn total_change(&self) -> Option<f64> {
        (self.base_per_1k > 0.0).then(|| (self.head_per_1k - self.base_per_1k) / self.base_per_1k)
    }

    /// Whether the app's CPU per request moved by more than [`TOTAL_MOVED`], beyond sampling
    /// noise.
    pub fn moved(&self) -> bool {
        self.total_beyond_sampling && self.total_change().is_some_and(|c| c.abs() > TOTAL_MOVED)
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
    let (bs, hs) = (self_samples(&base), self_samples(&head));
    let names: std::collections::BTreeSet<&String> = bs.keys().chain(hs.keys()).collect();
    let mut within_noise = 0usize;
    let mut functions = Vec::new();
    for f in names {
        let (b, h) = (bs.get(f).copied().unwrap_or(0), hs.get(f).copied().unwrap_or(0));
        let change = FunctionChange { function: f.clone(), base: per_1k(&base, b), head: per_1k(&head, h) };
        if change.delta() == 0.0 {
            continue;
        }
        if beyond_sampling(b, base.requests, h, head.requests) {
            functions.push(change);
        } else {
            within_noise += 1;
        }
    }
    functions.sort_by(|a, b| b.delta().abs().total_cmp(&a.delta().abs()).then_with(|| a.function.cmp(&b.function)));
    functions.truncate(KEPT);
    let mut notes = Vec::new();
    if within_noise > 0 {
        notes.push(format!(
            "{within_noise} more function{} changed by no more than sampling alone could make ({} samples in the baseline, {} in this run): not listed",
            if within_noise == 1 { "" } else { "s" },
            base.samples,
            head.samples
        ));
    }
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
        total_beyond_sampling: beyond_sampling(base.samples, base.requests, head.samples, head.requests),
        notes,
    })
}

/// Whether `head` samples over `head_requests` differ from `base` samples over
/// `base_requests` by more than sampling makes likely. If both sides spent the same CPU per
/// request, each of the `base + head` samples would fall on the head's side with the head's
/// share of the requests: the head's count is binomial, and a count whose two-sided tail is
/// under [`SAMPLING_P`] is a change.
pub fn beyond_sampling(base: u64, base_requests: u64, head: u64, head_requests: u64) -> bool {
    let n = base + head;
    let all = base_requests + head_requests;
    if n == 0 || base_requests == 0 || head_requests == 0 {
        return false;
    }
    let Ok(binomial) = Binomial::new(head_requests as f64 / all as f64, n) else { return false };
    let at_most = binomial.cdf(head);
    let at_least = if head == 0 { 1.0 } else { binomial.sf(head - 1) };
    (2.0 * at_most.min(at_least)).min(1.0) < SAMPLING_P
}

fn per_1k(p: &Profile, samples: u64) -> f64 {
    samples as f64 * 1000.0 / p.requests as f64
}

/// The last frame of a folded stack.
pub fn leaf(stack: &str) -> &str {
    stack.rsplit(';').next().unwrap_or(stack)
}

/// Self samples by function.
fn self_samples(p: &Profile) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, n) in &p.stacks {
        *out.entry(leaf(stack).to_string()).or_default() += n;
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
        let base = profile(10_000, &[("a;x", 300), ("a;y", 100)]);
        let head = profile(10_000, &[("a;x", 50), ("a;y", 200)]);
        let ProfileComparison::Compared(c) = compare(Some(&base), Some(&head)) else { panic!() };
        let names: Vec<&str> = c.functions.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(c.functions[0].delta(), -25.0);
        assert!(c.moved(), "40 → 25 per 1k is -37%");
    }

    #[test]
    fn what_sampling_alone_could_make_is_neither_listed_nor_a_move() {
        // A run of a few dozen samples: each function's count moved by a few, the total by
        // 20%; the same shares with fifty times the samples are beyond sampling.
        let base = profile(1000, &[("a;x", 12), ("a;y", 10), ("a;z", 8)]);
        let head = profile(1000, &[("a;x", 16), ("a;y", 6), ("a;w", 2)]);
        let ProfileComparison::Compared(c) = compare(Some(&base), Some(&head)) else { panic!() };
        assert!(c.functions.is_empty(), "{:?}", c.functions);
        assert!(c.total_change().unwrap() < -0.19 && !c.moved(), "30 → 24 samples is sampling");
        assert_eq!(
            c.notes,
            ["4 more functions changed by no more than sampling alone could make (30 samples in the baseline, 24 in this run): not listed"]
        );
        let big = |p: &Profile| profile(p.requests * 50, &p.stacks.iter().map(|(s, n)| (s.as_str(), n * 50)).collect::<Vec<_>>());
        let ProfileComparison::Compared(c) = compare(Some(&big(&base)), Some(&big(&head))) else { panic!() };
        let names: Vec<&str> = c.functions.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["z", "x", "y", "w"]);
        assert!(c.moved());

        // The binomial rule itself: 11 samples to none is a change at even requests, 9 to
        // none is not; twice the requests on one side expects twice its samples.
        assert!(beyond_sampling(0, 1000, 11, 1000) && !beyond_sampling(0, 1000, 9, 1000));
        assert!(!beyond_sampling(100, 1000, 200, 2000) && beyond_sampling(100, 1000, 100, 2000));
        assert!(!beyond_sampling(0, 0, 5, 1000) && !beyond_sampling(0, 1000, 0, 1000));
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
