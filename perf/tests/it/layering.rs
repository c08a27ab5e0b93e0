//! The library's layers look only down. This test reads `perf/src` and fails on a `use` (or any
//! `crate::…` path) that climbs: ARCHITECTURE.md's invariants, kept true.
//!
//! - Each top-level module may name only the modules listed for it in [`ALLOWED`].
//! - Only `plan/` sees the plan file's TOML (`toml::`, `Spanned`, the raw `plan::model`).
//! - Inside a module, files do not import each other in a cycle.
//! - Below the command line nothing prints: progress goes through `run::Notes`.
//!
//! Comments and `#[cfg(test)]` modules are skipped: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module of `perf/src` may use, besides itself. Read it bottom-up: `util`
/// at the bottom, the plan, then the engine and the environments beside it, the summary,
/// verdicts, reports, GitHub, the run, and the command line on top.
const ALLOWED: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("plan", &["util"]),
    ("faults", &["plan", "util"]),
    ("env", &["faults", "plan", "util"]),
    ("engine", &["plan", "util"]),
    ("summary", &["engine", "plan", "util"]),
    ("compare", &["summary", "plan", "util"]),
    ("special", &["summary", "plan", "util"]),
    ("verdict", &["compare", "special", "summary", "plan", "util"]),
    ("render", &["verdict", "compare", "special", "summary", "plan", "util"]),
    ("export", &["verdict", "compare", "special", "summary", "plan", "util"]),
    ("history", &["render", "compare", "summary", "plan", "util"]),
    ("github", &["util"]),
    ("run", &["github", "export", "render", "verdict", "compare", "special", "summary", "engine", "env", "faults", "plan", "util"]),
    (
        "cli",
        &[
            "run", "history", "github", "export", "render", "verdict", "compare", "special", "summary", "engine", "env", "faults", "plan",
            "util",
        ],
    ),
];

struct Source {
    /// Path below `perf/src`, e.g. `engine/run.rs`.
    rel: String,
    /// The code lines (comments and test modules removed), with their line numbers.
    lines: Vec<(usize, String)>,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            Source { rel, lines: code_lines(&text) }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
            out.push(path);
        }
    }
}

/// `tests.rs`, `tests_*.rs`: test modules kept in their own files.
fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem == "tests" || stem.starts_with("tests_")
}

/// Lines that are code: no comment lines, nothing from a `#[cfg(test)]` item on.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            Some(k) if !line[..k].contains('"') => &line[..k],
            _ => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Identifiers that follow `prefix` in `line` (`crate::` → `engine`, `plan`…).
fn names_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(k) = rest.find(prefix) {
        let before = rest[..k].chars().last();
        let after = &rest[k + prefix.len()..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') && end > 0 {
            out.push(&after[..end]);
        }
        rest = &after[end..];
    }
    out
}

fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

#[test]
fn layers_only_look_down() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED.iter().map(|(m, a)| (*m, a.iter().copied().collect())).collect();
    let mut violations = Vec::new();
    for src in sources() {
        let module = top_module(&src.rel);
        let Some(may_use) = allowed.get(module) else {
            if !matches!(module, "lib" | "bin") {
                violations.push(format!("perf/src/{}: module `{module}` is not in the layering table", src.rel));
            }
            continue;
        };
        for (n, line) in &src.lines {
            for used in names_after(line, "crate::") {
                if used != module && !may_use.contains(used) && allowed.contains_key(used) {
                    violations.push(format!("perf/src/{}:{n}: `{module}` uses `crate::{used}`, which is not below it", src.rel));
                }
            }
        }
    }
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
}

#[test]
fn only_the_plan_sees_toml() {
    let mut violations = Vec::new();
    for src in sources() {
        if top_module(&src.rel) == "plan" {
            continue;
        }
        for (n, line) in &src.lines {
            for needle in ["toml::", "Spanned", "plan::model"] {
                if line.contains(needle) {
                    violations.push(format!("perf/src/{}:{n}: `{needle}` outside plan/", src.rel));
                }
            }
        }
    }
    assert!(violations.is_empty(), "only plan/ reads TOML:\n{}", violations.join("\n"));
}

