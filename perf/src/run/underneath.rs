//! What the databases did during one suite: PostgreSQL's `pg_stat_statements` and Redis's
//! `INFO commandstats`, read by the gate over its own connections (never through the fault
//! proxies), so that a slower run can say which statement or command got slower.
//!
//! A database the run did not start (a plan without it: `plan::EnvironmentSetup::starts`) is
//! not read: its side of [`Underneath`] says it was not started, and the run goes on.
//!
//! Per suite: [`Probe::open`] connects and resets both sets of counters just before the load
//! (which also finds out whether they can be read); [`Probe::sample_activity`] runs beside the
//! load, resets both again when the warm-up ends — so that the counters cover the measured
//! requests and nothing else, and a statement's calls over its endpoints' requests is its
//! calls per request — then samples `pg_stat_activity` about ten times a second, at random
//! moments (which statements are running, under which `application_name`); [`Probe::read`]
//! reads the counters after the load, keeps the statements that took most time and asks
//! PostgreSQL for the generic plan of the first of them.
//!
//! Nothing read here holds a value the load sent: `pg_stat_statements` keeps statements
//! normalized (constants and parameters are `$1`, `$2`…), and plans are generic plans of the
//! normalized text (`plan_cache_mode = force_generic_plan`, every parameter NULL, no ANALYZE:
//! nothing is executed).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use tokio_util::sync::CancellationToken;

use crate::engine::RunClock;
use crate::env::procs::error_chain;
use crate::env::{PostgresAccess, ServiceAccess};
use crate::plan::{Service, not_started};
use crate::summary::{RedisCommand, RedisStats, Statement, Statements, Underneath};

/// Statements whose generic plan is asked for, from the top.
const EXPLAINED: usize = 10;
/// Plan lines kept per statement.
const PLAN_LINES: usize = 40;
/// How often `pg_stat_activity` is sampled beside the load, on average: each pause is drawn
/// at random between half and one and a half of it. A fixed beat would alias with the load's:
/// an endpoint at 10 requests per second arrives every 100 ms from the same measured start the
/// sampler starts at, so a 100 ms sampler read the database just before each of its statements
/// began and never saw one (a 10 ms statement, active 10% of the time, in none of 129 samples).
const ACTIVITY_EVERY: Duration = Duration::from_millis(100);
/// Bound on every statistics query: the probe never holds a suite up.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which statements ran under which `application_name`: query id → name → samples; and which
/// counters were reset again when the warm-up ended.
#[derive(Debug, Default)]
pub struct Activity {
    pub samples: u64,
    pub seen: BTreeMap<i64, BTreeMap<String, u64>>,
    /// `pg_stat_statements` was reset at the measured start.
    pub postgres_reset: bool,
    /// Redis's `CONFIG RESETSTAT` was done at the measured start.
    pub redis_reset: bool,
}

/// The gate's connections to the suite's databases, counters reset.
pub struct Probe {
    access: ServiceAccess,
    postgres: Result<tokio_postgres::Client, String>,
    redis: Result<redis::aio::MultiplexedConnection, String>,
}

impl Probe {
    /// Connects to both databases and resets their counters. A database that cannot be read,
    /// or that the run did not start, is not an error of the run: its side of [`Underneath`]
    /// says why.
    pub async fn open(access: ServiceAccess) -> Probe {
        let postgres = match &access.postgres {
            None => Err(not_started(Service::Postgres)),
            Some(pg) => match connect_postgres(pg).await {
                Ok(client) => reset_statements(&client).await.map(|()| client),
                Err(e) => Err(e),
            },
        };
        let redis = match access.redis_port {
            None => Err(not_started(Service::Redis)),
            Some(port) => match connect_redis(port).await {
                Ok(conn) => reset_commandstats(&conn).await.map(|()| conn),
                Err(e) => Err(e),
            },
        };
        Probe { access, postgres, redis }
    }

