//! `cargo perf history` / `cargo xtask history`: performance over time, from a folder of nightly records.
//!
//! ```text
//! cargo perf history [--from DIR] [--add SUMMARIES_DIR] [--last N] [--site DIR] [--repo OWNER/NAME]
//! ```
//!
//! Reads every record in `--from` (default `results/history`), optionally adds first the night
//! recorded by a folder of summaries (a nightly run's `results/`), prints per endpoint its p95
//! over the last N nights with the change points (each regression with its commit), and writes
//! the static site (default `results/site/`). Works offline: files in, files out. Default
//! folders sit next to the plan (`perf.toml` here or above), like the gate's `results/`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::history::{self, SiteOptions};
use crate::plan::CompareRules;
use crate::render::TerminalOptions;
use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Folder of nightly records, one JSON file per night [default: results/history]
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// First add the night recorded by this folder of summaries (one run's results/)
    #[arg(long, value_name = "SUMMARIES_DIR")]
    add: Option<PathBuf>,
    /// Nights shown per endpoint (change points are found over the whole history)
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// Where to write the static site [default: results/site]
    #[arg(long, value_name = "DIR")]
    site: Option<PathBuf>,
    /// GitHub repository whose commits the site and the terminal link to
    #[arg(long, value_name = "OWNER/NAME", env = "GITHUB_REPOSITORY")]
    repo: Option<String>,
    /// The plan whose [compare] table is the rule [default: perf.toml here or above; the
    /// gate's defaults without one]
    #[arg(long, value_name = "PATH")]
    plan: Option<PathBuf>,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<()> {
    let (root, rules) = plan_and_rules(args.plan.as_deref())?;
    let from = args.from.unwrap_or_else(|| root.join("results").join("history"));
    let site_dir = args.site.unwrap_or_else(|| root.join("results").join("site"));
    let commit_url = args.repo.as_deref().filter(|r| !r.is_empty()).map(SiteOptions::github).transpose().map_err(anyhow::Error::msg)?;

    if let Some(summaries) = &args.add {
        let added = history::append(&from, summaries)?;
        let suites: Vec<&str> = added.record.suites.keys().map(String::as_str).collect();
        eprintln!(
            "{} night {} (commit {}, testbed {}, suites {}): {}",
            if added.replaced { "replaced" } else { "added" },
            added.record.date,
            added.record.sha,
            added.record.testbed,
            suites.join(", "),
            added.path.display()
        );
    }
    let records = history::load(&from)?;
    eprintln!("history: {} night{} in {}", records.len(), if records.len() == 1 { "" } else { "s" }, from.display());
    let last = args.last as usize;
    let trends = history::trends(&records, &rules, last);

    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", history::terminal(&trends, commit_url.as_deref(), TerminalOptions { color, width: None }));

    let pages = history::site(&trends, &SiteOptions { commit_url, last });
    history::write_site(&site_dir, &pages).with_context(|| format!("writing the site in {}", site_dir.display()))?;
    eprintln!("wrote {} ({} page{})", site_dir.join("index.html").display(), pages.len(), if pages.len() == 1 { "" } else { "s" });
    Ok(())
}

/// The folder default paths are relative to, and the regression rule: the plan's when there
/// is one (given, or found here or above), checked as the gate checks it, else the current
/// folder and the gate's defaults.
fn plan_and_rules(given: Option<&Path>) -> anyhow::Result<(PathBuf, CompareRules)> {
    let plan = match given {
        Some(p) => Some(p.to_path_buf()),
        None => super::args::plan_path(None).ok(),
    };
    match plan {
        Some(p) => {
            let loaded = crate::plan::load(&p).map_err(|e| anyhow::anyhow!("{e}"))?;
            let rules = loaded.compare_rules().map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((super::args::project_root(&p), rules))
        }
        None => Ok((PathBuf::from("."), CompareRules::default())),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: HistoryArgs,
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let a = Cli::try_parse_from(["history", "--from", "h", "--add", "results", "--last", "7", "--repo", "o/r"]).unwrap().args;
        assert_eq!(a.from.as_deref(), Some(Path::new("h")));
        assert_eq!(a.add.as_deref(), Some(Path::new("results")));
        assert_eq!((a.last, a.repo.as_deref()), (7, Some("o/r")));
        assert!(Cli::try_parse_from(["history", "--last", "0"]).is_err());
        let a = Cli::try_parse_from(["history"]).unwrap().args;
        assert_eq!((a.last, a.site), (30, None));
    }

    #[test]
    fn the_plans_compare_rule_is_refused_when_the_gate_would_refuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("perf.toml");
        let write = |compare: &str| {
            let text = format!("version = 1\n[requests.list]\npath = \"/items\"\n[suites]\n[compare]\n{compare}\n");
            std::fs::write(&plan, text).unwrap();
        };
        for threshold in ["0", "-0.2"] {
            write(&format!("threshold = {threshold}"));
            let e = plan_and_rules(Some(&plan)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("{}: compare.threshold: {threshold} is not a relative change: expected a number > 0 (0.2 is 20%)", plan.display())
            );
        }
        write("threshold = 0.3");
        let (root, rules) = plan_and_rules(Some(&plan)).unwrap();
        assert_eq!((root, rules.threshold), (dir.path().canonicalize().unwrap(), 0.3));
    }
}
