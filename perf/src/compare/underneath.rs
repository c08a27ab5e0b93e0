//! What changed underneath: the statements, Redis commands and app resources of a run set
//! against its baseline's, so that a slower run says why. Pure: a function of two summaries.
//!
//! Figures are normalized per 1000 measured requests of the suite, so a run that sent a few
//! more requests does not look slower. The counters cover the measured requests only (reset
//! when the warm-up ended); a summary written before that counted the warm-up too, and its
//! figures are scaled by the share of the run's time that was measured (an estimate, said in
//! the notes). Statements are matched by their normalized text: query ids differ across
//! PostgreSQL versions, the text does not.
//!
//! Each statement also says how many times one request runs it, before and after: its calls
//! over the requests of the endpoints that issue it. Which endpoints those are comes from the
//! `application_name` of the connections seen running it (`seen_under`): an app that names
//! its connections after the route it serves (`refapp:slots`) names the plan's requests when
//! the route and the request share a name (the part after the last `:`, case and punctuation
//! aside). When a name matches no request, or the statement was never seen in the samples,
//! its calls are counted per request of the whole suite, and it says so. A statement whose
//! calls per request grew by more than [`LOOP_GROWTH`] is **a loop of queries** (one query
//! per item of a list, the N+1 pattern): listed first, whatever its time, because on a
//! loopback link each round trip costs tens of microseconds while in production it costs a
//! fraction of a millisecond. Redis commands are counted per request of the suite: Redis
//! cannot tell which route sent a command.
//!
//! There are no per-window samples of statements, so no significance test: a statement counts
//! as changed only when its time per 1000 requests grew by more than [`STATEMENT_GROWTH`]
//! beyond the typical (median) growth of the other matched statements (when there are three) — a busier machine slows every
//! statement, which is not one statement getting slower — *and* that growth is at least
//! [`STATEMENT_SHARE`] of all the baseline's statement time (and above an absolute floor). A
//! plan change is shown with a statement that changed, never alone: generic plans move with
//! the tables' statistics (a run that books slots grows `appointments`) without a slowdown.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::summary::{RedisStats, ResourceUsage, Statement, Statements, Summary};

/// Relative growth (time per 1000 requests) beyond which a statement or command changed.
pub const STATEMENT_GROWTH: f64 = 0.5;
/// …and its growth as a share of the baseline's total statement (command) time.
pub const STATEMENT_SHARE: f64 = 0.05;
/// …and at least this many milliseconds per 1000 requests.
pub const FLOOR_MS: f64 = 1.0;
/// Growth of a statement's calls per request beyond which it is a loop of queries: one more
/// call per request can be a new query; more than one is a query run once per item.
pub const LOOP_GROWTH: f64 = 1.0;
/// Relative growth of a service's CPU per request (or peak memory) that is said. Wider than
/// the latency rule's 20%: on this 2-core machine the same work measured 22% apart.
pub const RESOURCE_GROWTH: f64 = 0.3;
/// A Redis command's growth that counts, in ms per 1000 requests (10 µs per request): the
/// commands take microseconds, so a smaller move is noise whatever its ratio.
pub const COMMAND_FLOOR_MS: f64 = 10.0;

/// A statement's figures in one run, per 1000 measured requests of the suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementFigures {
    pub calls_per_1k: f64,
    pub ms_per_1k: f64,
    pub mean_ms: f64,
    pub rows_per_call: f64,
    /// Shared blocks (hit and read) per call: how much data each call touched.
    pub blocks_per_call: f64,
}

/// How many times one request runs a statement, in the baseline and now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallsPerRequest {
    /// The endpoints whose requests the calls are counted over (the plan's request names);
    /// empty when they are every request of the suite.
    pub endpoints: Vec<String>,
    /// Why the calls are counted per request of the whole suite (`None` when `endpoints` say).
    pub suite_because: Option<String>,
    /// `None` when that side sent none of those requests.
    pub base: Option<f64>,
    /// `base` is an upper bound: the statement is not among the baseline's kept statements,
    /// which left some out, so it ran at most as often as all the left-out ones together.
    pub base_at_most: bool,
    pub head: Option<f64>,
}

impl CallsPerRequest {
    /// Calls per request gained (head − base; a bound on `base` makes this the least gain).
    pub fn growth(&self) -> Option<f64> {
        Some(self.head? - self.base?)
    }
}

/// One statement that changed or appeared (no `base`). Statements that went away are not
/// listed: they do not make a run slower.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementChange {
    pub query: String,
    /// The baseline's text when it differs (the statement was edited: matched by likeness).
    pub base_query: Option<String>,
    pub base: Option<StatementFigures>,
    pub head: Option<StatementFigures>,
    /// Growth of milliseconds per 1000 requests (head − base).
    pub delta_ms_per_1k: f64,
    /// Its share of the growth of all changed statements' time.
    pub share: f64,
    /// Scan nodes only the baseline's plan has, and only this run's: `Index Scan using i on t`
    /// → `Seq Scan on t`. Empty when the scans are the same (or a plan is missing).
    pub plan_before: Vec<String>,
    pub plan_after: Vec<String>,
    /// Who ran it, from the connections' `application_name` (the part after the last `:`),
    /// with the share of the samples that saw it.
    pub issued_by: Vec<(String, f64)>,
    pub calls_per_request: CallsPerRequest,
    /// Its calls per request grew by more than [`LOOP_GROWTH`]: a loop of queries.
    pub is_loop: bool,
}