    /// Waits for the end of the warm-up (the load's `clock`), resets both sets of counters
    /// then, and samples `pg_stat_activity` about every 100 ms ([`ACTIVITY_EVERY`]) until `done`, on a connection of its
    /// own. A load that ends before its clock is known leaves the counters as [`Probe::open`]
    /// reset them (the summary then says they include the warm-up).
    pub async fn sample_activity(&self, mut clock: tokio::sync::watch::Receiver<Option<RunClock>>, done: CancellationToken) -> Activity {
        let mut out = Activity::default();
        let measured_start = loop {
            if let Some(c) = *clock.borrow_and_update() {
                break c.measured_start;
            }
            tokio::select! {
                _ = done.cancelled() => return out,
                changed = clock.changed() => if changed.is_err() { return out },
            }
        };
        tokio::select! {
            _ = done.cancelled() => return out,
            _ = tokio::time::sleep_until(measured_start.into()) => {}
        }
        (out.postgres_reset, out.redis_reset) = self.reset_at_measured_start().await;
        let (Ok(_), Some(pg)) = (&self.postgres, &self.access.postgres) else { return out };
        let Ok(client) = connect_postgres(pg).await else { return out };
        let sql = "SELECT query_id, application_name FROM pg_stat_activity \
                   WHERE state = 'active' AND query_id IS NOT NULL AND pid <> pg_backend_pid() \
                   AND datname = current_database()";
        let mut rng = SmallRng::seed_from_u64(rand::random());
        loop {
            let pause = ACTIVITY_EVERY.mul_f64(rng.random_range(0.5..1.5));
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(pause) => {
                    let Ok(Ok(rows)) = tokio::time::timeout(QUERY_TIMEOUT, client.query(sql, &[])).await else { break };
                    out.samples += 1;
                    for row in rows {
                        let (Ok(id), Ok(name)) = (row.try_get::<_, i64>(0), row.try_get::<_, String>(1)) else { continue };
                        let name = if name.is_empty() { "(unnamed)".to_string() } else { name };
                        *out.seen.entry(id).or_default().entry(name).or_default() += 1;
                    }
                }
            }
        }
        out
    }

    /// Resets both sets of counters again (the end of the warm-up); which resets were done.
    /// A statement running across the reset counts after it: a few calls out of thousands.
    async fn reset_at_measured_start(&self) -> (bool, bool) {
        let postgres = async {
            match &self.postgres {
                Ok(client) => reset_statements(client).await.is_ok(),
                Err(_) => false,
            }
        };
        let redis = async {
            match &self.redis {
                Ok(conn) => reset_commandstats(conn).await.is_ok(),
                Err(_) => false,
            }
        };
        tokio::join!(postgres, redis)
    }

    /// Reads both sets of counters since [`Probe::open`].
    pub async fn read(self, activity: Activity) -> Underneath {
        let mut out = Underneath::default();
        let redis_reset = activity.redis_reset;
        match &self.postgres {
            Ok(client) => match read_statements(client, activity).await {
                Ok(s) => out.postgres = Some(s),
                Err(e) => out.postgres_unavailable = Some(e),
            },
            Err(e) => out.postgres_unavailable = Some(e.clone()),
        }
        match self.redis {
            Ok(mut conn) => match read_redis(&mut conn).await {
                Ok(r) => out.redis = Some(RedisStats { from_measured_start: redis_reset, ..r }),
                Err(e) => out.redis_unavailable = Some(e),
            },
            Err(e) => out.redis_unavailable = Some(e),
        }
        out
    }
}

/// Why an environment that did not start the databases has no statistics.
pub fn unavailable_external() -> Underneath {
    let why = "the external backend did not start the databases, so the gate cannot read their statistics".to_string();
    Underneath { postgres_unavailable: Some(why.clone()), redis_unavailable: Some(why), ..Underneath::default() }
}

async fn connect_postgres(a: &PostgresAccess) -> Result<tokio_postgres::Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(a.port)
        .user(&a.user)
        .dbname(&a.database)
        .application_name("perf-gate")
        .connect_timeout(Duration::from_secs(5));
    if let Some(p) = &a.password {
        cfg.password(p);
    }
    let (client, conn) = tokio::time::timeout(QUERY_TIMEOUT, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| format!("connecting to postgres on 127.0.0.1:{} took more than 10s", a.port))?
        .map_err(|e| format!("connecting to postgres on 127.0.0.1:{}: {}", a.port, error_chain(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn reset_statements(client: &tokio_postgres::Client) -> Result<(), String> {
    let sql = "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();";
    match tokio::time::timeout(QUERY_TIMEOUT, client.batch_execute(sql)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "pg_stat_statements is not available ({}): load it with shared_preload_libraries = 'pg_stat_statements'",
            error_chain(&e)
        )),
        Err(_) => Err("resetting pg_stat_statements took more than 10s".into()),
    }
}

/// Redis's `CONFIG RESETSTAT`, bounded like every statistics query.
async fn reset_commandstats(conn: &redis::aio::MultiplexedConnection) -> Result<(), String> {
    let mut conn = conn.clone();
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("RESETSTAT");
    match tokio::time::timeout(QUERY_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("CONFIG RESETSTAT: {e}")),
        Err(_) => Err("CONFIG RESETSTAT took more than 10s".into()),
    }
}

