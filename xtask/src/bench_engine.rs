//! `cargo xtask bench-engine`: the load engine against wrk and oha, on the same server,
//! connections and core.
//!
//! A trivial HTTP server ([`crate::bench_server`]) runs as a separate process pinned to one
//! core; each load generator runs as its own process pinned to another core (`taskset`):
//! wrk with one thread, oha with one worker thread (`--no-tui --output-format json`), then the
//! engine (a constant-vus suite with one user per connection and no think time, on a
//! one-thread runtime), for the same duration. A peer that is not installed is skipped with a
//! line saying so. It prints the rates, the engine's ratio to each peer and the engine's
//! memory: peak RSS, and RSS after the first seconds and at the end, so a long run
//! (`--duration 10m`) shows whether memory stays flat.
//!
//! On a shared machine the rates depend on what else runs on those cores, so each run also
//! prints the CPU time the generator spent per request (from `getrusage` of the finished
//! child): that figure is what the engine's own efficiency is, whatever the neighbours do.
//!
//! This is a benchmark, not a test: it prints figures and exits 0 whatever they are.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct BenchEngineArgs {
    /// How long each load generator runs (`10s`, `1m`, `10m`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent connections (engine: virtual users, each owning one).
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// CPU the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_cpu: usize,
    /// CPU the load generators are pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_cpu: usize,
    /// Alternate the peers and the engine this many times (the machine is shared: look at the spread).
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Leave wrk out.
    #[arg(long)]
    pub no_wrk: bool,
    /// Leave oha out.
    #[arg(long)]
    pub no_oha: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchClientArgs {
    #[arg(long)]
    pub url: String,
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[arg(long)]
    pub connections: u32,
}

/// Kills the process when dropped, on every exit path.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the xtask executable")
}

/// A long-lived child pinned to one CPU. Short commands whose output we read go through xshell;
/// xshell cannot spawn a process that outlives the call, so children we keep use tokio's.
fn pinned(cpu: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(cpu.to_string()).arg(program).kill_on_drop(true);
    c
}

pub async fn run(args: BenchEngineArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    which("taskset")?;
    let wrk = !args.no_wrk && which("wrk").is_ok();
    if !args.no_wrk && !wrk {
        println!("wrk is not installed (`apt-get install wrk`): skipping wrk");
    }
    let oha = !args.no_oha && which("oha").is_ok();
    if !args.no_oha && !oha {
        println!("oha is not installed (`cargo install oha --locked`): skipping oha");
    }
    let (server, url) = start_server(args.server_cpu).await?;
    let secs = args.duration.as_secs().max(1);
    println!(
        "bench-engine: {url}, server on cpu {}, load generators on cpu {}, {} connections, {}s per run",
        args.server_cpu, args.client_cpu, args.connections, secs
    );

    let mut wrk_rates = Vec::new();
    let mut oha_rates = Vec::new();
    let mut engine_rates = Vec::new();
    for round in 1..=args.rounds {
        let run = Run { args: &args, url: &url, secs, round, cancel: &cancel };
        if wrk {
            wrk_rates.push(run.wrk().await?);
        }
        if oha {
            oha_rates.push(run.oha().await?);
        }
        engine_rates.push(run.engine().await?);
    }
    print_medians(&engine_rates, &wrk_rates, &oha_rates);
    drop(server);
    Ok(())
}

/// Starts the bench server pinned to `cpu` on a free loopback port; returns it (killed when
/// dropped) and its URL.
async fn start_server(cpu: usize) -> anyhow::Result<(Guard, String)> {
    let mut server = pinned(cpu, exe()?)
        .arg("bench-server")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the bench server")?;
    let stdout = server.stdout.take().context("no server stdout")?;
    let server = Guard(server);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line))
        .await
        .context("the bench server did not start within 10 s")??;
    let addr = line.trim().strip_prefix("listening ").context("unexpected bench server output")?.to_string();
    Ok((server, format!("http://{addr}/")))
}

/// One load generator's run in one round: each runs pinned to the client CPU for `secs`
/// against `url`, prints its line and returns its rate in requests per second.
struct Run<'a> {
    args: &'a BenchEngineArgs,
    url: &'a str,
    secs: u64,
    round: u32,
    cancel: &'a CancellationToken,
}

