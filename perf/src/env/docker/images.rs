//! Which images a run uses, and building the app's image when it is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use testcontainers::bollard::Docker;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::engine;
use crate::env::error::EnvError;
use crate::plan::{DockerAppSetup, Setup};

/// Environment variables that replace the plan's image names (empty values are ignored).
pub const POSTGRES_IMAGE_VAR: &str = "PERF_POSTGRES_IMAGE";
pub const REDIS_IMAGE_VAR: &str = "PERF_REDIS_IMAGE";
pub const APP_IMAGE_VAR: &str = "PERF_APP_IMAGE";

/// Replaces the plan's image names with `PERF_POSTGRES_IMAGE`, `PERF_REDIS_IMAGE` and
/// `PERF_APP_IMAGE` when `get` returns a non-empty value for them. The CLI calls it with
/// `|k| std::env::var(k).ok()` before starting the environment; tests pass their own lookup.
///
/// The plan keeps the official images as defaults; these overrides are how a machine without
/// registry access points a run at images built locally (fixtures/images/build.sh). When the
/// plan has no `[app.docker]`, `PERF_APP_IMAGE` creates one with the default port. A
/// `dockerfile` in the plan stays: it is used only when the image is missing. The database
/// images apply only to the services the plan starts: an override never starts one.
pub fn apply_image_overrides(setup: &mut Setup, get: impl Fn(&str) -> Option<String>) {
    let get = |key: &str| get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let (Some(image), Some(postgres)) = (get(POSTGRES_IMAGE_VAR), setup.environment.postgres.as_mut()) {
        postgres.image = image;
    }
    if let (Some(image), Some(redis)) = (get(REDIS_IMAGE_VAR), setup.environment.redis.as_mut()) {
        redis.image = image;
    }
    if let Some(image) = get(APP_IMAGE_VAR) {
        match setup.app.docker.as_mut() {
            Some(docker) => docker.image = image,
            None => {
                setup.app.docker = Some(DockerAppSetup { image, dockerfile: None, context: None, port: DockerAppSetup::DEFAULT_PORT });
            }
        }
    }
}

/// Splits `name:tag` for testcontainers' `GenericImage::new(name, tag)`. The split is at the
/// last `:` after the last `/`, so `name:tag` joined again is the reference as written
/// (registry ports and digests included); no tag means `latest`.
pub fn split_image(reference: &str) -> (String, String) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (reference[..slash + i].to_string(), reference[slash + i + 1..].to_string()),
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// Makes sure the app image exists locally: builds it from `spec.dockerfile` (context
/// `spec.context`, both relative to `plan_dir`) when it is missing. Without a dockerfile a
/// missing image is left to testcontainers, which pulls it.
///
/// The build runs the `docker build` command rather than bollard's build API: the command
/// applies `.dockerignore` to the context exactly as a user's own build would (bollard wants
/// a tar of the context made by hand, ignore rules included), picks BuildKit or the classic
/// builder as the user's installation does, and talks to the same engine (`DOCKER_HOST`).
/// Its output goes to `logs_dir/app-build.log`; on failure its tail is in the error.
pub async fn ensure_app_image(
    docker: &Docker,
    spec: &DockerAppSetup,
    plan_dir: &Path,
    logs_dir: &Path,
    cancel: &CancellationToken,
) -> Result<(), EnvError> {
    if engine::image_exists(docker, &spec.image).await? {
        return Ok(());
    }
    let Some(dockerfile) = spec.dockerfile.as_deref() else { return Ok(()) };
    let (dockerfile, context) = build_inputs(spec, dockerfile, plan_dir)?;
    tokio::fs::create_dir_all(logs_dir)
        .await
        .map_err(|e| EnvError::Io { context: format!("creating {}", logs_dir.display()), source: e })?;
    let log_path = logs_dir.join("app-build.log");
    let mut child = spawn_build(spec, &dockerfile, &context)?;
    let output = collect_output(&mut child, &log_path);
    let finished = async {
        let lines = output.await;
        (lines, child.wait().await)
    };
    let (lines, status) = tokio::select! {
        // The child is dropped on return: kill_on_drop stops the build.
        _ = cancel.cancelled() => return Err(EnvError::Interrupted),
        done = finished => done,
    };
    let status = status.map_err(|e| EnvError::Io { context: "waiting for docker build".into(), source: e })?;
    if status.success() {
        return Ok(());
    }
    Err(build_failed(spec, &dockerfile, &log_path, &lines, status))
}

/// The dockerfile and the build context, relative to `plan_dir` (the context defaults to it);
/// refused when either is missing.
fn build_inputs(spec: &DockerAppSetup, dockerfile: &str, plan_dir: &Path) -> Result<(PathBuf, PathBuf), EnvError> {
    let dockerfile = plan_dir.join(dockerfile);
    let context = spec.context.as_deref().map_or_else(|| plan_dir.to_path_buf(), |c| plan_dir.join(c));
    if !dockerfile.is_file() {
        return Err(EnvError::Build(format!(
            "app.docker.dockerfile: {} does not exist (the image {} is missing, so it must be built)",
            dockerfile.display(),
            spec.image
        )));
    }
    if !context.is_dir() {
        return Err(EnvError::Build(format!("app.docker.context: {} is not a directory", context.display())));
    }
    Ok((dockerfile, context))
}