/// One Redis command whose time or calls per 1000 requests grew beyond noise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandChange {
    pub command: String,
    pub base_calls_per_1k: f64,
    pub head_calls_per_1k: f64,
    pub base_ms_per_1k: f64,
    pub head_ms_per_1k: f64,
}

impl CommandChange {
    /// Calls per request of the suite, in the baseline and now (Redis cannot tell routes).
    pub fn calls_per_request(&self) -> (f64, f64) {
        (self.base_calls_per_1k / 1000.0, self.head_calls_per_1k / 1000.0)
    }
}

/// One resource figure of the app (or a database) set against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceChange {
    pub service: String,
    /// `CPU s per 1000 requests` or `peak memory`.
    pub figure: &'static str,
    pub base: f64,
    pub head: f64,
    /// True beyond [`RESOURCE_GROWTH`].
    pub grew: bool,
}

impl ResourceChange {
    pub fn relative(&self) -> Option<f64> {
        (self.base > 0.0).then(|| (self.head - self.base) / self.base)
    }
}

/// What changed underneath one suite.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Underneath {
    /// Changed statements: loops of queries first (the most calls per request gained first),
    /// then the one whose time grew most.
    pub statements: Vec<StatementChange>,
    /// How many of this run's statements were matched with one of the baseline's (by text or likeness).
    pub statements_compared: usize,
    pub commands: Vec<CommandChange>,
    /// Cache hit ratio (Redis keyspace hits over lookups) in the baseline and now.
    pub hit_ratio: Option<(Option<f64>, Option<f64>)>,
    pub resources: Vec<ResourceChange>,
    /// Why a side could not be compared (statistics unavailable in one of the runs), and
    /// which side's figures are estimates (counters that included the warm-up).
    pub notes: Vec<String>,
}

impl Underneath {
    /// True when nothing changed beyond noise.
    pub fn is_quiet(&self) -> bool {
        self.statements.is_empty()
            && self.commands.is_empty()
            && !self.resources.iter().any(|r| r.grew)
            && !self.hit_ratio.is_some_and(|(b, h)| hit_ratio_moved(b, h))
    }
}

fn hit_ratio_moved(base: Option<f64>, head: Option<f64>) -> bool {
    matches!((base, head), (Some(b), Some(h)) if (b - h).abs() >= 0.1)
}

fn requests(s: &Summary) -> f64 {
    s.endpoints.values().map(|e| e.requests).sum::<u64>().max(1) as f64
}

/// The share of a side's counters that belongs to its measured requests: all of them when the
/// counters were reset at the end of the warm-up, else (older summaries) the share of the
/// run's time that was measured, which assumes the warm-up sent requests at the same pace.
fn measured_share(s: &Summary, from_measured_start: bool) -> f64 {
    let (measured, warmup) = (s.run.duration_s, s.run.warmup_s);
    if from_measured_start || warmup <= 0.0 || measured <= 0.0 { 1.0 } else { measured / (measured + warmup) }
}

/// What a side's statement counters are read with: the summary (its endpoints' requests),
/// the factor that turns a counter into a figure per 1000 measured requests, and the share of
/// a counter that belongs to the measured requests.
#[derive(Clone, Copy)]
struct Side<'a> {
    summary: &'a Summary,
    per_1k: f64,
    share: f64,
}