impl Run<'_> {
    /// wrk with one thread; its rate and p99 read from its text output.
    async fn wrk(&self) -> anyhow::Result<f64> {
        let (round, secs) = (self.round, self.secs);
        let cpu0 = children_cpu();
        let out = tokio::select! {
            o = pinned(self.args.client_cpu, "wrk")
                .args(["-t1", &format!("-c{}", self.args.connections), &format!("-d{secs}s"), "--latency", self.url])
                .stdin(Stdio::null())
                .output() => o.context("cannot run wrk")?,
            _ = self.cancel.cancelled() => bail!("cancelled"),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let rate = text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .with_context(|| format!("cannot read wrk's rate from:\n{text}"))?;
        let p99 = text.lines().find(|l| l.trim_start().starts_with("99%")).map(|l| l.trim().to_string());
        let cpu = per_request(cpu0, children_cpu(), rate * secs as f64);
        println!("round {round}: wrk     {rate:>10.0} req/s  (CPU per request {cpu}; latency {})", p99.unwrap_or_default());
        Ok(rate)
    }

    /// oha with one worker thread; its figures read from its JSON output.
    async fn oha(&self) -> anyhow::Result<f64> {
        let (round, secs) = (self.round, self.secs);
        let cpu0 = children_cpu();
        let out = tokio::select! {
            o = pinned(self.args.client_cpu, "oha")
                .args(["--no-tui", "--output-format", "json", "--worker-threads", "1"])
                .args(["-c", &self.args.connections.to_string(), "-z", &format!("{secs}s"), self.url])
                .stdin(Stdio::null())
                .output() => o.context("cannot run oha")?,
            _ = self.cancel.cancelled() => bail!("cancelled"),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text).with_context(|| format!("cannot read oha's JSON ({}):\n{text}", out.status))?;
        let rate =
            v["summary"]["requestsPerSec"].as_f64().with_context(|| format!("no summary.requestsPerSec in oha's output:\n{text}"))?;
        let total: u64 = v["statusCodeDistribution"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
        let cpu = per_request(cpu0, children_cpu(), total as f64);
        let p99 = v["latencyPercentiles"]["p99"].as_f64().map(|s| format!("{:.3} ms", s * 1000.0)).unwrap_or_else(|| "?".into());
        println!("round {round}: oha     {rate:>10.0} req/s  (CPU per request {cpu}; p99 {p99})");
        Ok(rate)
    }

    /// The engine, as the hidden `bench-client` command in a process of its own; its figures
    /// read from the JSON line it prints last.
    async fn engine(&self) -> anyhow::Result<f64> {
        let (round, secs) = (self.round, self.secs);
        let cpu0 = children_cpu();
        let out = tokio::select! {
            o = pinned(self.args.client_cpu, exe()?)
                .args(["bench-client", "--url", self.url, "--duration", &format!("{secs}s")])
                .arg("--connections")
                .arg(self.args.connections.to_string())
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output() => o.context("cannot run the engine client")?,
            _ = self.cancel.cancelled() => bail!("cancelled"),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .with_context(|| format!("the engine client failed ({}):\n{text}", out.status))?;
        let rate = v["rps"].as_f64().unwrap_or(0.0);
        let cpu = per_request(cpu0, children_cpu(), v["requests"].as_f64().unwrap_or(0.0));
        println!(
            "round {round}: engine  {rate:>10.0} req/s  (CPU per request {cpu}; p99 {} ms, errors {}, peak RSS {} MiB, RSS after 2 s {} MiB, at the end {} MiB)",
            v["p99_ms"],
            v["errors"],
            mib(&v["peak_rss_kb"]),
            mib(&v["rss_kb_early"]),
            mib(&v["rss_kb_end"])
        );
        Ok(rate)
    }
}

/// The median rate of each generator over the rounds, and the engine's ratio to each peer.
fn print_medians(engine_rates: &[f64], wrk_rates: &[f64], oha_rates: &[f64]) {
    let median = |rates: &[f64]| perf::util::median(rates.iter().copied());
    if let Some(e) = median(engine_rates) {
        let mut line = format!("median: engine {e:.0} req/s");
        if let Some(w) = median(wrk_rates) {
            line += &format!(", wrk {w:.0} req/s, engine/wrk = {:.3} (goal >= 0.9)", e / w);
        }
        if let Some(o) = median(oha_rates) {
            line += &format!(", oha {o:.0} req/s, engine/oha = {:.3}", e / o);
        }
        println!("{line}");
    }
}

/// CPU seconds (user, system) used so far by waited-for children.
fn children_cpu() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (s(u.user_time()), s(u.system_time()))
        }
        Err(_) => (0.0, 0.0),
    }
}

/// CPU microseconds per request, user and system, from the rusage delta around one child.
fn per_request(before: (f64, f64), after: (f64, f64), requests: f64) -> String {
    if requests <= 0.0 {
        return "?".into();
    }
    let (u, s) = ((after.0 - before.0) * 1e6 / requests, (after.1 - before.1) * 1e6 / requests);
    format!("{:.2} µs user + {:.2} µs sys", u, s)
}

fn mib(kb: &Value) -> String {
    kb.as_f64().map(|k| format!("{:.1}", k / 1024.0)).unwrap_or_else(|| "?".into())
}

fn which(program: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    if found { Ok(()) } else { bail!("`{program}` is not installed (needed by bench-engine)") }
}

/// A `/proc/self/status` field in kB.
fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The engine side (hidden `bench-client`): one constant-vus suite, printed as one JSON line.
pub fn client(args: BenchClientArgs) -> anyhow::Result<()> {
    let plan = format!(
        r#"
version = 1
[app.local]
command = ["none"]
[requests.hello]
path = "/"
[suites.bench.scenarios.flat_out]
executor = "constant-vus"
vus = {}
duration = "{}ms"
graceful_stop = "1s"
request = "hello"
"#,
        args.connections,
        args.duration.as_millis()
    );
    let compiled = perf::plan::parse(std::path::Path::new("bench-engine.toml"), plan)?.compile(&perf::plan::CompileOptions::default())?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    let (rss_early, rss_end, result) = rt.block_on(async {
        let sampler = tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            status_kb("VmRSS:")
        });
        let mut opts = perf::engine::RunOptions::new(args.url.clone());
        opts.progress = perf::engine::ProgressMode::Off;
        let result = perf::engine::run_suite(&compiled, &compiled.suites[0], opts).await;
        (sampler.await.ok().flatten(), status_kb("VmRSS:"), result)
    });
    let result = result?;
    let ep = &result.endpoints[0];
    let secs = result.measured.as_secs_f64();
    let q = |q: f64| ep.latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "requests": ep.requests,
            "errors": ep.errors(),
            "measured_s": secs,
            "rps": ep.requests as f64 / secs,
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "peak_rss_kb": status_kb("VmHWM:"),
            "rss_kb_early": rss_early,
            "rss_kb_end": rss_end,
            "threads": threads,
        })
    );
    Ok(())
}