/// Starts `docker build` of the app's image, its output piped; a missing `docker` command is
/// a [`EnvError::MissingProgram`] that says what it was for.
fn spawn_build(spec: &DockerAppSetup, dockerfile: &Path, context: &Path) -> Result<tokio::process::Child, EnvError> {
    tokio::process::Command::new("docker")
        .arg("build")
        .arg("--tag")
        .arg(&spec.image)
        .arg("--file")
        .arg(dockerfile)
        .arg(context)
        .env("DOCKER_HOST", engine::docker_host())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EnvError::MissingProgram {
                program: "docker".into(),
                hint: format!(
                    "the docker command builds the missing app image {}: install the Docker CLI, or build the image beforehand",
                    spec.image
                ),
            },
            _ => EnvError::Io { context: "starting docker build".into(), source: e },
        })
}

/// Why the build failed, with the last lines of its output: when a base image could not be
/// pulled, which one and the ways out.
fn build_failed(spec: &DockerAppSetup, dockerfile: &Path, log_path: &Path, lines: &[String], status: std::process::ExitStatus) -> EnvError {
    let tail: Vec<&str> = lines.iter().rev().take(30).rev().map(String::as_str).collect();
    let dockerfile_text = std::fs::read_to_string(dockerfile).unwrap_or_default();
    if let Some(base) = unpullable_base(&dockerfile_text, lines) {
        return EnvError::Build(format!(
            "the app image {} is missing and building it from {} needs the base image {base}, which could not be pulled \
             (no access to its registry?); full output in {}\n--- last lines of its output ---\n{}\n\
             Ways out: run with --backend local (PostgreSQL, Redis and the app as local processes); or set {APP_IMAGE_VAR} \
             to an app image the engine already has (fixtures/images/build.sh refapp builds perf-local/refapp:dev from \
             Debian packages); or load {base} into the engine yourself (docker load) and run again",
            spec.image,
            dockerfile.display(),
            log_path.display(),
            tail.join("\n")
        ));
    }
    EnvError::Build(format!(
        "docker build of {} from {} ({status}); full output in {}\n--- last lines of its output ---\n{}",
        spec.image,
        dockerfile.display(),
        log_path.display(),
        tail.join("\n")
    ))
}

/// When a failed `docker build` failed because a base image could not be pulled: that image,
/// its `ARG` defaults applied. The classic builder prints the step as written
/// (`Step 3/13 : FROM ${BUILDER_IMAGE} AS builder`) and then the registry's error; BuildKit
/// names the resolved reference (`failed to resolve source metadata for docker.io/library/…`).
pub fn unpullable_base(dockerfile: &str, output: &[String]) -> Option<String> {
    const PULL_FAILED: &[&str] = &[
        "pull access denied",
        "failed to resolve source metadata",
        "manifest unknown",
        "no such host",
        "registry-1.docker.io",
        "TLS handshake timeout",
        "failed to do request",
    ];
    if !output.iter().any(|l| PULL_FAILED.iter().any(|m| l.contains(m))) {
        return None;
    }
    if let Some(reference) = output.iter().rev().find_map(|l| l.split("failed to resolve source metadata for ").nth(1)) {
        // `…for docker.io/library/rust:1.95-bookworm: failed to do request…`
        let reference = reference.split_whitespace().next().unwrap_or(reference);
        return Some(reference.trim_end_matches(':').to_string());
    }
    // Global ARG defaults: the ones a FROM line may use.
    let mut args = std::collections::BTreeMap::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.len() > 4 && line[..4].eq_ignore_ascii_case("FROM") {
            break;
        }
        if let Some((name, default)) = line.strip_prefix("ARG ").and_then(|a| a.trim().split_once('=')) {
            args.insert(name.trim().to_string(), default.trim().trim_matches('"').to_string());
        }
    }
    let step = output.iter().rev().find_map(|l| {
        let (_, rest) = l.split_once(" : ")?;
        let rest = rest.trim();
        (l.starts_with("Step ") && rest.len() > 5 && rest[..5].eq_ignore_ascii_case("FROM ")).then(|| rest[5..].trim().to_string())
    })?;
    let mut image = step.split_whitespace().find(|w| !w.starts_with("--"))?.to_string();
    for (name, default) in &args {
        image = image.replace(&format!("${{{name}}}"), default).replace(&format!("${name}"), default);
    }
    Some(image)
}

