//! Talking to the Docker engine directly (bollard, re-exported by testcontainers): finding
//! it, labelling and sweeping what a run created, logs and stats.
//!
//! testcontainers creates and starts the containers; everything it has no API for (labelled
//! networks and volumes, one-shot stats, sweeping by label) goes through this module.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StatsOptionsBuilder,
};

use crate::env::error::EnvError;
use crate::env::types::ResourceSample;

/// Label on everything the perf gate creates in the engine (value `1`): `docker ps -a
/// --filter label=perf-gate` lists it all.
pub const LABEL_OWNER: &str = "perf-gate";
/// Label holding the run id: everything one run created, and nothing else.
pub const LABEL_RUN: &str = "perf-gate.run";
/// Label naming the gate process that created the object (`resources::owner_token`), so
/// that a later run can remove what a killed one left.
pub const LABEL_PROCESS: &str = "perf-gate.process";

/// How long [`engine_answers`] waits for the engine's ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of every other API call (image builds do not go through this client).
const API_TIMEOUT_SECS: u64 = 120;

/// Where the engine is: `DOCKER_HOST` when set, else the default Unix socket, as
/// testcontainers looks for it.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// A client for the engine at [`docker_host`]. Connecting does not talk to the engine yet.
pub fn connect() -> Result<Docker, EnvError> {
    let host = docker_host();
    let docker = Docker::connect_with_host(&host).map_err(|e| EnvError::Docker(format!("cannot use the engine at {host}: {e}")))?;
    Ok(docker.with_timeout(Duration::from_secs(API_TIMEOUT_SECS)))
}

/// True when a Docker engine answers a ping within two seconds.
pub async fn engine_answers() -> bool {
    let Ok(docker) = connect() else { return false };
    matches!(tokio::time::timeout(PING_TIMEOUT, docker.ping()).await, Ok(Ok(_)))
}

/// The engine's name and version (`docker 28.2.2`) for the testbed, or `None` when it does
/// not answer within two seconds.
pub async fn engine_version() -> Option<String> {
    let docker = connect().ok()?;
    let v = tokio::time::timeout(PING_TIMEOUT, docker.version()).await.ok()?.ok()?;
    Some(format!("docker {}", v.version.unwrap_or_else(|| "unknown".into())))
}

/// Pings the engine; the error says where it looked and how to start one.
pub async fn ping(docker: &Docker) -> Result<(), EnvError> {
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(EnvError::Docker(format!(
            "no Docker engine answers at {}: {e} (start one, e.g. .ci/docker-engine.sh start, or use --backend local)",
            docker_host()
        ))),
        Err(_) => Err(EnvError::Docker(format!("the Docker engine at {} did not answer within {PING_TIMEOUT:?}", docker_host()))),
    }
}

/// The labels of one run's objects.
pub fn run_labels(run_id: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_OWNER.to_string(), "1".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_PROCESS.to_string(), crate::env::resources::owner_token()),
    ])
}

/// Removes every run whose gate process is gone (killed with no chance to clean up: `kill -9`,
/// an OOM kill, a runner that lost power) and returns what was removed, run by run. Runs of
/// live processes, of other hosts sharing the engine, and objects without the process label
/// are left alone.
pub async fn sweep_orphans(docker: &Docker) -> Result<Vec<(String, Leftovers)>, EnvError> {
    let mut owners: Vec<(String, String)> = Vec::new();
    for (_, labels) in labelled_objects(docker, None).await?.into_iter().flatten() {
        if let (Some(run), Some(process)) = (labels.get(LABEL_RUN), labels.get(LABEL_PROCESS))
            && !owners.iter().any(|(r, _)| r == run)
        {
            owners.push((run.clone(), process.clone()));
        }
    }
    let mut removed = Vec::new();
    for (run, process) in owners {
        if crate::env::resources::owner_is_gone(&process) {
            let found = list_labelled(docker, Some(&run)).await?;
            sweep(docker, Some(&run)).await?;
            removed.push((run, found));
        }
    }
    Ok(removed)
}

/// A filter matching one run's objects (`label=perf-gate.run=ID`), or every object of the perf
/// gate when `run_id` is `None`.
fn label_filter(run_id: Option<&str>) -> HashMap<String, Vec<String>> {
    let value = match run_id {
        Some(id) => format!("{LABEL_RUN}={id}"),
        None => format!("{LABEL_OWNER}=1"),
    };
    HashMap::from([("label".to_string(), vec![value])])
}

fn api_error(what: &str, e: impl std::fmt::Display) -> EnvError {
    EnvError::Docker(format!("{what}: {e}"))
}

