//! The nightly baseline through the Actions API: repository → runs → artifacts → zip.

use std::io::Write;
use std::path::Path;

use crate::github_support::*;
use perf::github::{GithubError, download_baseline_artifact, unpack_zip};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BASELINE_JSON: &str = "{\"schema_version\": 1, \"suite\": \"baseline\"}\n";
const CONCURRENT_JSON: &str = "{\"schema_version\": 1, \"suite\": \"concurrent\"}\n";

/// A deflated zip holding `entries`, as GitHub serves artifacts.
fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Mounts the API for acme/shop: default branch `main`, two successful nightly runs, the newest
/// one's artifact expired, the one before it holding `zip` behind GitHub's redirect.
async fn mount_nightly(server: &MockServer, zip: Vec<u8>) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop"))
        .and(header("authorization", bearer().as_str()))
        .respond_with(json_response(200, "repository.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/workflows/perf-nightly.yml/runs"))
        .and(query_param("branch", "main"))
        .and(query_param("status", "success"))
        .respond_with(json_response(200, "workflow_runs.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/runs/30433642/artifacts"))
        .respond_with(json_response(200, "run_artifacts_expired.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/runs/30398811/artifacts"))
        .respond_with(json_response(200, "run_artifacts.json"))
        .mount(server)
        .await;
    let blob = format!("{}/blob-store/artifacts/4470000002.zip?sig=abc", server.uri());
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/artifacts/4470000002/zip"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", blob.as_str()))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/blob-store/artifacts/4470000002.zip"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(zip, "application/zip"))
        .expect(1)
        .mount(server)
        .await;
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".perf-artifact"))
        .collect()
}

#[tokio::test]
async fn downloads_the_newest_unexpired_nightly_artifact_and_replaces_the_old_one() {
    let server = MockServer::start().await;
    let zip = zip_of(&[("baseline.json", BASELINE_JSON), ("concurrent.json", CONCURRENT_JSON), ("report.md", "# r\n")]);
    mount_nightly(&server, zip).await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("baseline-artifact");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("stale.json"), "{}").unwrap();

    let dir = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &dest).await.expect("artifact downloaded");

    assert_eq!(dir, dest);
    assert_eq!(std::fs::read_to_string(dir.join("baseline.json")).unwrap(), BASELINE_JSON);
    assert_eq!(std::fs::read_to_string(dir.join("concurrent.json")).unwrap(), CONCURRENT_JSON);
    assert!(!dir.join("stale.json").exists(), "old baseline left behind");
    assert!(leftovers(work.path()).is_empty(), "{:?}", leftovers(work.path()));
}

#[tokio::test]
async fn summaries_in_a_subfolder_are_found() {
    let server = MockServer::start().await;
    mount_nightly(&server, zip_of(&[("results/baseline.json", BASELINE_JSON), ("README.txt", "x")])).await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("nested").join("artifact");

    let dir = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &dest).await.unwrap();
    assert_eq!(dir, dest.join("results"));
    assert_eq!(std::fs::read_to_string(dir.join("baseline.json")).unwrap(), BASELINE_JSON);
}

#[tokio::test]
async fn an_entry_escaping_the_folder_is_refused_and_nothing_changes() {
    let server = MockServer::start().await;
    mount_nightly(&server, zip_of(&[("baseline.json", BASELINE_JSON), ("../escaped.json", "{}")])).await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("artifact");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("baseline.json"), "old").unwrap();

    let err = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &dest).await.unwrap_err();
    assert!(matches!(err, GithubError::UnsafeArchive { ref entry, .. } if entry == "../escaped.json"), "{err:?}");
    assert_eq!(std::fs::read_to_string(dest.join("baseline.json")).unwrap(), "old");
    assert!(!work.path().join("escaped.json").exists());
    assert!(leftovers(work.path()).is_empty(), "{:?}", leftovers(work.path()));
}

#[test]
fn absolute_entries_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let zip = zip_of(&[("/tmp/perf-gate-absolute.json", "{}")]);
    let err = unpack_zip(&zip, "perf-baseline", &work.path().join("a")).unwrap_err();
    assert!(err.to_string().contains("absolute paths are not unpacked"), "{err}");
    assert!(!work.path().join("a").exists());
}

#[test]
fn a_zip_without_summaries_is_unusable() {
    let work = tempfile::tempdir().unwrap();
    let err = unpack_zip(&zip_of(&[("report.md", "# r")]), "perf-baseline", &work.path().join("a")).unwrap_err();
    assert!(err.to_string().contains("holds no .json summaries"), "{err}");
    let err = unpack_zip(b"not a zip at all", "perf-baseline", &work.path().join("a")).unwrap_err();
    assert!(err.to_string().contains("not a zip"), "{err}");
}

#[tokio::test]
async fn no_run_with_the_artifact_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/repos/acme/shop")).respond_with(json_response(200, "repository.json")).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/workflows/perf-nightly.yml/runs"))
        .respond_with(json_response(200, "workflow_runs.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/runs/30433642/artifacts"))
        .respond_with(json_response(200, "run_artifacts_expired.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/runs/30398811/artifacts"))
        .respond_with(json_response(200, "run_artifacts_expired.json"))
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();

    let err = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &work.path().join("a")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no successful scheduled run of perf-nightly.yml on branch main has an unexpired artifact named perf-baseline (looked at 2 runs)"
    );
}

#[tokio::test]
async fn a_missing_download_is_an_api_error_not_a_zip() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/repos/acme/shop")).respond_with(json_response(200, "repository.json")).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/workflows/perf-nightly.yml/runs"))
        .respond_with(json_response(200, "workflow_runs.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/runs/30433642/artifacts"))
        .respond_with(json_response(200, "run_artifacts.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/artifacts/4470000002/zip"))
        .respond_with(json_response(404, "error_404.json"))
        .expect(1)
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();

    let err = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &work.path().join("a")).await.unwrap_err();
    assert!(matches!(err, GithubError::Api { status: 404, .. }), "{err:?}");
}

/// A run started by hand (workflow_dispatch) is never the baseline, even when it is the newest
/// and carries the artifact: it may have run a shorter or partial plan.
#[tokio::test]
async fn a_manual_run_is_never_the_baseline() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/repos/acme/shop")).respond_with(json_response(200, "repository.json")).mount(&server).await;
    // The same two runs, both started by hand this time.
    let runs = fixture("workflow_runs.json").replace("\"event\": \"schedule\"", "\"event\": \"workflow_dispatch\"");
    assert!(runs.contains("workflow_dispatch"));
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/actions/workflows/perf-nightly.yml/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(runs, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/shop/actions/runs/\d+/artifacts$"))
        .respond_with(json_response(200, "run_artifacts.json"))
        .expect(0)
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let err = download_baseline_artifact(&pr_ctx(&server), "perf-baseline", "perf-nightly.yml", &work.path().join("a")).await.unwrap_err();
    assert!(err.to_string().contains("(looked at 0 runs)"), "{err}");
    // The lookup asked GitHub for scheduled runs only.
    let asked = server.received_requests().await.unwrap();
    let runs_query = asked.iter().find(|r| r.url.path().ends_with("/runs")).and_then(|r| r.url.query().map(str::to_string));
    assert!(runs_query.is_some_and(|q| q.contains("event=schedule")), "the runs were not filtered by event");
}