/// Where printing is allowed: the command line, the binary, the engine's progress display,
/// and the default progress sink (`run::Notes::stderr`).
const MAY_PRINT: &[&str] = &["cli/", "bin/", "engine/progress.rs", "util/mod.rs"];

#[test]
fn below_the_command_line_nothing_prints() {
    let mut violations = Vec::new();
    for src in sources() {
        if MAY_PRINT.iter().any(|p| src.rel.starts_with(p)) {
            continue;
        }
        for (n, line) in &src.lines {
            for needle in ["println!", "eprintln!", "print!(", "eprint!("] {
                if line.contains(needle) {
                    violations.push(format!("perf/src/{}:{n}: `{needle}`: say it through run::Notes or return it", src.rel));
                }
            }
        }
    }
    assert!(violations.is_empty(), "printing below cli/:\n{}", violations.join("\n"));
}

#[test]
fn one_owner_starts_environments() {
    // The gate, A/B and the experiment start what they measure through run::lifetime, which
    // stops every environment it started on every path; `cargo perf up` (cli/up.rs) keeps its
    // environment until Ctrl-C and is the one other caller.
    let mut violations = Vec::new();
    for src in sources() {
        if ["run/lifetime.rs", "cli/up.rs", "env/"].iter().any(|p| src.rel.starts_with(p)) {
            continue;
        }
        for (n, line) in &src.lines {
            if line.contains("Environment::start(") {
                violations.push(format!("perf/src/{}:{n}: start it through run::lifetime::with_environments", src.rel));
            }
        }
    }
    assert!(violations.is_empty(), "environments started outside run::lifetime:\n{}", violations.join("\n"));
}

#[test]
fn files_of_a_module_import_each_other_without_cycles() {
    // Edges between sibling files: `super::x` from a file (not mod.rs) names its sibling x;
    // `crate::m::x` names m's file x.
    let srcs = sources();
    let files: BTreeSet<String> = srcs.iter().map(|s| s.rel.trim_end_matches(".rs").trim_end_matches("/mod").to_string()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in &srcs {
        let me = src.rel.trim_end_matches(".rs").trim_end_matches("/mod").to_string();
        if src.rel.ends_with("mod.rs") || !me.contains('/') {
            continue;
        }
        let dir = me.rsplit_once('/').unwrap().0.to_string();
        for (_, line) in &src.lines {
            let mut targets: Vec<String> = names_after(line, "super::").into_iter().map(|x| format!("{dir}/{x}")).collect();
            targets.extend(names_after(line, &format!("crate::{dir}::")).into_iter().map(|x| format!("{dir}/{x}")));
            for t in targets {
                if t != me && files.contains(&t) {
                    edges.entry(me.clone()).or_default().insert(t);
                }
            }
        }
    }
    let mut cycles = Vec::new();
    for (a, outs) in &edges {
        for b in outs {
            if let Some(path) = path_between(&edges, b, a) {
                cycles.push(format!("{a} -> {}", path.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles inside a module:\n{}", cycles.join("\n"));
}

/// A path of edges from `from` to `to`, if any (depth-first).
fn path_between(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        if last == to {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in edges.get(&last).into_iter().flatten() {
            let mut p = path.clone();
            p.push(next.clone());
            stack.push(p);
        }
    }
    None
}

#[test]
fn the_checker_sees_what_it_must() {
    // The scanner itself: a climbing use is found, comments and tests are not.
    let text = "use crate::summary::Summary;\n// crate::render in a comment\nlet x = 1; // crate::cli\n#[cfg(test)]\nmod tests { use crate::cli; }\n";
    let lines = code_lines(text);
    let found: Vec<&str> = lines.iter().flat_map(|(_, l)| names_after(l, "crate::")).collect();
    assert_eq!(found, vec!["summary"]);
    assert_eq!(names_after("a::crate::x + crate::y", "crate::"), vec!["y"]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(path_between(&edges, "b", "a"), Some(vec!["b".to_string(), "a".to_string()]));
    assert_eq!(path_between(&edges, "b", "c"), None);
}