async fn read_statements(client: &tokio_postgres::Client, activity: Activity) -> Result<Statements, String> {
    // The gate's own statements (this one, the sampler's) name the statistics views.
    let sql = "SELECT s.queryid, s.query, s.calls, s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read, \
                      s.temp_blks_read + s.temp_blks_written \
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
               WHERE d.datname = current_database() AND s.toplevel AND s.query NOT LIKE '%pg_stat_%' \
               ORDER BY s.total_exec_time DESC";
    let rows = tokio::time::timeout(QUERY_TIMEOUT, client.query(sql, &[]))
        .await
        .map_err(|_| "reading pg_stat_statements took more than 10s".to_string())?
        .map_err(|e| format!("reading pg_stat_statements: {}", error_chain(&e)))?;
    let mut out = Statements { activity_samples: activity.samples, from_measured_start: activity.postgres_reset, ..Statements::default() };
    let mut seen = activity.seen;
    for row in rows {
        let get = |i: usize| row.try_get::<_, i64>(i).unwrap_or(0).max(0) as u64;
        let total_ms: f64 = row.try_get(3).unwrap_or(0.0);
        let calls = get(2);
        out.count += 1;
        out.total_calls += calls;
        out.total_exec_ms += total_ms;
        if out.top.len() >= Statements::MAX_KEPT {
            continue;
        }
        let id: i64 = row.try_get(0).unwrap_or(0);
        let text: String = row.try_get(1).unwrap_or_default();
        out.top.push(Statement {
            query: tidy_text(&text),
            calls,
            total_ms: round3(total_ms),
            mean_ms: if calls == 0 { 0.0 } else { round3(total_ms / calls as f64) },
            rows: get(4),
            shared_blks_hit: get(5),
            shared_blks_read: get(6),
            temp_blks: get(7),
            plan: Vec::new(),
            plan_unavailable: None,
            seen_under: seen.remove(&id).unwrap_or_default(),
        });
        // The full text (not the cut one) is what PostgreSQL can plan.
        if out.top.len() <= EXPLAINED {
            let last = out.top.last_mut().expect("just pushed");
            match explain(client, &text).await {
                Ok(plan) => last.plan = plan,
                Err(e) => last.plan_unavailable = Some(e),
            }
        }
    }
    out.total_exec_ms = round3(out.total_exec_ms);
    Ok(out)
}

/// The generic plan of a normalized statement, one node per line.
async fn explain(client: &tokio_postgres::Client, query: &str) -> Result<Vec<String>, String> {
    let head = query.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    if !["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains(&head.as_str()) {
        return Err(format!("{head} statements have no plan"));
    }
    let params = max_param(query);
    let nulls = vec!["NULL"; params].join(", ");
    let execute = if params == 0 { "perf_gate_explain".to_string() } else { format!("perf_gate_explain({nulls})") };
    let prepare = format!("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE perf_gate_explain AS {query}");
    let result = async {
        client.batch_execute(&prepare).await.map_err(|e| format!("PREPARE: {}", error_chain(&e)))?;
        let rows = client
            .simple_query(&format!("EXPLAIN (FORMAT JSON) EXECUTE {execute}"))
            .await
            .map_err(|e| format!("EXPLAIN: {}", error_chain(&e)))?;
        let json = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .ok_or("EXPLAIN returned no row")?;
        plan_lines(&json)
    };
    let outcome = tokio::time::timeout(QUERY_TIMEOUT, result).await.unwrap_or_else(|_| Err("EXPLAIN took more than 10s".into()));
    // Prepared statements outlive transactions: remove it whatever happened.
    let _ = client.batch_execute("ROLLBACK; DEALLOCATE ALL").await;
    outcome
}

/// The highest `$N` in a normalized statement.
fn max_param(query: &str) -> usize {
    let b = query.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let digits: String = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).map(|&c| c as char).collect();
            if let Ok(n) = digits.parse::<usize>() {
                max = max.max(n);
            }
            i += 1 + digits.len();
        } else {
            i += 1;
        }
    }
    max
}

/// `EXPLAIN (FORMAT JSON)` → `Node Type[ using index][ on relation]` per node, two spaces of
/// indent per level.
pub fn plan_lines(json: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("EXPLAIN's JSON: {e}"))?;
    let root = v.get(0).and_then(|p| p.get("Plan")).ok_or("EXPLAIN's JSON has no Plan")?;
    let mut out = Vec::new();
    walk(root, 0, &mut out);
    out.truncate(PLAN_LINES);
    Ok(out)
}

fn walk(node: &serde_json::Value, depth: usize, out: &mut Vec<String>) {
    let text = |k: &str| node.get(k).and_then(|v| v.as_str());
    let mut line = format!("{}{}", "  ".repeat(depth), text("Node Type").unwrap_or("?"));
    if let Some(j) = text("Join Type").filter(|_| text("Node Type").is_some_and(|t| t.ends_with("Join") || t == "Nested Loop")) {
        line.push_str(&format!(" ({j})"));
    }
    if let Some(i) = text("Index Name") {
        line.push_str(&format!(" using {i}"));
    }
    if let Some(r) = text("Relation Name") {
        line.push_str(&format!(" on {r}"));
    }
    out.push(line);
    for child in node.get("Plans").and_then(|p| p.as_array()).into_iter().flatten() {
        walk(child, depth + 1, out);
    }
}