impl<'a> Side<'a> {
    fn new(summary: &'a Summary, from_measured_start: bool) -> Side<'a> {
        let share = measured_share(summary, from_measured_start);
        Side { summary, per_1k: 1000.0 / requests(summary) * share, share }
    }

    /// Measured requests of these endpoints (every endpoint when empty); `None` when none.
    fn requests_of(&self, endpoints: &[String]) -> Option<f64> {
        let n: u64 = if endpoints.is_empty() {
            self.summary.endpoints.values().map(|e| e.requests).sum()
        } else {
            endpoints.iter().filter_map(|e| self.summary.endpoints.get(e)).map(|e| e.requests).sum()
        };
        (n > 0).then_some(n as f64)
    }

    /// `calls` of a counter per measured request of `endpoints`.
    fn per_request(&self, calls: f64, endpoints: &[String]) -> Option<f64> {
        self.requests_of(endpoints).map(|n| calls * self.share / n)
    }
}

/// The plan's request an `application_name` names: the name itself or the part after its
/// last `:` (`refapp:slots` → `slots`), exactly, else alike when case and punctuation are set
/// aside (`Slots`, `hot-slots` → `hot_slots`) and only one request is.
fn endpoint_named(name: &str, endpoints: &BTreeSet<&str>) -> Option<String> {
    let fold = |s: &str| -> String {
        let mapped: String = s.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        mapped.trim_matches('_').to_string()
    };
    let tail = name.rsplit(':').next().unwrap_or(name).trim();
    for candidate in [name.trim(), tail] {
        if endpoints.contains(candidate) {
            return Some(candidate.to_string());
        }
    }
    for candidate in [name, tail] {
        let folded = fold(candidate);
        let alike: Vec<&&str> = endpoints.iter().filter(|e| !folded.is_empty() && fold(e) == folded).collect();
        if let [one] = alike.as_slice() {
            return Some(one.to_string());
        }
    }
    None
}

/// The endpoints whose requests run a statement, from the names it was seen under in either
/// run; `Err` with the reason when they cannot be told (then: every request of the suite).
fn issuing_endpoints(seen: &[&BTreeMap<String, u64>], endpoints: &BTreeSet<&str>) -> Result<Vec<String>, String> {
    let names: BTreeSet<&String> = seen.iter().flat_map(|m| m.iter().filter(|(_, n)| **n > 0).map(|(name, _)| name)).collect();
    if names.is_empty() {
        return Err("never seen running in the samples of pg_stat_activity".into());
    }
    let mut out = BTreeSet::new();
    for name in names {
        match endpoint_named(name, endpoints) {
            Some(e) => {
                out.insert(e);
            }
            None => return Err(format!("seen under `{name}`, which names no request of the plan")),
        }
    }
    Ok(out.into_iter().collect())
}

fn figures(s: &Statement, per_1k: f64) -> StatementFigures {
    let calls = s.calls.max(1) as f64;
    StatementFigures {
        calls_per_1k: s.calls as f64 * per_1k,
        ms_per_1k: s.total_ms * per_1k,
        mean_ms: s.mean_ms,
        rows_per_call: s.rows as f64 / calls,
        blocks_per_call: (s.shared_blks_hit + s.shared_blks_read) as f64 / calls,
    }
}

/// Scan nodes of a plan (`Seq Scan on slots`), without their indent.
fn scans(plan: &[String]) -> BTreeSet<String> {
    plan.iter().map(|l| l.trim().to_string()).filter(|l| l.split(" on ").next().is_some_and(|n| n.contains("Scan"))).collect()
}

fn issued_by(s: &Statement) -> Vec<(String, f64)> {
    let total: u64 = s.seen_under.values().sum();
    if total == 0 {
        return Vec::new();
    }
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (name, n) in &s.seen_under {
        let route = name.rsplit(':').next().unwrap_or(name).to_string();
        *by.entry(route).or_default() += n;
    }
    let mut out: Vec<(String, f64)> = by.into_iter().map(|(r, n)| (r, n as f64 / total as f64)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// What changed underneath `head` since `base`.
pub fn underneath(base: &Summary, head: &Summary) -> Underneath {
    let mut out = Underneath::default();
    let (bk, hk) = (1000.0 / requests(base), 1000.0 / requests(head));
    let (bu, hu) = (base.underneath.as_ref(), head.underneath.as_ref());
    match (bu.and_then(|u| u.postgres.as_ref()), hu.and_then(|u| u.postgres.as_ref())) {
        (Some(b), Some(h)) => {
            let (bs, hs) = (Side::new(base, b.from_measured_start), Side::new(head, h.from_measured_start));
            (out.statements, out.statements_compared) = statement_changes(b, h, bs, hs);
            for (who, side, stats) in [("baseline", bs, b), ("this run", hs, h)] {
                if side.share < 1.0 && !stats.top.is_empty() {
                    out.notes.push(format!(
                        "{who}: its statement counters include the warm-up (recorded before they were reset when it ended), so its figures are scaled to the {:.0}% of its time that was measured",
                        side.share * 100.0
                    ));
                }
            }
        }
        (b, h) => {
            let why = |u: Option<&crate::summary::Underneath>| {
                u.and_then(|u| u.postgres_unavailable.clone()).unwrap_or_else(|| "no statement statistics recorded".into())
            };
            if b.is_none() {
                out.notes.push(format!("baseline: {}", why(bu)));
            }
            if h.is_none() {
                out.notes.push(format!("this run: {}", why(hu)));
            }
        }
    }
    if let (Some(b), Some(h)) = (bu.and_then(|u| u.redis.as_ref()), hu.and_then(|u| u.redis.as_ref())) {
        let (bs, hs) = (Side::new(base, b.from_measured_start), Side::new(head, h.from_measured_start));
        out.commands = command_changes(b, h, bs.per_1k, hs.per_1k);
        out.hit_ratio = Some((b.hit_ratio(), h.hit_ratio()));
    }
    out.resources = resources(&base.resources, &head.resources, bk, hk);
    out
}

/// The statements that changed (see the module documentation), loops of queries first, then
/// the one whose time grew most, and how many of `head`'s statements were matched with one of
/// `base`'s. `bs` and `hs` turn each run's counters into figures per request.
fn statement_changes(base: &Statements, head: &Statements, bs: Side, hs: Side) -> (Vec<StatementChange>, usize) {
    let (bk, hk) = (bs.per_1k, hs.per_1k);
    let base_total = base.total_exec_ms * bk;
    let endpoints: BTreeSet<&str> = bs.summary.endpoints.keys().chain(hs.summary.endpoints.keys()).map(String::as_str).collect();
    // Calls of the baseline's statements it did not keep: a statement missing from the kept
    // ones ran at most this often (none when it kept them all).
    let base_left_out =
        (base.count > base.top.len() as u64).then(|| base.total_calls.saturating_sub(base.top.iter().map(|s| s.calls).sum()));
    let (b_top, h_top) = (merged(&base.top), merged(&head.top));
    let pairs = match_statements(&b_top, &h_top);
    // How much the other statements moved, typically: a busier machine makes all of
    // them slower, which is not one statement getting slower. Needs three others.
    let ratios: Vec<Option<f64>> =
        pairs.iter().map(|(s, m)| m.map(|b| b.total_ms * bk).filter(|b| *b > 0.0).map(|before| s.total_ms * hk / before)).collect();
    let typical = |i: usize| {
        let others: Vec<f64> = ratios.iter().enumerate().filter(|(j, _)| *j != i).filter_map(|(_, r)| *r).collect();
        if others.len() >= 3 { crate::util::median(others).unwrap_or(1.0).max(1.0) } else { 1.0 }
    };
    let changed = |i: usize, delta: f64, before: f64| {
        delta >= FLOOR_MS
            && delta >= STATEMENT_SHARE * base_total
            && (before <= 0.0 || (before + delta) / before > (1.0 + STATEMENT_GROWTH) * typical(i))
    };
    let mut compared = 0;
    let mut statements = Vec::new();
    for (i, (s, matched)) in pairs.iter().copied().enumerate() {
        let now = figures(s, hk);
        let before = matched.map(|b| figures(b, bk));
        if before.is_some() {
            compared += 1;
        }
        let delta = now.ms_per_1k - before.as_ref().map_or(0.0, |b| b.ms_per_1k);
        let calls_per_request = calls_per_request(s, matched, base_left_out, &endpoints, bs, hs);
        let is_loop = calls_per_request.growth().is_some_and(|g| g > LOOP_GROWTH);
        if is_loop || changed(i, delta, before.as_ref().map_or(0.0, |b| b.ms_per_1k)) {
            let (plan_before, plan_after) = scan_changes(matched, s);
            statements.push(StatementChange {
                query: s.query.clone(),
                base_query: matched.filter(|b| b.query != s.query).map(|b| b.query.clone()),
                base: before,
                head: Some(now),
                delta_ms_per_1k: delta,
                share: 0.0,
                plan_before,
                plan_after,
                issued_by: issued_by(s),
                calls_per_request,
                is_loop,
            });
        }
    }
    let growth: f64 = statements.iter().map(|s| s.delta_ms_per_1k.max(0.0)).sum();
    for s in &mut statements {
        s.share = if growth > 0.0 { s.delta_ms_per_1k.max(0.0) / growth } else { 0.0 };
    }
    let gained = |s: &StatementChange| if s.is_loop { s.calls_per_request.growth().unwrap_or(0.0) } else { 0.0 };
    statements.sort_by(|a, b| {
        b.is_loop
            .cmp(&a.is_loop)
            .then_with(|| gained(b).total_cmp(&gained(a)))
            .then_with(|| b.delta_ms_per_1k.total_cmp(&a.delta_ms_per_1k))
            .then_with(|| a.query.cmp(&b.query))
    });
    (statements, compared)
}

/// A statement's calls per request of the endpoints that issue it (or of the suite), in the
/// baseline (`matched`; none: it did not run there, or, when the baseline left statements
/// out, at most as often as those together) and now (`head`).
fn calls_per_request(
    head: &Statement,
    matched: Option<&Statement>,
    base_left_out: Option<u64>,
    endpoints: &BTreeSet<&str>,
    bs: Side,
    hs: Side,
) -> CallsPerRequest {
    let seen: Vec<&BTreeMap<String, u64>> = std::iter::once(&head.seen_under).chain(matched.map(|b| &b.seen_under)).collect();
    let (over, suite_because) = match issuing_endpoints(&seen, endpoints) {
        Ok(over) => (over, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let (base_calls, base_at_most) = match (matched, base_left_out) {
        (Some(b), _) => (b.calls, false),
        (None, None) => (0, false),
        (None, Some(left_out)) => (left_out, true),
    };
    CallsPerRequest {
        base: bs.per_request(base_calls as f64, &over),
        base_at_most,
        head: hs.per_request(head.calls as f64, &over),
        endpoints: over,
        suite_because,
    }
}

/// Scan nodes only the baseline's plan has, and only this run's; nothing when a plan is missing.
fn scan_changes(base: Option<&Statement>, head: &Statement) -> (Vec<String>, Vec<String>) {
    match base {
        Some(b) if !b.plan.is_empty() && !head.plan.is_empty() => {
            let (sb, sh) = (scans(&b.plan), scans(&head.plan));
            (sb.difference(&sh).cloned().collect(), sh.difference(&sb).cloned().collect())
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// The Redis commands whose time or calls per 1000 requests grew beyond noise, the one whose
/// time grew most first.
fn command_changes(base: &RedisStats, head: &RedisStats, bk: f64, hk: f64) -> Vec<CommandChange> {
    let base_total: f64 = base.commands.values().map(|c| c.usec as f64 / 1000.0 * bk).sum();
    let names: BTreeSet<&String> = base.commands.keys().chain(head.commands.keys()).collect();
    let mut commands = Vec::new();
    for name in names {
        let (bc, hc) = (base.commands.get(name).copied().unwrap_or_default(), head.commands.get(name).copied().unwrap_or_default());
        let (bms, hms) = (bc.usec as f64 / 1000.0 * bk, hc.usec as f64 / 1000.0 * hk);
        let (bcalls, hcalls) = (bc.calls as f64 * bk, hc.calls as f64 * hk);
        let delta = hms - bms;
        let time_grew = delta >= COMMAND_FLOOR_MS && delta >= STATEMENT_SHARE * base_total && delta > STATEMENT_GROWTH * bms;
        let calls_moved = hcalls - bcalls >= 10.0 && hcalls - bcalls > STATEMENT_GROWTH * bcalls.max(1.0);
        if time_grew || calls_moved {
            commands.push(CommandChange {
                command: name.clone(),
                base_calls_per_1k: bcalls,
                head_calls_per_1k: hcalls,
                base_ms_per_1k: bms,
                head_ms_per_1k: hms,
            });
        }
    }
    commands.sort_by(|a, b| (b.head_ms_per_1k - b.base_ms_per_1k).total_cmp(&(a.head_ms_per_1k - a.base_ms_per_1k)));
    commands
}

/// Characters of [`key`] compared: statements are kept cut at 400 characters, and `$12`
/// becoming `?` shortens a text, so two cuts of one statement agree on this much of it.
const KEY_CHARS: usize = 300;

/// The text a statement is matched by: literals and parameters all `?`, whitespace collapsed,
/// the first [`KEY_CHARS`] characters.
fn key(query: &str) -> String {
    let masked = crate::util::mask_sql_literals(query).replace("'?'", "?");
    let mut out = String::with_capacity(masked.len());
    let mut chars = masked.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    let collapsed = out.trim_end_matches('…').split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(KEY_CHARS).collect()
}

/// Likeness of two statements: Dice's coefficient over their words (a multiset), 0 to 1.
fn likeness(a: &str, b: &str) -> f64 {
    let words = |s: &str| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for w in s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '?')).filter(|w| !w.is_empty()) {
            *m.entry(w.to_ascii_lowercase()).or_default() += 1;
        }
        m
    };
    let (wa, wb) = (words(a), words(b));
    let (na, nb): (usize, usize) = (wa.values().sum(), wb.values().sum());
    let common: usize = wa.iter().map(|(w, n)| (*n).min(wb.get(w).copied().unwrap_or(0))).sum();
    if na + nb == 0 { 0.0 } else { 2.0 * common as f64 / (na + nb) as f64 }
}

/// One entry per statement text ([`key`]): PostgreSQL can count one statement under several
/// query ids (other parameter types, prepared before and after the reset), and its text is
/// what a statement is. Counters add up; the plan is the busiest entry's.
fn merged(top: &[Statement]) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for s in top {
        let k = key(&s.query);
        match keys.iter().position(|x| *x == k) {
            Some(i) => {
                let m = &mut out[i];
                m.calls += s.calls;
                m.total_ms += s.total_ms;
                m.mean_ms = if m.calls == 0 { 0.0 } else { m.total_ms / m.calls as f64 };
                m.rows += s.rows;
                m.shared_blks_hit += s.shared_blks_hit;
                m.shared_blks_read += s.shared_blks_read;
                m.temp_blks += s.temp_blks;
                for (name, n) in &s.seen_under {
                    *m.seen_under.entry(name.clone()).or_default() += n;
                }
            }
            None => {
                keys.push(k);
                out.push(s.clone());
            }
        }
    }
    out
}

/// Statements at least this alike are taken for one statement edited.
pub const EDITED_LIKENESS: f64 = 0.85;

/// Each of `head`'s statements with its baseline counterpart: the same text (literals and
/// parameters aside), else the most alike of the baseline's unmatched ones when at least
/// [`EDITED_LIKENESS`] alike (an edited statement: `s.provider_id + 0 = p.id`), else none.
fn match_statements<'a>(base: &'a [Statement], head: &'a [Statement]) -> Vec<(&'a Statement, Option<&'a Statement>)> {
    let base_keys: Vec<String> = base.iter().map(|s| key(&s.query)).collect();
    let mut used = vec![false; base.len()];
    let mut out: Vec<(&Statement, Option<&Statement>)> = Vec::new();
    let mut unmatched = Vec::new();
    for (i, s) in head.iter().enumerate() {
        let k = key(&s.query);
        match base_keys.iter().enumerate().find(|(j, bk)| !used[*j] && **bk == k) {
            Some((j, _)) => {
                used[j] = true;
                out.push((s, Some(&base[j])));
            }
            None => {
                out.push((s, None));
                unmatched.push((i, k));
            }
        }
    }
    for (i, k) in unmatched {
        let best = (0..base.len())
            .filter(|j| !used[*j])
            .map(|j| (j, likeness(&k, &base_keys[j])))
            .filter(|(_, l)| *l >= EDITED_LIKENESS)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = best {
            used[j] = true;
            out[i].1 = Some(&base[j]);
        }
    }
    out
}

/// CPU seconds per 1000 requests and peak memory of each service both runs measured.
fn resources(base: &BTreeMap<String, ResourceUsage>, head: &BTreeMap<String, ResourceUsage>, bk: f64, hk: f64) -> Vec<ResourceChange> {
    let mut out = Vec::new();
    for (service, h) in head {
        let Some(b) = base.get(service) else { continue };
        let change = |figure, base: f64, head: f64| ResourceChange {
            service: service.clone(),
            figure,
            base,
            head,
            grew: base > 0.0 && (head - base) / base > RESOURCE_GROWTH,
        };
        out.push(change("CPU s per 1000 requests", b.cpu_seconds * bk, h.cpu_seconds * hk));
        out.push(change("peak memory", b.peak_memory_bytes as f64, h.peak_memory_bytes as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::testkit;
    use crate::summary::{RedisCommand, RedisStats, Statements};

    fn stmt(query: &str, calls: u64, total_ms: f64, blocks: u64, plan: &[&str]) -> Statement {
        Statement {
            query: query.into(),
            calls,
            total_ms,
            mean_ms: total_ms / calls as f64,
            rows: calls * 16,
            shared_blks_hit: blocks * calls,
            plan: plan.iter().map(|s| s.to_string()).collect(),
            ..Statement::default()
        }
    }

    fn with(mut s: Summary, top: Vec<Statement>) -> Summary {
        let total = top.iter().map(|s| s.total_ms).sum();
        let count = top.len() as u64;
        s.underneath = Some(crate::summary::Underneath {
            postgres: Some(Statements {
                top,
                total_calls: 0,
                total_exec_ms: total,
                count,
                activity_samples: 100,
                from_measured_start: true,
            }),
            redis: Some(RedisStats {
                commands: BTreeMap::from([("get".into(), RedisCommand { calls: 1000, usec: 20_000 })]),
                keyspace_hits: 900,
                keyspace_misses: 100,
                from_measured_start: true,
            }),
            ..Default::default()
        });
        s
    }

    const SLOTS: &str = "SELECT s.id FROM providers p LEFT JOIN slots s ON s.provider_id = p.id WHERE p.id = $1";
    const PROVIDER: &str = "SELECT id, name FROM providers WHERE id = $1";

    /// A suite with these endpoints and request counts.
    fn suite(endpoints: &[(&str, u64)]) -> Summary {
        let eps = endpoints
            .iter()
            .map(|(n, r)| {
                let mut e = testkit::empty_endpoint();
                e.requests = *r;
                (*n, e)
            })
            .collect();
        testkit::summary("s", 10, eps)
    }

    fn pair() -> (Summary, Summary) {
        let base = suite(&[("slots", 1000), ("provider", 1000)]);
        let head = base.clone();
        (base, head)
    }

    #[test]
    fn a_plan_that_moved_without_a_slowdown_is_not_a_change() {
        let (base, head) = pair();
        let base = with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &["Seq Scan on appointments"])]);
        let head = with(head, vec![stmt(SLOTS, 1000, 310.0, 4, &["Bitmap Heap Scan on appointments"])]);
        assert!(underneath(&base, &head).statements.is_empty());
    }

    #[test]
    fn two_cuts_of_one_long_statement_are_one_statement() {
        let long = |p: &str| format!("SELECT {} FROM t WHERE a = {p}", "column_name, ".repeat(40));
        let cut = |s: String| format!("{}…", s.chars().take(400).collect::<String>());
        assert_eq!(key(&cut(long("$12"))), key(&cut(long("?"))));
        assert_ne!(key("SELECT a FROM t"), key("SELECT b FROM t"));
    }

    #[test]
    fn the_statement_that_got_slower_comes_first_with_its_plan_change_and_its_route() {
        let (base, head) = pair();
        let index =
            ["Sort", "  Nested Loop", "    Index Scan using providers_pkey on providers", "    Index Scan using slots_idx on slots"];
        let seq = ["Sort", "  Hash Join", "    Index Scan using providers_pkey on providers", "    Seq Scan on slots"];
        let base = with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &index), stmt(PROVIDER, 1000, 100.0, 3, &[])]);
        let mut slow = stmt(SLOTS, 1000, 15_000.0, 1400, &seq);
        slow.seen_under = BTreeMap::from([("refapp:slots".into(), 95), ("refapp:book".into(), 5)]);
        let head = with(head, vec![slow, stmt(PROVIDER, 1000, 130.0, 3, &[])]);
        let u = underneath(&base, &head);
        assert_eq!(u.statements.len(), 1, "{u:#?}");
        let s = &u.statements[0];
        assert_eq!(s.query, SLOTS);
        assert_eq!(s.plan_before, ["Index Scan using slots_idx on slots"]);
        assert_eq!(s.plan_after, ["Seq Scan on slots"]);
        assert_eq!(s.issued_by[0], ("slots".to_string(), 0.95));
        assert!((s.delta_ms_per_1k - 7350.0).abs() < 1e-6, "{}", s.delta_ms_per_1k);
        assert_eq!(s.base.as_ref().unwrap().blocks_per_call, 4.0);
        assert_eq!(s.head.as_ref().unwrap().blocks_per_call, 1400.0);
        assert_eq!(s.share, 1.0);
        assert!(!u.is_quiet());
    }