/// Copies the build's stdout and stderr, line by line, into the log file and returns the
/// lines (kept whole: a build's output is small).
fn collect_output(child: &mut tokio::process::Child, log_path: &Path) -> impl std::future::Future<Output = Vec<String>> + use<> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let log_path: PathBuf = log_path.to_path_buf();
    async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        if let Some(out) = stdout {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l);
                }
            });
        }
        if let Some(err) = stderr {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l);
                }
            });
        }
        drop(tx);
        let mut file = tokio::fs::File::create(&log_path).await.ok();
        let mut all = Vec::new();
        while let Some(line) = rx.recv().await {
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(format!("{line}\n").as_bytes()).await;
            }
            all.push(line);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_base_image_that_cannot_be_pulled_is_named() {
        let dockerfile = include_str!("../../../../fixtures/app/Dockerfile");
        // Debian's docker.io 20.10 (classic builder) on a machine without registry access.
        let classic = lines(
            "Sending build context to Docker daemon  2.185MB\n\
             Step 1/13 : ARG BUILDER_IMAGE=rust:1.95-bookworm\n\
             Step 2/13 : ARG RUNTIME_IMAGE=debian:bookworm-slim\n\
             Step 3/13 : FROM ${BUILDER_IMAGE} AS builder\n\
             Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host",
        );
        assert_eq!(unpullable_base(dockerfile, &classic).as_deref(), Some("rust:1.95-bookworm"));
        let buildkit = lines(
            "#3 [internal] load metadata for docker.io/library/rust:1.95-bookworm\n\
             ERROR: failed to solve: rust:1.95-bookworm: failed to resolve source metadata for docker.io/library/rust:1.95-bookworm: \
             failed to do request: Head \"https://registry-1.docker.io/v2/library/rust/manifests/1.95-bookworm\": dial tcp: no such host",
        );
        assert_eq!(unpullable_base(dockerfile, &buildkit).as_deref(), Some("docker.io/library/rust:1.95-bookworm"));
        // A build that failed for another reason is not called a pull failure.
        let compile = lines("Step 5/13 : RUN cargo build --release --locked -p refapp\nerror[E0308]: mismatched types");
        assert_eq!(unpullable_base(dockerfile, &compile), None);
    }

    #[test]
    fn split_image_keeps_the_reference_whole() {
        for (reference, name, tag) in [
            ("postgres:15.8-bookworm", "postgres", "15.8-bookworm"),
            ("perf-local/redis:7", "perf-local/redis", "7"),
            ("localhost:5000/app", "localhost:5000/app", "latest"),
            ("localhost:5000/app:dev", "localhost:5000/app", "dev"),
            ("redis", "redis", "latest"),
            ("postgres@sha256:abc", "postgres@sha256", "abc"),
        ] {
            let (n, t) = split_image(reference);
            assert_eq!((n.as_str(), t.as_str()), (name, tag), "{reference}");
        }
    }

    /// A plan that starts both databases, with `app_docker` in its `[app]`.
    fn plan(app_docker: &str) -> Setup {
        let text = format!(
            r#"
version = 1
[environment.postgres]
[environment.redis]
[app]
local = {{ command = ["app"] }}
{app_docker}
[requests.health]
path = "/health"
[suites.baseline.scenarios.one]
executor = "constant-vus"
vus = 1
duration = "1s"
request = "health"
"#
        );
        crate::plan::parse(std::path::Path::new("perf.toml"), text).unwrap().setup().unwrap()
    }

    #[test]
    fn overrides_replace_images_and_ignore_empty_values() {
        let mut p = plan("docker = { image = \"app:1\", dockerfile = \"Dockerfile\" }");
        apply_image_overrides(&mut p, |k| match k {
            POSTGRES_IMAGE_VAR => Some("perf-local/postgres:15".into()),
            REDIS_IMAGE_VAR => Some("  ".into()),
            APP_IMAGE_VAR => Some("perf-local/refapp:dev".into()),
            _ => None,
        });
        assert_eq!(p.environment.postgres.unwrap().image, "perf-local/postgres:15");
        assert_eq!(p.environment.redis.unwrap().image, "redis:7.2.5-bookworm", "empty override ignored");
        let docker = p.app.docker.unwrap();
        assert_eq!(docker.image, "perf-local/refapp:dev");
        assert_eq!(docker.dockerfile.as_deref(), Some("Dockerfile"));
    }

    #[test]
    fn no_overrides_keep_the_official_defaults() {
        let mut p = plan("");
        apply_image_overrides(&mut p, |_| None);
        assert_eq!(p.environment.postgres.unwrap().image, "postgres:15.8-bookworm");
        assert_eq!(p.environment.redis.unwrap().image, "redis:7.2.5-bookworm");
        assert!(p.app.docker.is_none());
    }

    #[test]
    fn an_override_never_starts_a_service_the_plan_does_not() {
        let mut p = plan("");
        p.environment.postgres = None;
        p.environment.redis = None;
        apply_image_overrides(&mut p, |k| (k != APP_IMAGE_VAR).then(|| "perf-local/some:1".to_string()));
        assert_eq!((p.environment.postgres, p.environment.redis), (None, None));
    }

    #[test]
    fn app_override_creates_the_docker_table_with_the_default_port() {
        let mut p = plan("");
        apply_image_overrides(&mut p, |k| (k == APP_IMAGE_VAR).then(|| "perf-local/refapp:dev".to_string()));
        let docker = p.app.docker.unwrap();
        assert_eq!(docker.image, "perf-local/refapp:dev");
        assert_eq!(docker.port, 8080);
        assert!(docker.dockerfile.is_none());
    }
}
