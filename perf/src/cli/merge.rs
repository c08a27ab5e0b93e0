//! `cargo perf merge` / `cargo xtask merge`: the summaries of a run's shards (`--shard K/N` on
//! N machines, each writing its own results folder) merged into one summary per suite.
//!
//! ```text
//! cargo perf merge shard-1/ shard-2/ shard-3/ --out merged/
//! ```
//!
//! Each folder is one shard's results (its other files are left alone). Per suite, the shards
//! are checked (same plan, one file per shard, the same shard count) and merged by
//! [`crate::summary::merge`]: counts summed, histograms added, SLOs judged again. Refusals and a
//! missing shard are exit 2 with the files named; a merged suite that is valid is written as
//! `<out>/<suite>.json`, which the gate reads like any other run's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Results folders of the shards, one per shard
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summaries go
    #[arg(long, value_name = "DIR", default_value = "results/merged")]
    pub out: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut by_suite: BTreeMap<String, Vec<(PathBuf, crate::summary::Summary)>> = BTreeMap::new();
    for dir in &args.dirs {
        let found = crate::summary::read_folder(dir)?;
        if found.is_empty() {
            bail!("{}: no summaries (*.json) in this folder", dir.display());
        }
        for (path, summary) in found {
            by_suite.entry(summary.suite.clone()).or_default().push((path, summary));
        }
    }
    let mut code = ExitCode::SUCCESS;
    for (suite, parts) in &by_suite {
        let merged = crate::summary::merge(parts).map_err(|e| anyhow::anyhow!("suite `{suite}`: {e}"))?;
        let file = args.out.join(format!("{suite}.json"));
        crate::summary::write_atomic(&file, &merged).with_context(|| format!("cannot write {}", file.display()))?;
        let requests: u64 = merged.endpoints.values().map(|e| e.requests).sum();
        eprintln!(
            "{suite}: {} of {} shards merged, {requests} requests over {:.1} s → {}",
            merged.run.merged_from.len(),
            parts.first().and_then(|(_, s)| s.run.shard).map_or(0, |s| s.count),
            merged.run.duration_s,
            file.display()
        );
        for reason in &merged.invalid_reasons {
            eprintln!("  invalid: {reason}");
            code = ExitCode::from(2);
        }
    }
    Ok(code)
}
