//! Property-based tests over every reader of user input: the plan (parse and compile), the
//! summary and baseline reader, and the artifact unpacker. Inputs are the real files,
//! mutated (bytes deleted, inserted, duplicated; numbers and JSON values replaced), and plain
//! random bytes. Nothing may panic, and every error names its file (and, where the input has
//! one, the line).
//!
//! Case counts: `PERF_FUZZ_CASES` (default 3000 per property). proptest is used without its
//! failure-persistence files; a failure prints the minimal input it shrank to.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::plan::CompileOptions;

const PLAN: &str = include_str!("../../perf.toml");
const ADOPTER_PLAN: &str = include_str!("../../fixtures/adopter/perf.toml");
const SUMMARY: &str = include_str!("../../results/baseline/local-2cpu-epyc-24g-link500us-quick/baseline.json");

fn runner(scale: u32) -> TestRunner {
    let cases = std::env::var("PERF_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000u32);
    TestRunner::new(Config { cases: (cases / scale).max(1), failure_persistence: None, ..Config::default() })
}

/// One edit of a text: delete a range, insert random text, duplicate a line, swap a char.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    Replace { at: usize, with: char },
    Number { nth: usize, value: String },
}

fn edit() -> impl Strategy<Value = Edit> {
    let number = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("4294967296".to_string()),
        Just("99999999999999999999".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), "[\\[\\]{}=\",.\n a-z0-9{}_#'\\\\-]{0,12}").prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<char>()).prop_map(|(at, with)| Edit::Replace { at, with }),
        (any::<usize>(), number).prop_map(|(nth, value)| Edit::Number { nth, value }),
    ]
}

fn floor_char(text: &str, at: usize) -> usize {
    let mut i = if text.is_empty() { 0 } else { at % (text.len() + 1) };
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for e in edits {
        match e {
            Edit::Delete { at, len } => {
                let a = floor_char(&t, *at);
                let b = floor_char(&t, (a + len).min(t.len()));
                t.replace_range(a..b.max(a), "");
            }
            Edit::Insert { at, text } => {
                let a = floor_char(&t, *at);
                t.insert_str(a, text);
            }
            Edit::DuplicateLine { line } => {
                let lines: Vec<&str> = t.lines().collect();
                if !lines.is_empty() {
                    let i = line % lines.len();
                    let mut out: Vec<&str> = lines[..=i].to_vec();
                    out.extend(&lines[i..]);
                    t = out.join("\n");
                }
            }
            Edit::Replace { at, with } => {
                let a = floor_char(&t, *at);
                if let Some(c) = t[a..].chars().next() {
                    t.replace_range(a..a + c.len_utf8(), &with.to_string());
                }
            }
            Edit::Number { nth, value } => {
                let spans: Vec<(usize, usize)> = number_spans(&t);
                if !spans.is_empty() {
                    let (a, b) = spans[nth % spans.len()];
                    t.replace_range(a..b, value);
                }
            }
        }
    }
    t
}

/// Byte ranges of the digit runs of a text (numbers, and digits inside strings and durations).
fn number_spans(t: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in t.char_indices() {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A plan error must name the file, and a line whenever the text has one to point at.
fn check_plan(text: &str) -> Result<(), TestCaseError> {
    let loaded = match crate::plan::parse(Path::new("perf.toml"), text.to_string()) {
        Ok(l) => l,
        Err(e) => {
            prop_assert_eq!(&e.file, "perf.toml");
            prop_assert!(e.line > 0, "no line: {}", e);
            return Ok(());
        }
    };
    for opts in [CompileOptions::default(), CompileOptions { suites: vec!["all".into()], quick: true, ..Default::default() }] {
        if let Err(e) = loaded.compile(&opts) {
            prop_assert_eq!(&e.file, "perf.toml");
            prop_assert!(e.line > 0 || !e.field.is_empty(), "neither line nor field: {}", e);
        }
    }
    Ok(())
}

#[test]
fn mutated_plans_never_panic_and_errors_name_file_and_line() {
    for (plan, scale) in [(PLAN, 1), (ADOPTER_PLAN, 3)] {
        runner(scale).run(&proptest::collection::vec(edit(), 1..6), |edits| check_plan(&apply(plan, &edits))).unwrap();
    }
}

#[test]
fn random_text_as_a_plan_never_panics() {
    runner(3).run(&"(?s).{0,400}", |text| check_plan(&text)).unwrap();
}

fn check_summary(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("results/baseline/x/baseline.json");
    if let Err(e) = crate::summary::io::parse(path, text) {
        let shown = e.to_string();
        prop_assert!(shown.starts_with("results/baseline/x/baseline.json"), "{}", shown);
        if let crate::summary::SummaryError::Syntax { line, .. } | crate::summary::SummaryError::Field { line, .. } = e {
            prop_assert!(line > 0, "{}", shown);
        }
    }
    Ok(())
}

#[test]
fn mutated_summaries_never_panic_and_errors_name_file_and_line() {
    runner(1).run(&proptest::collection::vec(edit(), 1..6), |edits| check_summary(&apply(SUMMARY, &edits))).unwrap();
}

/// A JSON value a field might be replaced with.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(u64::MAX)),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9 ]{0,10}".prop_map(|s| json!(s)),
    ]
}

/// Replaces the `nth` value (in document order) of a JSON tree.
fn replace_nth(v: &mut serde_json::Value, nth: &mut usize, with: &serde_json::Value) -> bool {
    if *nth == 0 {
        *v = with.clone();
        return true;
    }
    *nth -= 1;
    match v {
        serde_json::Value::Object(m) => m.values_mut().any(|c| replace_nth(c, nth, with)),
        serde_json::Value::Array(a) => a.iter_mut().any(|c| replace_nth(c, nth, with)),
        _ => false,
    }
}

#[test]
fn summaries_with_a_field_of_the_wrong_kind_never_panic() {
    let base: serde_json::Value = serde_json::from_str(SUMMARY).unwrap();
    runner(1)
        .run(&proptest::collection::vec((0usize..4000, json_value()), 1..4), |changes| {
            let mut v = base.clone();
            for (nth, with) in &changes {
                let mut n = *nth;
                replace_nth(&mut v, &mut n, with);
            }
            check_summary(&serde_json::to_string_pretty(&v).unwrap())
        })
        .unwrap();
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, bytes) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

#[test]
fn damaged_artifacts_never_panic_and_never_leave_a_half_unpacked_folder() {
    let good = zip_of(&[("baseline.json", SUMMARY.as_bytes()), ("concurrent.json", SUMMARY.as_bytes())]);
    let dir = tempfile::tempdir().unwrap();
    let strategy = prop_oneof![
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8).prop_map(move |flips| {
            let mut b = good.clone();
            for (at, byte) in flips {
                let i = at % b.len();
                b[i] = byte;
            }
            b
        }),
        proptest::collection::vec(any::<u8>(), 0..600),
    ];
    runner(6)
        .run(&strategy, |bytes| {
            let dest = dir.path().join("artifact");
            match crate::github::unpack_zip(&bytes, "perf-baseline", &dest) {
                Ok(_) => {
                    std::fs::remove_dir_all(&dest).unwrap();
                }
                Err(e) => {
                    prop_assert!(e.to_string().contains("perf-baseline"), "names the artifact: {}", e);
                    prop_assert!(!dest.exists(), "nothing half-unpacked at {}", dest.display());
                }
            }
            // No staging folder is left either way.
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            prop_assert!(left.is_empty(), "{:?}", left);
            Ok(())
        })
        .unwrap();
}
