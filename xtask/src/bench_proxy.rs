//! `cargo xtask bench-proxy`: what the fault proxy costs when no fault is set, and that a set
//! latency is what the client sees.
//!
//! Starts a local redis-server and a [`FaultProxy`] in front of it, then runs
//! `redis-benchmark` (GET and SET) against Redis directly, through the proxy and, when `socat`
//! is installed, through socat (the peer: a plain TCP relay, one process per connection),
//! alternating for `--rounds`, and once more through the proxy with `--latency` each way (1 ms
//! unless told; the bundled plan's `link_latency` is 0.5 ms), saying what the proxy itself adds.
//! Prints requests per second and p50/p99 for each, and the ratios to the direct connection.
//!
//! This is a benchmark, not a test: it prints figures and exits 0 whatever they are.

use std::time::Duration;

use anyhow::{Context, bail};
use perf::env::local::{RedisOptions, RedisProcess};
use perf::faults::FaultProxy;
use perf::plan::Fault;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use xshell::cmd;

#[derive(clap::Args, Debug)]
pub struct BenchProxyArgs {
    /// Requests per redis-benchmark run (each test).
    #[arg(long, default_value_t = 200_000)]
    pub requests: u32,
    /// Parallel connections of redis-benchmark.
    #[arg(long, default_value_t = 50)]
    pub clients: u32,
    /// Alternate direct and proxied runs this many times.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// The latency each way of the last run (a plan's `link_latency`), e.g. `0.5ms`.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
}

/// One redis-benchmark result line: test, requests per second, p50 and p99 in ms.
#[derive(Debug, Clone)]
struct Row {
    test: String,
    rps: f64,
    p50: f64,
    p99: f64,
}

pub async fn run(args: BenchProxyArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let redis = RedisProcess::start(&RedisOptions { startup_timeout: Duration::from_secs(20) })
        .await
        .context("starting redis-server (apt-get install redis-server)")?;
    let upstream = (std::net::Ipv4Addr::LOCALHOST, redis.port()).into();
    let proxy = FaultProxy::start((std::net::Ipv4Addr::LOCALHOST, 0).into(), upstream).await?;
    println!(
        "redis-benchmark -t get,set -n {} -c {}: redis on port {}, the fault proxy on {}",
        args.requests,
        args.clients,
        redis.port(),
        proxy.addr().port()
    );
    let socat = start_socat(redis.port()).await;
    let socat_port = socat.as_ref().map(|(_, p)| *p);
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    let mut relayed = Vec::new();
    for round in 1..=args.rounds {
        let targets = [
            ("direct", Some(redis.port()), &mut direct),
            ("proxy", Some(proxy.addr().port()), &mut proxied),
            ("socat", socat_port, &mut relayed),
        ];
        for (name, port, out) in targets {
            let Some(port) = port else { continue };
            if cancel.is_cancelled() {
                bail!("interrupted");
            }
            let rows = bench(port, &args).await?;
            for r in &rows {
                println!("round {round} {name:<7} {:<4} {:>10.0} req/s  p50 {:.3} ms  p99 {:.3} ms", r.test, r.rps, r.p50, r.p99);
            }
            out.extend(rows);
        }
    }
    proxy.set(Fault::Latency { delay: args.latency, jitter: Duration::ZERO });
    let delayed = bench(proxy.addr().port(), &args).await?;
    proxy.set(Fault::None);
    let each_way = args.latency.as_secs_f64() * 1000.0;
    for r in &delayed {
        println!("proxy with latency {each_way}ms each way {:<4} {:>10.0} req/s  p50 {:.3} ms  p99 {:.3} ms", r.test, r.rps, r.p50, r.p99);
    }
    println!();
    // A command is one round trip: held once on the way in and once on the way out. What the
    // client saw beyond that and beyond the direct connection is the proxy's own cost.
    for r in &delayed {
        let direct = median(&direct, &r.test, |r| r.p50);
        println!(
            "{}: with {each_way}ms each way, p50 {:.3} ms = direct {direct:.3} + held {:.3} + the proxy's own {:.3} ms",
            r.test,
            r.p50,
            2.0 * each_way,
            r.p50 - direct - 2.0 * each_way
        );
    }
    for test in ["GET", "SET"] {
        let (d, p) = (median(&direct, test, |r| r.rps), median(&proxied, test, |r| r.rps));
        let (dl, pl) = (median(&direct, test, |r| r.p50), median(&proxied, test, |r| r.p50));
        println!(
            "{test}: direct {d:.0} req/s, through the proxy {p:.0} req/s (proxy/direct = {:.2}×); p50 {dl:.3} → {pl:.3} ms (median of {} rounds)",
            p / d,
            args.rounds
        );
        if !relayed.is_empty() {
            let (s, sl) = (median(&relayed, test, |r| r.rps), median(&relayed, test, |r| r.p50));
            println!("{test}: through socat {s:.0} req/s (socat/direct = {:.2}×, proxy/socat = {:.2}×); p50 {sl:.3} ms", s / d, p / s);
        }
    }
    if socat.is_none() {
        println!("(socat is not installed: no peer relay measured; apt-get install socat)");
    }
    let stats = proxy.stats();
    println!("proxy: {} connections, {} reset", stats.accepted, stats.reset);
    drop(proxy);
    redis.shutdown().await?;
    Ok(())
}

