//! Variables at run time: generated values, captured values, setup globals.
//!
//! A generated variable is drawn at most once per iteration, so `{{provider_id}}` in a path
//! and in a body of the same iteration agree. Captured values live in the virtual user and
//! survive across iterations until the capturing request runs again. Values captured by a
//! suite's setup are globals: every user sees them unless it captured its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use super::options::Shard;

/// Where a template's name points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarRef {
    /// Index into [`VarTable::generated`].
    Gen(usize),
    /// Index into [`VarTable::captures`].
    Capture(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Generator {
    Int {
        low: i64,
        high: i64,
    },
    Choice(Vec<Value>),
    Sequence {
        low: i64,
        high: i64,
    },
    /// `first` plus a uniform number of days in `0..=span_days`.
    Date {
        first: jiff::civil::Date,
        span_days: i64,
    },
}

/// Every variable of a compiled plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarTable {
    pub generated: Vec<(String, Generator)>,
    /// Names of captured values, one slot each.
    pub captures: Vec<String>,
    /// `--shard K/N`: each sequence draws only the values at positions K-1, K-1+N, … of its
    /// range, so no two shards produce the same value.
    pub shard: Option<Shard>,
}

impl VarTable {
    pub fn lookup(&self, name: &str) -> Option<VarRef> {
        if let Some(i) = self.generated.iter().position(|(n, _)| n == name) {
            return Some(VarRef::Gen(i));
        }
        self.captures.iter().position(|n| n == name).map(VarRef::Capture)
    }
}

/// State shared by all virtual users of one suite run: sequence counters and setup globals.
#[derive(Debug)]
pub struct SharedVars {
    table: Arc<VarTable>,
    counters: Vec<AtomicU64>,
    globals: OnceLock<Vec<Option<Value>>>,
}

impl SharedVars {
    pub(crate) fn new(table: Arc<VarTable>) -> SharedVars {
        let counters = table.generated.iter().map(|_| AtomicU64::new(0)).collect();
        SharedVars { table, counters, globals: OnceLock::new() }
    }

    /// Publishes the values a setup user captured as globals. Only the first call counts.
    pub fn set_globals(&self, setup: &VuVars) {
        let _ = self.globals.set(setup.captures.clone());
    }
}

/// The variables of one virtual user.
#[derive(Debug)]
pub struct VuVars {
    shared: Arc<SharedVars>,
    captures: Vec<Option<Value>>,
    drawn: Vec<Option<Value>>,
    rng: SmallRng,
}

impl VuVars {
    /// A user with nothing captured; `seed` makes its random draws reproducible.
    pub fn new(shared: Arc<SharedVars>, seed: u64) -> VuVars {
        let captures = vec![None; shared.table.captures.len()];
        let drawn = vec![None; shared.table.generated.len()];
        VuVars { shared, captures, drawn, rng: SmallRng::seed_from_u64(seed) }
    }

    /// Starts a new iteration: generated variables will be drawn afresh.
    pub fn begin_iteration(&mut self) {
        self.drawn.iter_mut().for_each(|d| *d = None);
    }

    /// A uniform draw in `[0, 1)` from the user's generator (think times, mixes).
    pub fn random_unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    pub(crate) fn get(&mut self, r: VarRef) -> Result<Value, RenderError> {
        match r {
            VarRef::Capture(i) => {
                if let Some(v) = &self.captures[i] {
                    return Ok(v.clone());
                }
                if let Some(Some(v)) = self.shared.globals.get().and_then(|g| g.get(i)) {
                    return Ok(v.clone());
                }
                Err(RenderError::MissingCapture(self.shared.table.captures[i].clone()))
            }
            VarRef::Gen(i) => {
                if let Some(v) = &self.drawn[i] {
                    return Ok(v.clone());
                }
                let v = self.draw(i);
                self.drawn[i] = Some(v.clone());
                Ok(v)
            }
        }
    }

    fn draw(&mut self, i: usize) -> Value {
        match &self.shared.table.generated[i].1 {
            Generator::Int { low, high } => Value::from(self.rng.random_range(*low..=*high)),
            Generator::Choice(values) => values[self.rng.random_range(0..values.len())].clone(),
            Generator::Sequence { low, high } => {
                let n = self.shared.counters[i].fetch_add(1, Ordering::Relaxed);
                let span = (*high - *low) as u64 + 1;
                let position = match self.shared.table.shard {
                    None => n % span,
                    // Positions K-1, K-1+N, … below span; the compiler checked there is one.
                    Some(s) => {
                        let (k, count) = (u64::from(s.index - 1), u64::from(s.count));
                        let mine = (span - k).div_ceil(count);
                        k + count * (n % mine)
                    }
                };
                Value::from(*low + position as i64)
            }
            Generator::Date { first, span_days } => {
                let offset = self.rng.random_range(0..=*span_days);
                let date = first.checked_add(jiff::Span::new().days(offset)).unwrap_or(*first);
                Value::from(date.to_string())
            }
        }
    }