/// Literals masked ([`crate::util::mask_sql_literals`]: PostgreSQL normalizes a statement's
/// text only when it parses it after the reset, not a statement the app prepared before),
/// whitespace collapsed, cut at [`Statements::MAX_TEXT`] characters (with `…`).
fn tidy_text(text: &str) -> String {
    let one_line = crate::util::mask_sql_literals(text).split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(Statements::MAX_TEXT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn connect_redis(port: u16) -> Result<redis::aio::MultiplexedConnection, String> {
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {e}"))?;
    tokio::time::timeout(QUERY_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| format!("connecting to redis on 127.0.0.1:{port} took more than 10s"))?
        .map_err(|e| format!("connecting to redis on 127.0.0.1:{port}: {e}"))
}

async fn read_redis(conn: &mut redis::aio::MultiplexedConnection) -> Result<RedisStats, String> {
    let info = |section: &'static str| {
        let mut conn = conn.clone();
        async move {
            tokio::time::timeout(QUERY_TIMEOUT, redis::cmd("INFO").arg(section).query_async::<String>(&mut conn))
                .await
                .map_err(|_| format!("INFO {section} took more than 10s"))?
                .map_err(|e| format!("INFO {section}: {e}"))
        }
    };
    let commands = info("commandstats").await?;
    let stats = info("stats").await?;
    Ok(parse_redis(&commands, &stats))
}

/// `cmdstat_get:calls=10,usec=20,…` lines and the `keyspace_*` counters; the gate's own
/// `INFO` and `CONFIG` left out.
pub fn parse_redis(commandstats: &str, stats: &str) -> RedisStats {
    let mut out = RedisStats::default();
    for line in commandstats.lines() {
        let Some((name, fields)) = line.trim().strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
        let name = name.to_ascii_lowercase();
        if name == "info" || name.starts_with("config") {
            continue;
        }
        let field = |k: &str| {
            fields.split(',').find_map(|kv| kv.split_once('=').filter(|(key, _)| *key == k)).and_then(|(_, v)| v.parse::<u64>().ok())
        };
        out.commands.insert(name, RedisCommand { calls: field("calls").unwrap_or(0), usec: field("usec").unwrap_or(0) });
    }
    for line in stats.lines() {
        match line.trim().split_once(':') {
            Some(("keyspace_hits", v)) => out.keyspace_hits = v.trim().parse().unwrap_or(0),
            Some(("keyspace_misses", v)) => out.keyspace_misses = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_as_one_node_per_line() {
        let json = r#"[{"Plan": {"Node Type": "Sort", "Plans": [{"Node Type": "Nested Loop", "Join Type": "Left", "Plans": [
            {"Node Type": "Index Scan", "Index Name": "providers_pkey", "Relation Name": "providers"},
            {"Node Type": "Seq Scan", "Relation Name": "slots"}]}]}}]"#;
        assert_eq!(
            plan_lines(json).unwrap(),
            ["Sort", "  Nested Loop (Left)", "    Index Scan using providers_pkey on providers", "    Seq Scan on slots"]
        );
        assert!(plan_lines("[]").unwrap_err().contains("no Plan"));
    }

    #[test]
    fn parameters_are_counted_and_text_is_cut() {
        assert_eq!(max_param("SELECT $1, $12 FROM t WHERE a = $3"), 12);
        assert_eq!(max_param("SELECT 1"), 0);
        let long = format!("SELECT   {}\n FROM t", "x, ".repeat(300));
        let t = tidy_text(&long);
        assert_eq!(t.chars().count(), Statements::MAX_TEXT + 1);
        assert!(t.ends_with('…') && !t.contains("  ") && !t.contains('\n'));
        assert_eq!(tidy_text("UPDATE a SET status = 'cancelled'\n  WHERE id = $1"), "UPDATE a SET status = '?' WHERE id = $1");
    }

    #[test]
    fn redis_counters_leave_out_the_gates_own_commands() {
        let cs = "# Commandstats\r\ncmdstat_get:calls=10,usec=25,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n\
                  cmdstat_info:calls=2,usec=100\r\ncmdstat_config|resetstat:calls=1,usec=5\r\ncmdstat_set:calls=3,usec=9\r\n";
        let st = "# Stats\r\nkeyspace_hits:7\r\nkeyspace_misses:3\r\n";
        let r = parse_redis(cs, st);
        assert_eq!(r.commands.keys().collect::<Vec<_>>(), ["get", "set"]);
        assert_eq!(r.commands["get"], RedisCommand { calls: 10, usec: 25 });
        assert_eq!(r.hit_ratio(), Some(0.7));
    }
}
