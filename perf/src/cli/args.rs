//! What every subcommand reads from its arguments the same way: where the plan is, the folder
//! results sit in, which backends it accepts. A leaf: the subcommands import from it, it
//! imports none of them.

use std::path::{Path, PathBuf};

/// The plan file: `given`, else `perf.toml` in the current folder or its nearest parent that
/// has one. The error says where it looked.
pub fn plan_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| anyhow::anyhow!("cannot read the current folder: {e}"))?;
    find_plan(&cwd).ok_or_else(|| {
        anyhow::anyhow!(
            "no perf.toml in {} or any folder above it: run from your repository (where perf.toml is) or pass --plan PATH",
            cwd.display()
        )
    })
}

fn find_plan(from: &Path) -> Option<PathBuf> {
    from.ancestors().map(|d| d.join("perf.toml")).find(|p| p.is_file())
}

/// The folder `results/` (and `results/baseline/`) are relative to: the plan's.
pub fn project_root(plan: &Path) -> PathBuf {
    crate::run::plan_dir(plan).unwrap_or_else(|_| PathBuf::from("."))
}

/// A `--backend` parser that accepts only some of the backends (`up` cannot use `external`:
/// it would start nothing), naming the accepted ones when another is given.
pub fn backend_among(
    allowed: &'static [crate::env::BackendChoice],
) -> impl Fn(&str) -> Result<crate::env::BackendChoice, String> + Clone + Send + Sync + 'static {
    use clap::ValueEnum;
    move |s: &str| {
        let names =
            || allowed.iter().filter_map(|b| b.to_possible_value()).map(|v| v.get_name().to_string()).collect::<Vec<_>>().join(", ");
        match crate::env::BackendChoice::from_str(s, true) {
            Ok(b) if allowed.contains(&b) => Ok(b),
            _ => Err(format!("`{s}` is not a backend this command can use: {}", names())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_found_in_the_nearest_parent() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a").join("b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_plan(&deep), None);
        std::fs::write(dir.path().join("perf.toml"), "version = 1\n").unwrap();
        assert_eq!(find_plan(&deep), Some(dir.path().join("perf.toml")));
        std::fs::write(dir.path().join("a").join("perf.toml"), "version = 1\n").unwrap();
        assert_eq!(find_plan(&deep), Some(dir.path().join("a").join("perf.toml")));
        assert_eq!(plan_path(Some(Path::new("x/p.toml"))).unwrap(), Path::new("x/p.toml"));
    }
}