/// The host's address on a bridge network (its gateway): containers on the network reach
/// the host there, and a listener bound to it is reachable from nowhere else.
pub async fn network_gateway(docker: &Docker, name: &str) -> Result<std::net::IpAddr, EnvError> {
    let network = docker.inspect_network(name, None).await.map_err(|e| api_error(&format!("inspecting network {name}"), e))?;
    let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
    configs
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4())
        .ok_or_else(|| EnvError::Docker(format!("network {name} has no IPv4 gateway: the fault proxies need the host's address on it")))
}

/// Creates the run's bridge network.
pub async fn create_network(docker: &Docker, name: &str, run_id: &str) -> Result<(), EnvError> {
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(run_labels(run_id)),
            ..Default::default()
        })
        .await
        .map_err(|e| api_error(&format!("creating network {name}"), e))?;
    Ok(())
}

/// Creates a labelled named volume (PostgreSQL's data: it survives a stop/start of the
/// container and is removed with the run).
pub async fn create_volume(docker: &Docker, name: &str, run_id: &str) -> Result<(), EnvError> {
    docker
        .create_volume(VolumeCreateRequest { name: Some(name.to_string()), labels: Some(run_labels(run_id)), ..Default::default() })
        .await
        .map_err(|e| api_error(&format!("creating volume {name}"), e))?;
    Ok(())
}

/// What is left in the engine with a run's labels (or any perf gate label).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Container names (or ids when unnamed).
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

impl std::fmt::Display for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "containers {:?}, networks {:?}, volumes {:?}", self.containers, self.networks, self.volumes)
    }
}

/// Lists the containers (running or not), networks and volumes labelled with `run_id`, or
/// with the perf gate's owner label when `run_id` is `None`.
pub async fn list_labelled(docker: &Docker, run_id: Option<&str>) -> Result<Leftovers, EnvError> {
    let [containers, networks, volumes] =
        labelled_objects(docker, run_id).await?.map(|kind| kind.into_iter().map(|(name, _)| name).collect());
    Ok(Leftovers { containers, networks, volumes })
}

/// Name and labels of each container, network and volume [`list_labelled`] lists.
type Labelled = Vec<(String, HashMap<String, String>)>;

async fn labelled_objects(docker: &Docker, run_id: Option<&str>) -> Result<[Labelled; 3], EnvError> {
    let filters = label_filter(run_id);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(|e| api_error("listing containers", e))?
        .into_iter()
        .map(|c| {
            let name =
                c.names.and_then(|n| n.into_iter().next()).map(|n| n.trim_start_matches('/').to_string()).or(c.id).unwrap_or_default();
            (name, c.labels.unwrap_or_default())
        })
        .collect();
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|e| api_error("listing networks", e))?
        .into_iter()
        .filter_map(|n| Some((n.name?, n.labels.unwrap_or_default())))
        .collect();
    let volumes = docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|e| api_error("listing volumes", e))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.name, v.labels))
        .collect();
    Ok([containers, networks, volumes])
}

/// The run id of the perf gate container that publishes `host_port` on the host, if any:
/// how a test (or a person) finds the run behind an address that `xtask up` printed.
pub async fn run_publishing(docker: &Docker, host_port: u16) -> Result<Option<String>, EnvError> {
    let filters = label_filter(None);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(|e| api_error("listing containers", e))?;
    Ok(containers.into_iter().find_map(|c| {
        let publishes = c.ports.unwrap_or_default().iter().any(|p| p.public_port == Some(host_port));
        if publishes { c.labels.and_then(|mut l| l.remove(LABEL_RUN)) } else { None }
    }))
}

/// Removes every container (with its anonymous volumes), network and volume labelled with
/// `run_id` (or with the owner label when `None`), in that order. Keeps going after an error
/// and reports what could not be removed.
pub async fn sweep(docker: &Docker, run_id: Option<&str>) -> Result<(), EnvError> {
    let found = list_labelled(docker, run_id).await?;
    let mut failures = Vec::new();
    for c in &found.containers {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        if let Err(e) = docker.remove_container(c, Some(opts)).await
            && !is_not_found(&e)
        {
            failures.push(format!("container {c}: {e}"));
        }
    }
    for n in &found.networks {
        if let Err(e) = docker.remove_network(n).await
            && !is_not_found(&e)
        {
            failures.push(format!("network {n}: {e}"));
        }
    }
    for v in &found.volumes {
        let opts = RemoveVolumeOptionsBuilder::new().force(true).build();
        if let Err(e) = docker.remove_volume(v, Some(opts)).await
            && !is_not_found(&e)
        {
            failures.push(format!("volume {v}: {e}"));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(EnvError::Docker(format!("could not remove {}", failures.join("; ")))) }
}

/// Sweeps a run from synchronous code (`Drop`): on a thread of its own with its own small
/// runtime, so it works inside or outside a Tokio runtime, and waits for it to finish.
pub fn sweep_blocking(run_id: &str) {
    let run_id = run_id.to_string();
    let worker = std::thread::Builder::new().name("perf-docker-cleanup".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("docker cleanup of run {run_id}: cannot start a runtime: {e}");
                return;
            }
        };
        rt.block_on(async {
            let result = match connect() {
                Ok(docker) => sweep(&docker, Some(&run_id)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::error!("docker cleanup of run {run_id}: {e}");
            }
        });
    });
    if let Ok(handle) = worker {
        let _ = handle.join();
    }
}