    pub(crate) fn set_capture(&mut self, slot: usize, value: Value) {
        self.captures[slot] = Some(value);
    }

    pub(crate) fn clear_capture(&mut self, slot: usize) {
        self.captures[slot] = None;
    }
}

/// Why a request could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// A captured value the template needs has not been captured (an earlier step failed
    /// or answered without it). The engine skips the rest of the iteration.
    #[error("variable `{0}` has not been captured yet")]
    MissingCapture(String),
    #[error("rendered header `{name}` is not a valid header value")]
    BadHeader { name: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Arc<VarTable> {
        Arc::new(VarTable {
            generated: vec![
                ("n".into(), Generator::Int { low: 1, high: 3 }),
                ("seq".into(), Generator::Sequence { low: 10, high: 11 }),
                ("day".into(), Generator::Date { first: jiff::civil::date(2030, 1, 30), span_days: 3 }),
            ],
            captures: vec!["token".into()],
            shard: None,
        })
    }

    #[test]
    fn shards_draw_disjoint_parts_of_a_sequence_that_cover_it() {
        let mut seen = Vec::new();
        for index in 1..=3 {
            let mut t = VarTable { generated: vec![("seq".into(), Generator::Sequence { low: 10, high: 16 })], ..Default::default() };
            t.shard = Some(Shard { index, count: 3 });
            let mut vu = VuVars::new(Arc::new(SharedVars::new(Arc::new(t))), 1);
            let mut mine: Vec<i64> = (0..9)
                .map(|_| {
                    vu.begin_iteration();
                    vu.get(VarRef::Gen(0)).unwrap().as_i64().unwrap()
                })
                .collect();
            // Shard 1 owns 10, 13, 16; it wraps within its own values.
            if index == 1 {
                assert_eq!(mine, [10, 13, 16, 10, 13, 16, 10, 13, 16]);
            }
            mine.sort();
            mine.dedup();
            seen.push(mine);
        }
        assert_eq!(seen, [vec![10, 13, 16], vec![11, 14], vec![12, 15]], "disjoint, and together the whole range");
    }

    #[test]
    fn draws_once_per_iteration_and_within_range() {
        let shared = Arc::new(SharedVars::new(table()));
        let mut vu = VuVars::new(shared, 7);
        for _ in 0..50 {
            vu.begin_iteration();
            let a = vu.get(VarRef::Gen(0)).unwrap();
            assert_eq!(vu.get(VarRef::Gen(0)).unwrap(), a, "same value within an iteration");
            let n = a.as_i64().unwrap();
            assert!((1..=3).contains(&n));
            let d = vu.get(VarRef::Gen(2)).unwrap();
            assert!(["2030-01-30", "2030-01-31", "2030-02-01", "2030-02-02"].contains(&d.as_str().unwrap()), "{d}");
        }
    }

    #[test]
    fn sequences_are_shared_and_wrap() {
        let shared = Arc::new(SharedVars::new(table()));
        let mut a = VuVars::new(shared.clone(), 1);
        let mut b = VuVars::new(shared, 2);
        let next = |vu: &mut VuVars| {
            vu.begin_iteration();
            vu.get(VarRef::Gen(1)).unwrap().as_i64().unwrap()
        };
        let seen = vec![next(&mut a), next(&mut b), next(&mut a)];
        assert_eq!(seen, vec![10, 11, 10]);
    }

    #[test]
    fn captures_fall_back_to_globals_and_report_missing() {
        let shared = Arc::new(SharedVars::new(table()));
        let mut vu = VuVars::new(shared.clone(), 1);
        assert_eq!(vu.get(VarRef::Capture(0)), Err(RenderError::MissingCapture("token".into())));
        let mut setup = VuVars::new(shared.clone(), 0);
        setup.set_capture(0, Value::from("global"));
        shared.set_globals(&setup);
        assert_eq!(vu.get(VarRef::Capture(0)).unwrap(), Value::from("global"));
        vu.set_capture(0, Value::from("mine"));
        assert_eq!(vu.get(VarRef::Capture(0)).unwrap(), Value::from("mine"));
        vu.clear_capture(0);
        assert_eq!(vu.get(VarRef::Capture(0)).unwrap(), Value::from("global"));
    }
}
