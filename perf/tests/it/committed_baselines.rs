//! The baselines committed under `results/baseline/` are what the quick start compares with
//! (`cargo xtask perf` on a machine of this project's kind). A change to a suite's definition
//! in `perf.toml` (its scenarios, requests, `[defaults]`, `[compare]`) makes them "not
//! comparable", and the quick start then compares nothing while still passing: this test
//! fails instead, until they are recorded again (`cargo xtask perf --update-baseline
//! --measure-noise`, with and without `--quick`, on each backend).
//!
//! Each baseline carries its testbed's noise (`<suite>.noise.json`, the A/A second run
//! `--measure-noise` makes): without it a comparison has no floor but the run's own intervals,
//! which do not hold what the machine did in the hours between the baseline and the run.

use std::path::Path;

#[test]
fn every_committed_baseline_is_comparable_with_the_bundled_plan_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let plan = perf::plan::load(&root.join("perf.toml")).expect("perf.toml loads");
    let mut checked = 0;
    let mut stale = Vec::new();
    for dir in std::fs::read_dir(root.join("results/baseline")).expect("results/baseline/ is committed") {
        let dir = dir.unwrap().path();
        let testbed = dir.file_name().unwrap().to_string_lossy().into_owned();
        let quick = testbed.ends_with("-quick");
        let compiled = plan
            .compile(&perf::plan::CompileOptions { suites: vec!["all".into()], quick, ..Default::default() })
            .expect("perf.toml compiles");
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.ends_with(".noise.json") {
                continue;
            }
            let summary = perf::summary::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                summary.run.testbed.as_ref().map(|t| t.key.as_str()),
                Some(testbed.as_str()),
                "{}: stored under its testbed",
                path.display()
            );
            assert!(summary.valid, "{}: a baseline is a valid run: {:?}", path.display(), summary.invalid_reasons);
            let suite = compiled
                .suites
                .iter()
                .find(|s| s.name == summary.suite)
                .unwrap_or_else(|| panic!("{}: no suite {} in perf.toml", path.display(), summary.suite));
            if summary.run.suite_hash.as_deref() != Some(suite.definition_hash.as_str()) {
                stale.push(path.strip_prefix(root).unwrap().display().to_string());
            }
            let noise_path = perf::run::baseline::noise_file(&path, &summary.suite);
            let noise = std::fs::read_to_string(&noise_path)
                .unwrap_or_else(|e| panic!("{}: the baseline's noise is recorded beside it ({e})", noise_path.display()));
            let noise: perf::compare::Noise = serde_json::from_str(&noise).unwrap_or_else(|e| panic!("{}: {e}", noise_path.display()));
            assert_eq!(
                (noise.suite.as_str(), noise.testbed.as_str()),
                (summary.suite.as_str(), testbed.as_str()),
                "{}",
                noise_path.display()
            );
            assert!(summary.endpoints.keys().all(|e| noise.endpoints.contains_key(e)), "{}: every endpoint's noise", noise_path.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "the quick start's baselines are there: {checked}");
    assert!(
        stale.is_empty(),
        "recorded for another definition of their suite, so not comparable (record them again with --update-baseline): {stale:?}"
    );
}