    #[test]
    fn an_edited_statement_is_matched_by_likeness_and_literals_do_not_tell_statements_apart() {
        let (base, head) = pair();
        const EDITED: &str = "SELECT s.id FROM providers p LEFT JOIN slots s ON s.provider_id + $2 = p.id WHERE p.id = $1";
        const CANCEL_BASE: &str = "UPDATE appointments SET status = 'cancelled' WHERE id = $1";
        const CANCEL_HEAD: &str = "UPDATE appointments SET status = $2 WHERE id = $1";
        let base =
            with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &["Index Scan using slots_idx on slots"]), stmt(CANCEL_BASE, 1000, 100.0, 3, &[])]);
        let head = with(head, vec![stmt(EDITED, 1000, 9000.0, 900, &["Seq Scan on slots"]), stmt(CANCEL_HEAD, 1000, 110.0, 3, &[])]);
        let u = underneath(&base, &head);
        assert_eq!(u.statements_compared, 2, "both matched: {u:#?}");
        assert_eq!(u.statements.len(), 1);
        let s = &u.statements[0];
        assert_eq!((s.query.as_str(), s.base_query.as_deref()), (EDITED, Some(SLOTS)));
        assert_eq!(
            (s.plan_before.as_slice(), s.plan_after.as_slice()),
            (&["Index Scan using slots_idx on slots".to_string()][..], &["Seq Scan on slots".to_string()][..])
        );
        // Unrelated statements are not taken for edits of each other.
        assert!(likeness(&key(PROVIDER), &key(CANCEL_HEAD)) < EDITED_LIKENESS);
    }

    #[test]
    fn one_statement_counted_under_two_query_ids_is_one_statement() {
        let (base, head) = pair();
        let half = stmt(PROVIDER, 500, 50.0, 3, &[]);
        let base = with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &[]), half.clone(), half]);
        let head = with(head, vec![stmt(SLOTS, 1000, 300.0, 4, &[]), stmt(PROVIDER, 1000, 100.0, 3, &[])]);
        let u = underneath(&base, &head);
        assert!(u.statements.is_empty(), "{:#?}", u.statements);
        assert_eq!(u.statements_compared, 2);
    }

    #[test]
    fn noise_is_not_a_change() {
        let (base, head) = pair();
        let base = with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &[]), stmt(PROVIDER, 1000, 100.0, 3, &[])]);
        // +30% on the big one, +90% on a statement worth 0.5% of the time: both noise.
        let tiny = stmt("SELECT 1", 10, 2.0, 0, &[]);
        let mut base = base;
        base.underneath.as_mut().unwrap().postgres.as_mut().unwrap().top.push(tiny.clone());
        let head =
            with(head, vec![stmt(SLOTS, 1000, 390.0, 4, &[]), stmt(PROVIDER, 1000, 100.0, 3, &[]), stmt("SELECT 1", 10, 3.8, 0, &[])]);
        let u = underneath(&base, &head);
        assert!(u.statements.is_empty(), "{:#?}", u.statements);
        assert_eq!(u.statements_compared, 3);
        assert!(u.is_quiet());
    }

    #[test]
    fn a_machine_slower_all_over_is_not_one_statement_getting_slower() {
        let (base, head) = pair();
        const OTHER: &str = "UPDATE t SET a = $1";
        let base = with(
            base,
            vec![
                stmt(SLOTS, 1000, 300.0, 4, &[]),
                stmt(PROVIDER, 1000, 100.0, 3, &[]),
                stmt("SELECT ?", 1000, 50.0, 0, &[]),
                stmt(OTHER, 1000, 80.0, 2, &[]),
            ],
        );
        let slower = |f: f64| {
            vec![
                stmt(SLOTS, 1000, 300.0 * f, 4, &[]),
                stmt(PROVIDER, 1000, 170.0, 3, &[]),
                stmt("SELECT ?", 1000, 85.0, 0, &[]),
                stmt(OTHER, 1000, 136.0, 2, &[]),
            ]
        };
        assert!(underneath(&base, &with(head.clone(), slower(1.7))).statements.is_empty(), "all 1.7×: the machine");
        let u = underneath(&base, &with(head, slower(4.0)));
        assert_eq!(u.statements.iter().map(|s| s.query.as_str()).collect::<Vec<_>>(), [SLOTS], "4× among 1.7×: that one");
    }

    #[test]
    fn figures_are_per_request_so_a_longer_run_is_not_slower() {
        let base = with(suite(&[("slots", 1000)]), vec![stmt(SLOTS, 1000, 300.0, 4, &[])]);
        let head = with(suite(&[("slots", 3000)]), vec![stmt(SLOTS, 3000, 900.0, 4, &[])]);
        assert!(underneath(&base, &head).statements.is_empty());
    }

    #[test]
    fn app_cpu_per_request_is_said_even_when_latency_holds() {
        let (mut base, mut head) = pair();
        base.resources
            .insert("app".into(), ResourceUsage { cpu_seconds: 2.0, peak_memory_bytes: 100, memory_series: vec![], ..Default::default() });
        head.resources
            .insert("app".into(), ResourceUsage { cpu_seconds: 2.8, peak_memory_bytes: 105, memory_series: vec![], ..Default::default() });
        let u = underneath(&base, &head);
        let cpu = u.resources.iter().find(|r| r.figure.starts_with("CPU")).unwrap();
        assert!(cpu.grew && (cpu.relative().unwrap() - 0.4).abs() < 1e-9);
        assert!(!u.resources.iter().find(|r| r.figure == "peak memory").unwrap().grew);
        assert!(!u.is_quiet());
        assert!(u.notes.iter().any(|n| n.starts_with("baseline: no statement statistics")), "{:?}", u.notes);
    }

    #[test]
    fn redis_commands_and_the_hit_ratio_are_compared() {
        let (base, head) = pair();
        let base = with(base, vec![]);
        let mut head = with(head, vec![]);
        let r = head.underneath.as_mut().unwrap().redis.as_mut().unwrap();
        r.commands.insert("get".into(), RedisCommand { calls: 1000, usec: 20_500 });
        r.commands.insert("set".into(), RedisCommand { calls: 900, usec: 9_000 });
        r.keyspace_hits = 100;
        r.keyspace_misses = 900;
        let u = underneath(&base, &head);
        assert_eq!(u.commands.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(), ["set"]);
        assert_eq!(u.hit_ratio, Some((Some(0.9), Some(0.1))));
        // Per request of the suite: 900 calls over its 2000 requests.
        assert_eq!(u.commands[0].calls_per_request(), (0.0, 0.45));
    }

    /// `stmt` seen under these connection names.
    fn seen(mut s: Statement, under: &[(&str, u64)]) -> Statement {
        s.seen_under = under.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        s
    }

    const ITEM: &str = "SELECT starts_at FROM slots WHERE id = $1";
    const BIG: &str = "SELECT id, name FROM providers ORDER BY name LIMIT $1";

    #[test]
    fn a_loop_of_queries_is_listed_first_whatever_its_time_per_request_of_its_endpoint() {
        let (base, head) = pair();
        let base = with(
            base,
            vec![
                seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp:slots", 9)]),
                seen(stmt(BIG, 1000, 5000.0, 3, &[]), &[("refapp:provider", 30)]),
            ],
        );
        // One query per slot of the listing: 16 per request of slots, cheap each (25 ms per
        // 1000 requests, under 5% of the statement time), beside a statement 4× slower.
        let head = with(
            head,
            vec![
                seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp:slots", 9)]),
                seen(stmt(BIG, 1000, 20_000.0, 3, &[]), &[("refapp:provider", 30)]),
                seen(stmt(ITEM, 16_000, 50.0, 1, &[]), &[("refapp:slots", 2)]),
            ],
        );
        let u = underneath(&base, &head);
        assert_eq!(u.statements.iter().map(|s| s.query.as_str()).collect::<Vec<_>>(), [ITEM, BIG], "{u:#?}");
        let lp = &u.statements[0];
        assert!(lp.is_loop && lp.base.is_none());
        assert_eq!(lp.calls_per_request.endpoints, ["slots"]);
        assert_eq!((lp.calls_per_request.base, lp.calls_per_request.head), (Some(0.0), Some(16.0)));
        assert!(!lp.calls_per_request.base_at_most && lp.calls_per_request.suite_because.is_none());
        let big = &u.statements[1];
        assert!(!big.is_loop);
        assert_eq!(big.calls_per_request.endpoints, ["provider"]);
        assert_eq!((big.calls_per_request.base, big.calls_per_request.head), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn a_statement_not_told_to_an_endpoint_counts_per_request_of_the_suite_and_says_why() {
        let (base, head) = pair();
        // Seen under the app's own name only (connections not named after routes).
        let base = with(base, vec![seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp", 9)])]);
        let head = with(head, vec![seen(stmt(SLOTS, 8000, 300.0, 4, &[]), &[("refapp", 9), ("refapp:slots", 3)])]);
        let u = underneath(&base, &head);
        let c = &u.statements[0].calls_per_request;
        assert!(c.endpoints.is_empty());
        assert!(c.suite_because.as_deref().is_some_and(|w| w.contains("`refapp`")), "{c:?}");
        // 1000 and 8000 calls over the suite's 2000 requests.
        assert_eq!((c.base, c.head), (Some(0.5), Some(4.0)));
        assert!(u.statements[0].is_loop);

        // Never seen in the samples: per request of the suite too.
        let (base, head) = pair();
        let base = with(base, vec![stmt(SLOTS, 1000, 300.0, 4, &[])]);
        let head = with(head, vec![stmt(SLOTS, 1000, 3000.0, 4, &[])]);
        let c = &underneath(&base, &head).statements[0].calls_per_request;
        assert!(c.suite_because.as_deref().is_some_and(|w| w.contains("never seen")), "{c:?}");
        assert_eq!((c.base, c.head), (Some(0.5), Some(0.5)));
    }

    #[test]
    fn connection_names_name_the_plans_requests_when_they_match() {
        let eps: BTreeSet<&str> = ["slots", "hot_slots", "book"].into_iter().collect();
        assert_eq!(endpoint_named("refapp:slots", &eps).as_deref(), Some("slots"));
        assert_eq!(endpoint_named("book", &eps).as_deref(), Some("book"));
        assert_eq!(endpoint_named("shop:Hot-Slots", &eps).as_deref(), Some("hot_slots"));
        assert_eq!(endpoint_named("refapp", &eps), None);
        assert_eq!(endpoint_named("(unnamed)", &eps), None);
        assert_eq!(endpoint_named("refapp:ws_slots", &eps), None);
    }

    #[test]
    fn a_statement_the_baseline_left_out_ran_at_most_as_often_as_the_left_out_ones() {
        let (base, _) = pair();
        let mut base = with(base, vec![seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp:slots", 9)])]);
        let p = base.underneath.as_mut().unwrap().postgres.as_mut().unwrap();
        // 4 statements left out, 2000 calls between them.
        (p.count, p.total_calls) = (5, 3000);
        let head = |calls: u64| {
            with(
                pair().1,
                vec![
                    seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp:slots", 9)]),
                    seen(stmt(ITEM, calls, 400.0, 1, &[]), &[("refapp:slots", 2)]),
                ],
            )
        };
        let u = underneath(&base, &head(16_000));
        let c = &u.statements[0].calls_per_request;
        assert!(u.statements[0].is_loop && c.base_at_most);
        assert_eq!((c.base, c.head), (Some(2.0), Some(16.0)));
        // Two calls per request could have been there already: not a loop.
        let u = underneath(&base, &head(2000));
        assert!(u.statements.iter().all(|s| !s.is_loop), "{u:#?}");
    }

    #[test]
    fn counters_that_include_the_warm_up_are_scaled_to_the_measured_time() {
        let (base, head) = pair();
        // 10 s measured after 5 s of warm-up: two thirds of 1500 calls were measured ones.
        let mut base = with(base, vec![seen(stmt(SLOTS, 1500, 450.0, 4, &[]), &[("refapp:slots", 9)])]);
        base.underneath.as_mut().unwrap().postgres.as_mut().unwrap().from_measured_start = false;
        assert_eq!((base.run.duration_s, base.run.warmup_s), (10.0, 5.0));
        let head = with(head, vec![seen(stmt(SLOTS, 1000, 300.0, 4, &[]), &[("refapp:slots", 9)]), stmt(BIG, 1000, 9000.0, 3, &[])]);
        let u = underneath(&base, &head);
        let s = u.statements.iter().find(|s| s.query == BIG).expect("the new statement");
        assert!(!s.is_loop);
        assert!(u.statements.iter().all(|s| s.query != SLOTS), "the same time per request: {u:#?}");
        assert!(
            u.notes.iter().any(|n| n.starts_with("baseline: its statement counters include the warm-up") && n.contains("67%")),
            "{:?}",
            u.notes
        );
        let (b, h) = (Side::new(&base, false), Side::new(&head, true));
        let c = calls_per_request(
            &head.underneath.as_ref().unwrap().postgres.as_ref().unwrap().top[0],
            base.underneath.as_ref().unwrap().postgres.as_ref().unwrap().top.first(),
            None,
            &["slots"].into_iter().collect(),
            b,
            h,
        );
        assert!((c.base.unwrap() - 1.0).abs() < 1e-9 && c.head == Some(1.0), "{c:?}");
    }
}
