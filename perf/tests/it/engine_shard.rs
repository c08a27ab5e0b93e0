//! `--shard K/N` in the engine: three shards of one plan, started together through
//! `start_at` against the test server, send exactly the plan's iterations between them, their
//! starts interleave into the plan's evenly spaced arrivals, and their summaries merge into
//! one valid summary of all the load. Judges its own schedule and timing to the millisecond, so
//! it runs in nextest's `measured-load` group (alone on the machine).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use perf::plan::{CompileOptions, Shard, parse};
use perf::summary::{self, RunContext};

use crate::engine_support::{HEADER, endpoint, run_with, start};

const PLAN: &str = r#"
[requests.ok]
path = "/ok"
[suites.s]
[suites.s.scenarios.a]
executor = "constant-arrival-rate"
rate = 300
duration = "2s"
request = "ok"
"#;

fn compile(shard: Option<Shard>) -> perf::plan::Compiled {
    let lp = parse(Path::new("test.toml"), format!("{HEADER}\n{PLAN}")).unwrap();
    lp.compile(&CompileOptions { shard, ..Default::default() }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_send_the_plans_arrivals_interleaved_and_merge_into_one_run() {
    let server = start().await;
    let at = SystemTime::now() + Duration::from_millis(300);
    let runs = (1..=3).map(|index| {
        let compiled = compile(Some(Shard { index, count: 3 }));
        let mut opts = perf::engine::RunOptions::new(server.url.clone());
        opts.progress = perf::engine::ProgressMode::Off;
        opts.start_at = Some(at);
        async move { run_with(&compiled, opts, Duration::from_secs(20)).await }
    });
    let results = futures::future::join_all(runs).await;

    // Between them, exactly the plan's 600 scheduled starts, 200 each.
    let starts: Vec<u64> = results.iter().map(|r| r.scenarios[0].scheduled_starts).collect();
    assert_eq!(starts, [200, 200, 200]);
    let sent: u64 = results.iter().map(|r| endpoint(r, "ok").requests).sum();
    assert_eq!(sent, 600);
    assert!(results.iter().all(|r| r.invalid_reasons.is_empty()), "{:?}", results.iter().map(|r| &r.invalid_reasons).collect::<Vec<_>>());

    // Interleaved: one arrival every 1/300 s, not three at once every 1/100 s. Three shards at
    // once put two gaps of every three under half the expected 3.33 ms (the three requests go
    // out a few tenths of a millisecond apart); interleaved, whatever phase each shard's own
    // clock lands on (each turns `start_at` into its own instant, a millisecond or so apart on a
    // busy machine), at most one gap of three can.
    let mut arrivals = server.seen.arrivals.lock().clone();
    arrivals.sort();
    let gaps: Vec<f64> = arrivals.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0).collect();
    let close = gaps.iter().filter(|g| **g < 1.7).count() as f64 / gaps.len() as f64;
    assert!(close < 0.5, "{:.0}% of arrivals came within 1.7 ms of the one before: the shards sent together", close * 100.0);

    // The merge is one valid run of all the load.
    let parts: Vec<(PathBuf, summary::Summary)> = results
        .iter()
        .enumerate()
        .map(|(i, r)| (PathBuf::from(format!("shard-{}/s.json", i + 1)), summary::build(r, &RunContext::default())))
        .collect();
    assert_eq!(parts[1].1.run.shard, Some(Shard { index: 2, count: 3 }));
    let merged = summary::merge(&parts).unwrap();
    assert!(merged.valid, "{:?}", merged.invalid_reasons);
    assert_eq!(merged.endpoints["ok"].requests, 600);
    assert!((merged.endpoints["ok"].rps - 300.0).abs() < 300.0 * 0.05, "{}", merged.endpoints["ok"].rps);
    // The shards started together: the merged run is as long as one of them.
    assert!(merged.run.duration_s < parts[0].1.run.duration_s + 0.2, "{} vs {}", merged.run.duration_s, parts[0].1.run.duration_s);
}

#[test]
fn shards_split_closed_model_users_and_refuse_special_suites() {
    let lp = parse(
        Path::new("test.toml"),
        format!(
            "{HEADER}\n[requests.ok]\npath = \"/ok\"\n[suites.s]\n[suites.s.scenarios.a]\nexecutor = \"constant-vus\"\nvus = 10\nduration = \"1s\"\nrequest = \"ok\"\n[suites.x]\nkind = \"chaos\"\nchaos = {{ expect = [\"no_errors\"] }}\n[suites.x.scenarios.a]\nexecutor = \"constant-vus\"\nvus = 1\nduration = \"1s\"\nrequest = \"ok\"\n"
        ),
    )
    .unwrap();
    let vus: Vec<u32> = (1..=3)
        .map(|index| {
            let c = lp
                .compile(&CompileOptions { suites: vec!["s".into()], shard: Some(Shard { index, count: 3 }), ..Default::default() })
                .unwrap();
            match c.suites[0].scenarios[0].shape {
                perf::plan::compiled::Shape::ConstantVus { vus, .. } => vus,
                ref other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(vus, [4, 3, 3], "remainders to the lowest shards, adding up to the plan's 10");
    let e = lp
        .compile(&CompileOptions { suites: vec!["x".into()], shard: Some(Shard { index: 1, count: 2 }), ..Default::default() })
        .unwrap_err();
    assert!(e.field == "--shard" && e.message.contains("chaos suite"), "{e}");
    assert!("0/3".parse::<Shard>().is_err() && "4/3".parse::<Shard>().is_err() && "a/b".parse::<Shard>().is_err());
    assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
}