/// socat relaying a free loopback port to Redis, once it accepts connections; `None` when
/// socat is not installed or does not come up. (A child that outlives the call: tokio's
/// process, since xshell runs commands to completion.)
async fn start_socat(redis_port: u16) -> Option<(tokio::process::Child, u16)> {
    let port = perf::env::procs::free_port().ok()?;
    let child = Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=1024"))
        .arg(format!("TCP:127.0.0.1:{redis_port}"))
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some((child, port));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn median(rows: &[Row], test: &str, f: impl Fn(&Row) -> f64) -> f64 {
    perf::util::median(rows.iter().filter(|r| r.test == test).map(f)).unwrap_or(f64::NAN)
}

async fn bench(port: u16, args: &BenchProxyArgs) -> anyhow::Result<Vec<Row>> {
    let (port, requests, clients) = (port.to_string(), args.requests.to_string(), args.clients.to_string());
    // A short-lived command whose output we read: xshell, on a blocking thread.
    let out = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let sh = xshell::Shell::new()?;
        cmd!(sh, "redis-benchmark -h 127.0.0.1 -p {port} -t get,set --csv -n {requests} -c {clients}")
            .quiet()
            .read()
            .context("running redis-benchmark (apt-get install redis-tools)")
    })
    .await??;
    parse_csv(&out)
}

/// `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
/// "p99_latency_ms","max_latency_ms"` and one line per test.
fn parse_csv(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> =
        lines.next().context("redis-benchmark printed nothing")?.split(',').map(|h| h.trim_matches('"').to_string()).collect();
    let col = |name: &str| header.iter().position(|h| h == name).with_context(|| format!("no column {name} in {header:?}"));
    let (rps, p50, p99) = (col("rps")?, col("p50_latency_ms")?, col("p99_latency_ms")?);
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').map(|c| c.trim_matches('"')).collect();
            let num = |i: usize| cells.get(i).and_then(|c| c.parse::<f64>().ok()).with_context(|| format!("bad line {l:?}"));
            Ok(Row { test: cells[0].to_string(), rps: num(rps)?, p50: num(p50)?, p99: num(p99)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_redis_benchmarks_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"98039.22\",\"0.300\",\"0.096\",\"0.279\",\"0.447\",\"0.623\",\"1.423\"\n\"GET\",\"101522.84\",\"0.283\",\"0.088\",\"0.271\",\"0.415\",\"0.551\",\"0.887\"\n";
        let rows = super::parse_csv(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].test, "GET");
        assert_eq!((rows[1].rps, rows[1].p50, rows[1].p99), (101522.84, 0.271, 0.551));
        assert!(super::parse_csv("\"test\",\"rps\"\n\"GET\",\"1\"\n").is_err(), "columns are checked");
    }
}