/// Removes one container by name (force, with its anonymous volumes); a missing one is fine.
pub async fn sweep_container(docker: &Docker, name: &str) -> Result<(), EnvError> {
    let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(name, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(&format!("removing container {name}"), e)),
    }
}

pub fn is_not_found(e: &testcontainers::bollard::errors::Error) -> bool {
    matches!(e, testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// True when the image exists in the engine's local store.
pub async fn image_exists(docker: &Docker, image: &str) -> Result<bool, EnvError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api_error(&format!("inspecting image {image}"), e)),
    }
}

/// State of a container: `Ok(None)` while it runs, `Ok(Some(description))` once it has
/// stopped (exit code, OOM kill, engine error).
pub async fn stopped_state(docker: &Docker, container: &str) -> Result<Option<String>, EnvError> {
    let info = docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .map_err(|e| api_error(&format!("inspecting container {container}"), e))?;
    let state = info.state.unwrap_or_default();
    if state.running.unwrap_or(false) || state.restarting.unwrap_or(false) {
        return Ok(None);
    }
    let mut what = format!("exit code {}", state.exit_code.unwrap_or(-1));
    if state.oom_killed.unwrap_or(false) {
        what.push_str(", killed by the kernel: out of memory");
    }
    if let Some(err) = state.error.filter(|e| !e.is_empty()) {
        what.push_str(&format!(", engine error: {err}"));
    }
    Ok(Some(what))
}

/// The host's pid of a running container's main process (`State.Pid`), for a profiler on the
/// host; `None` when it is not running or the engine does not say.
pub async fn main_pid(docker: &Docker, container: &str) -> Option<u32> {
    let info = docker.inspect_container(container, None::<InspectContainerOptions>).await.ok()?;
    let pid = info.state?.pid?;
    u32::try_from(pid).ok().filter(|p| *p > 0)
}

/// The last `lines` lines of a container's stdout and stderr, interleaved as written.
/// Never fails: a log that cannot be read gives a line saying why.
pub async fn log_tail(docker: &Docker, container: &str, lines: usize) -> String {
    let opts = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&lines.to_string()).build();
    let mut stream = docker.logs(container, Some(opts));
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => out.extend_from_slice(chunk.as_ref()),
            Err(e) => {
                out.extend_from_slice(format!("(reading the log of {container} failed: {e})\n").as_bytes());
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cumulative CPU seconds and current memory of a running container, from one one-shot
/// stats read. Memory is the cgroup's usage less its inactive file cache, as `docker stats`
/// shows it (cgroup v1 and v2). `None` when the container is not running.
///
/// When the gate runs on the engine's host and sees the container's processes, the
/// container's control group files are read instead ([`cgroup`]: microseconds, where the
/// engine's call takes about a second).
pub async fn sample(docker: &Docker, container: &str) -> Option<ResourceSample> {
    if let Some(sample) = sample_from_cgroup(docker, container).await {
        return Some(sample);
    }
    let opts = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
    let mut stream = docker.stats(container, Some(opts));
    let stats = stream.next().await?.ok()?;
    let cpu_ns = stats.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
    let mem = stats.memory_stats.as_ref()?;
    let usage = mem.usage?;
    let inactive = mem.stats.as_ref().and_then(|s| s.get("inactive_file").or_else(|| s.get("total_inactive_file")).copied()).unwrap_or(0);
    Some(ResourceSample { cpu_seconds: cpu_ns as f64 / 1e9, memory_bytes: usage.saturating_sub(inactive) })
}

/// The container's control group read on this host, found through its main process (`None`
/// with a remote engine, in another PID namespace, or when the container is not running).
async fn sample_from_cgroup(docker: &Docker, container: &str) -> Option<ResourceSample> {
    if !docker_host().starts_with("unix://") {
        return None;
    }
    let info = docker.inspect_container(container, None::<InspectContainerOptions>).await.ok()?;
    let id = info.id?;
    let pid = u32::try_from(info.state?.pid?).ok().filter(|p| *p > 0)?;
    super::cgroup::sample(pid, &id)
}
