//! Which images a run uses, and building the app's image when it is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use testcontainers::bollard::Docker;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::super::EnvError;
use super::engine;
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
/// `dockerfile` in the plan stays: it is used only when the image is missing.
pub fn apply_image_overrides(setup: &mut Setup, get: impl Fn(&str) -> Option<String>) {
    let get = |key: &str| get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(image) = get(POSTGRES_IMAGE_VAR) {
        setup.environment.postgres.image = image;
    }
    if let Some(image) = get(REDIS_IMAGE_VAR) {
        setup.environment.redis.image = image;
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
    tokio::fs::create_dir_all(logs_dir)
        .await
        .map_err(|e| EnvError::Io { context: format!("creating {}", logs_dir.display()), source: e })?;
    let log_path = logs_dir.join("app-build.log");
    let mut child = tokio::process::Command::new("docker")
        .arg("build")
        .arg("--tag")
        .arg(&spec.image)
        .arg("--file")
        .arg(&dockerfile)
        .arg(&context)
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
        })?;
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
    let tail: Vec<&str> = lines.iter().rev().take(30).rev().map(String::as_str).collect();
    Err(EnvError::Build(format!(
        "docker build of {} from {} ({status}); full output in {}\n--- last lines of its output ---\n{}",
        spec.image,
        dockerfile.display(),
        log_path.display(),
        tail.join("\n")
    )))
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

    fn plan(app_docker: &str) -> Setup {
        let text = format!(
            r#"
version = 1
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
        crate::plan::parse(std::path::Path::new("perf.toml"), text).unwrap().setup()
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
        assert_eq!(p.environment.postgres.image, "perf-local/postgres:15");
        assert_eq!(p.environment.redis.image, "redis:7.2.5-bookworm", "empty override ignored");
        let docker = p.app.docker.unwrap();
        assert_eq!(docker.image, "perf-local/refapp:dev");
        assert_eq!(docker.dockerfile.as_deref(), Some("Dockerfile"));
    }

    #[test]
    fn no_overrides_keep_the_official_defaults() {
        let mut p = plan("");
        apply_image_overrides(&mut p, |_| None);
        assert_eq!(p.environment.postgres.image, "postgres:15.8-bookworm");
        assert_eq!(p.environment.redis.image, "redis:7.2.5-bookworm");
        assert!(p.app.docker.is_none());
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
