//! The docker backend: PostgreSQL, Redis and the app in containers, through testcontainers.
//!
//! One run owns, all labelled `perf-gate=1` and `perf-gate.run=<run id>`:
//! - a bridge network `perf-gate-<run>`, on which every container's hostname is its service
//!   name (`postgres`, `redis`, `app`): on user-defined networks the engine resolves a
//!   container's hostname, so the app reaches `postgres:5432` and `redis:6379`;
//! - a named volume `perf-gate-<run>-pgdata` for PostgreSQL's data;
//! - containers `perf-gate-<run>-{postgres,redis,app}`, each with its one port published on
//!   127.0.0.1 only, at a host port chosen free before the container is created. The binding
//!   is explicit, so a `stop_service`/`start_service` keeps the same host port and every URL
//!   handed out stays right.
//!
//! PostgreSQL (with its volume) and Redis are there only when the plan asks for them
//! (`plan::EnvironmentSetup::starts`); the app's templates are checked against what will run
//! before the engine is asked for anything.
//!
//! testcontainers creates and starts the containers (and pulls an image missing locally);
//! [`engine`] does what it has no API for. One small module per image says what the image
//! needs and when it is ready ([`postgres`], [`redis`]; the app's image is built or chosen by
//! [`images`] and is ready when its health check answers); [`ready`] waits.
//!
//! Clean-up: [`DockerEnv::shutdown`] removes the containers, the network and the volume; a
//! failed or interrupted start does the same before returning its error; and `Drop` (errors,
//! panics, a start future dropped half-way) removes everything carrying the run's label from
//! a thread of its own. The label is the ground truth: whatever testcontainers created before
//! an interruption is found and removed by it.

mod cgroup;
pub mod engine;
pub mod images;
pub mod postgres;
pub mod ready;
pub mod redis;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, TestcontainersError};
use tokio_util::sync::CancellationToken;

use super::appenv::{self, AppEnvValues, PostgresAddr, RedisAddr};
use super::error::EnvError;
use super::proxies::{self, Proxies};
use super::types::{PostgresAccess, ResourceSample, ServiceAccess, ServiceInfo, StartOptions};
use crate::plan::BackendKind;
use crate::plan::{DockerAppSetup, Service, Setup};

pub use engine::{LABEL_OWNER, LABEL_RUN, Leftovers, engine_answers, engine_version};
pub use images::apply_image_overrides;

/// Grace period of `docker stop` before SIGKILL.
const STOP_TIMEOUT_SECS: i32 = 10;
/// Lines of each container's log saved under `logs_dir` when something fails.
const SAVED_LOG_LINES: usize = 5000;

/// A running environment on a Docker engine: a small handle (the `Environment` enum holds
/// it inline) around the run's state.
pub struct DockerEnv(Box<State>);

impl DockerEnv {
    /// Starts the PostgreSQL and Redis the plan asks for (concurrently), then the app, on a
    /// network of their own; returns once each database answers a real query and the app is up
    /// (`procs::wait_http_ready`).
    /// On any failure, and when `opts.cancel` fires, everything created is removed before the
    /// error is returned; the containers' logs are saved to `opts.logs_dir/<service>.log`.
    pub async fn start(setup: &Setup, opts: &StartOptions) -> Result<DockerEnv, EnvError> {
        Self::start_with_run_id(setup, opts, &new_run_id()).await
    }

    /// [`DockerEnv::start`] with a run id chosen by the caller (for example the id of the
    /// gate's run, so that the engine's objects and the summary can be matched; tests use it
    /// to find what a failed start left). It must be unique among runs on the engine: it
    /// names the network, the volume and the containers.
    pub async fn start_with_run_id(setup: &Setup, opts: &StartOptions, run_id: &str) -> Result<DockerEnv, EnvError> {
        State::start(setup, opts, run_id).await.map(|s| DockerEnv(Box::new(s)))
    }

    /// Base URL of the app, published on 127.0.0.1, without a trailing slash.
    pub fn app_url(&self) -> &str {
        self.0.app_url()
    }

    /// The run id: the value of the `perf-gate.run` label on everything this run created.
    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// App first, then PostgreSQL and Redis when the run started them; URLs on 127.0.0.1,
    /// without the password.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.0.services()
    }

    /// `docker stop` (SIGINT for the PostgreSQL images, SIGTERM otherwise, SIGKILL after
    /// 10 s); the container, its data and its port binding stay.
    pub async fn stop_service(&mut self, service: Service) -> Result<(), EnvError> {
        self.0.stop_service(service).await
    }

    /// `docker start` of the stopped container, then the same readiness wait as at start-up.
    /// The host port is the same as before (explicit binding), so every URL stays right.
    pub async fn start_service(&mut self, service: Service) -> Result<(), EnvError> {
        self.0.start_service(service).await
    }

    /// `Err(Exited)` with the container's exit state and log tail when a container exited
    /// by itself (one stopped through `stop_service` is not asked about).
    pub async fn check_alive(&mut self) -> Result<(), EnvError> {
        self.0.check_alive().await
    }

    /// Cumulative CPU seconds and current memory of each running container (one-shot stats,
    /// read concurrently). A stopped service is left out.
    pub async fn resources(&self) -> Vec<(Service, ResourceSample)> {
        self.0.resources().await
    }

    /// The fault proxies, when the environment was started with them.
    pub fn proxies(&self) -> Option<&Proxies> {
        self.0.proxies.as_ref()
    }

    /// The app container's main process as the host sees it (its threads are the app's), or
    /// why it cannot be had: an engine on another machine (or in a VM) runs processes this
    /// host cannot see.
    pub async fn app_pid(&self) -> Result<u32, String> {
        let app = self.0.app.as_ref().ok_or("the app's container is not running")?;
        let pid = engine::main_pid(&self.0.docker, &app.name).await.ok_or("the engine did not say the app container's pid")?;
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            Ok(pid)
        } else {
            Err(format!("the app container's process (pid {pid}) is not on this machine: the Docker engine runs elsewhere"))
        }
    }

    /// The published ports of PostgreSQL and Redis, with the run's credentials (`None` for a
    /// service the run did not start).
    pub fn service_access(&self) -> Option<ServiceAccess> {
        let s = &self.0;
        let postgres = s.postgres.as_ref().zip(s.pg_login.as_ref()).map(|(pg, login)| PostgresAccess {
            port: pg.host_port,
            user: login.user.clone(),
            password: Some(login.password.clone()),
            database: login.database.clone(),
        });
        Some(ServiceAccess { postgres, redis_port: s.redis.as_ref().map(|r| r.host_port) })
    }

    /// Removes the containers (app, Redis, PostgreSQL), the network and the volume, then
    /// sweeps anything else labelled with the run.
    pub async fn shutdown(mut self) -> Result<(), EnvError> {
        self.0.teardown(false).await
    }
}

struct State {
    docker: Docker,
    run_id: String,
    network: String,
    volume: String,
    postgres: Option<Running>,
    redis: Option<Running>,
    app: Option<Running>,
    /// With `StartOptions::fault_proxies` or the plan's link: between the app and PostgreSQL
    /// and Redis.
    proxies: Option<Proxies>,
    /// Who connects to PostgreSQL; `None` when the run starts none.
    pg_login: Option<PgLogin>,
    /// The plan's health path; `None`: any answer at `/` will do.
    health_path: Option<String>,
    startup_timeout: Duration,
    cancel: CancellationToken,
    notes: crate::util::Notes,
    logs_dir: PathBuf,
    /// Services stopped on purpose (`stop_service`) and not started again.
    stopped: std::collections::HashSet<Service>,
    /// CPU seconds each service used before its last `stop_service`: a container's cgroup
    /// counters start again from zero when it starts again, and `resources()` must stay
    /// cumulative for the whole run (summaries hold differences).
    cpu_before_restarts: HashMap<Service, f64>,
    /// Set once everything was removed: `Drop` has nothing left to do.
    closed: bool,
}

/// The user, database and password PostgreSQL's container is created with.
struct PgLogin {
    user: String,
    database: String,
    /// The plan's or a random one. Never printed, never in an error.
    password: String,
}

/// A container of the run and its published port on 127.0.0.1.
struct Running {
    container: ContainerAsync<GenericImage>,
    name: String,
    host_port: u16,
    /// `http://127.0.0.1:PORT` (what the app's URL is; unused for the databases).
    url: String,
}

impl State {
    async fn start(setup: &Setup, opts: &StartOptions, run_id: &str) -> Result<State, EnvError> {
        if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(EnvError::Other(format!(
                "run id {run_id:?}: expected letters, digits, `-` and `_` only (it names docker objects)"
            )));
        }
        let run_id = run_id.to_string();
        let spec = setup.app.docker.clone().ok_or_else(|| EnvError::Other(BackendKind::Docker.missing_setup()))?;
        // A mistake in the app's templates (a name of a service the run does not start among
        // them) is found before the engine is asked for anything.
        appenv::resolve(&setup.app.env, &AppEnvValues::placeholders(setup, None))?;
        let docker = engine::connect()?;
        engine::ping(&docker).await?;
        let pg_login = setup.environment.postgres.as_ref().map(|pg| PgLogin {
            user: pg.user.clone(),
            database: pg.database.clone(),
            password: pg.password.clone().unwrap_or_else(random_password),
        });
        let mut env = State {
            docker,
            network: format!("perf-gate-{run_id}"),
            volume: format!("perf-gate-{run_id}-pgdata"),
            run_id,
            postgres: None,
            redis: None,
            app: None,
            proxies: None,
            pg_login,
            health_path: setup.app.health.clone(),
            startup_timeout: setup.environment.startup_timeout,
            cancel: opts.cancel.clone(),
            notes: opts.notes.clone(),
            logs_dir: opts.logs_dir.clone(),
            stopped: Default::default(),
            cpu_before_restarts: HashMap::new(),
            closed: false,
        };
        tracing::info!(run = %env.run_id, "docker backend: starting");
        let result = tokio::select! {
            r = env.bring_up(setup, &spec, opts) => r,
            _ = opts.cancel.cancelled() => Err(EnvError::Interrupted),
        };
        match result {
            Ok(()) => Ok(env),
            Err(err) => {
                let err = env.save_logs_into(err).await;
                if let Err(e) = env.teardown(true).await {
                    tracing::error!("docker backend: clean-up after a failed start: {e}");
                }
                Err(err)
            }
        }
    }

    async fn bring_up(&mut self, setup: &Setup, spec: &DockerAppSetup, opts: &StartOptions) -> Result<(), EnvError> {
        for (run, left) in engine::sweep_orphans(&self.docker).await? {
            opts.notes.say(format!("  removed what an earlier run left when its gate was killed (run {run}): {left}"));
        }
        images::ensure_app_image(&self.docker, spec, &opts.plan_dir, &opts.logs_dir, &opts.cancel).await?;
        engine::create_network(&self.docker, &self.network, &self.run_id).await?;
        if self.pg_login.is_some() {
            engine::create_volume(&self.docker, &self.volume, &self.run_id).await?;
        }

        // The services the plan asks for start together; each is kept (and its log saved)
        // even when the other fails.
        let run_pg = async {
            let (Some(pg), Some(login)) = (&setup.environment.postgres, &self.pg_login) else { return Ok(None) };
            let env = postgres::env(&login.user, &login.password, &login.database);
            let mount = postgres::data_mount(&self.volume);
            self.run_container(Service::Postgres, &pg.image, postgres::PORT, env, Some(mount)).await.map(Some)
        };
        let run_redis = async {
            let Some(redis) = &setup.environment.redis else { return Ok(None) };
            self.run_container(Service::Redis, &redis.image, redis::PORT, Vec::new(), None).await.map(Some)
        };
        let (pg, redis) = tokio::join!(run_pg, run_redis);
        let pg_started = pg.map(|r| r.map(|r| self.postgres.insert(r).clone_handle()));
        let redis_started = redis.map(|r| r.map(|r| self.redis.insert(r).clone_handle()));
        let (pg, redis) = (pg_started?, redis_started?);
        let (pg_ready, redis_ready) = tokio::join!(
            async {
                match &pg {
                    Some(h) => self.wait_postgres(h).await,
                    None => Ok(()),
                }
            },
            async {
                match &redis {
                    Some(h) => self.wait_redis(h).await,
                    None => Ok(()),
                }
            },
        );
        pg_ready?;
        redis_ready?;

        // Directly by service name, or through the proxies (chaos suites' faults, the plan's
        // link): they run in the gate, listen on the host's address on the run's network and
        // forward to the published ports.
        let through = if proxies::wanted(setup, opts.fault_proxies) {
            let gateway = engine::network_gateway(&self.docker, &self.network).await?;
            let loopback = std::net::Ipv4Addr::LOCALHOST;
            let upstream = |h: &Option<Handle>| h.as_ref().map(|h| SocketAddr::from((loopback, h.host_port)));
            let proxies = Proxies::start(gateway, upstream(&pg), upstream(&redis), setup.environment.link).await?;
            let addrs = Through { postgres: proxies.addr(Service::Postgres), redis: proxies.addr(Service::Redis) };
            self.proxies = Some(proxies);
            Some(addrs)
        } else {
            None
        };
        let values = app_values(self.pg_login.as_ref(), redis.is_some(), through, spec.port);
        let app_env = appenv::resolve(&setup.app.env, &values)?.into_iter().collect();
        let app = self.run_container(Service::App, &spec.image, spec.port, app_env, None).await?;
        let app = self.app.insert(app).clone_handle();
        self.wait_app(&app).await
    }

    /// Creates and starts one container through testcontainers, its port published on
    /// 127.0.0.1 at a free port. Retries twice with another port when that port was taken
    /// between choosing and binding it.
    async fn run_container(
        &self,
        service: Service,
        image: &str,
        port: u16,
        env: Vec<(String, String)>,
        mount: Option<Mount>,
    ) -> Result<Running, EnvError> {
        let name = format!("perf-gate-{}-{}", self.run_id, service.as_str());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let host_port = super::procs::free_port()?;
            let (image_name, tag) = images::split_image(image);
            let mut request = GenericImage::new(image_name, tag)
                .with_exposed_port(port.tcp())
                .with_network(self.network.clone())
                .with_container_name(name.clone())
                .with_hostname(service.as_str())
                .with_labels(engine::run_labels(&self.run_id))
                .with_startup_timeout(self.startup_timeout)
                .with_host_config_modifier(move |host| {
                    host.publish_all_ports = Some(false);
                    host.port_bindings = Some(HashMap::from([(
                        format!("{port}/tcp"),
                        Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(host_port.to_string()) }]),
                    )]));
                });
            for (key, value) in &env {
                request = request.with_env_var(key.clone(), value.clone());
            }
            if let Some(m) = &mount {
                request = request.with_mount(m.clone());
            }
            if service == Service::Postgres {
                request = request.with_cmd(postgres::command());
            }
            match request.start().await {
                Ok(container) => {
                    let url = format!("http://127.0.0.1:{host_port}");
                    return Ok(Running { container, name, host_port, url });
                }
                Err(e) => {
                    let text = e.to_string();
                    // A container created but not started keeps its name: remove it first.
                    let _ = engine::sweep_container(&self.docker, &name).await;
                    let port_taken = text.contains("port is already allocated") || text.contains("address already in use");
                    if port_taken && attempt < 3 {
                        continue;
                    }
                    return Err(start_error(service, image, e));
                }
            }
        }
    }

    async fn wait_postgres(&self, pg: &Handle) -> Result<(), EnvError> {
        let login = self.pg_login.as_ref().ok_or_else(|| EnvError::Other(crate::plan::not_started(Service::Postgres)))?;
        let (user, password, db) = (&login.user, &login.password, &login.database);
        ready::wait_ready(&self.docker, &pg.name, "postgres", self.startup_timeout, &self.cancel, || {
            postgres::answers(pg.host_port, user, password, db)
        })
        .await
    }

    async fn wait_redis(&self, redis: &Handle) -> Result<(), EnvError> {
        ready::wait_ready(&self.docker, &redis.name, "redis", self.startup_timeout, &self.cancel, || redis::answers(redis.host_port)).await
    }

    /// Waits for the app's health check; a watcher ends the wait as soon as the container
    /// stops, and either error carries the container's log tail.
    async fn wait_app(&self, app: &Handle) -> Result<(), EnvError> {
        let url = format!("http://127.0.0.1:{}", app.host_port);
        let health = self.health_path.as_deref();
        let stopped: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
        let watcher = {
            let (docker, name, stopped) = (self.docker.clone(), app.name.clone(), stopped.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Ok(Some(status)) = engine::stopped_state(&docker, &name).await {
                        *stopped.lock() = Some(status);
                        return;
                    }
                }
            })
        };
        let result = super::procs::wait_http_ready("app", &url, health, self.startup_timeout, &self.cancel, &self.notes, || match stopped
            .lock()
            .take()
        {
            Some(status) => Err(EnvError::Exited { service: "app", status, log_tail: String::new() }),
            None => Ok(String::new()),
        })
        .await;
        watcher.abort();
        match result {
            Err(EnvError::Exited { service, status, .. }) => {
                let log_tail = engine::log_tail(&self.docker, &app.name, ready::TAIL_LINES).await;
                Err(EnvError::Exited { service, status, log_tail })
            }
            Err(EnvError::NotReady { service, timeout, detail, .. }) => {
                let log_tail = engine::log_tail(&self.docker, &app.name, ready::TAIL_LINES).await;
                Err(EnvError::NotReady { service, timeout, detail, log_tail })
            }
            other => other,
        }
    }

    /// Base URL of the app, published on 127.0.0.1.
    fn app_url(&self) -> &str {
        self.app.as_ref().map_or("", |a| a.url.as_str())
    }

    /// App first, then PostgreSQL and Redis; URLs without the password.
    fn services(&self) -> Vec<ServiceInfo> {
        let mut out = Vec::new();
        if let Some(app) = &self.app {
            out.push(ServiceInfo { service: Service::App, url: app.url.clone() });
        }
        if let (Some(pg), Some(login)) = (&self.postgres, &self.pg_login) {
            out.push(ServiceInfo {
                service: Service::Postgres,
                url: format!("postgres://{}@127.0.0.1:{}/{}", login.user, pg.host_port, login.database),
            });
        }
        if let Some(redis) = &self.redis {
            out.push(ServiceInfo { service: Service::Redis, url: format!("redis://127.0.0.1:{}", redis.host_port) });
        }
        out
    }

    fn running(&self, service: Service) -> Result<&Running, EnvError> {
        match service {
            Service::App => self.app.as_ref(),
            Service::Postgres => self.postgres.as_ref(),
            Service::Redis => self.redis.as_ref(),
        }
        .ok_or_else(|| {
            EnvError::Other(match service {
                Service::App => "the app is not part of this environment".to_string(),
                database => crate::plan::not_started(database),
            })
        })
    }

    /// `docker stop` (SIGINT for the PostgreSQL images, SIGTERM otherwise, SIGKILL after
    /// 10 s); the container, its data and its port binding stay.
    async fn stop_service(&mut self, service: Service) -> Result<(), EnvError> {
        let running = self.running(service)?;
        let used = engine::sample(&self.docker, &running.name).await.map_or(0.0, |s| s.cpu_seconds);
        let running = self.running(service)?;
        let stopped = running
            .container
            .stop_with_timeout(Some(STOP_TIMEOUT_SECS))
            .await
            .map_err(|e| EnvError::Docker(format!("stopping {}: {e}", service.as_str())));
        // The last sample before the stop misses at most the shutdown's own CPU time.
        *self.cpu_before_restarts.entry(service).or_default() += used;
        self.stopped.insert(service);
        stopped
    }

    async fn check_alive(&mut self) -> Result<(), EnvError> {
        for (service, running) in [(Service::App, &self.app), (Service::Postgres, &self.postgres), (Service::Redis, &self.redis)] {
            let Some(running) = running.as_ref().filter(|_| !self.stopped.contains(&service)) else { continue };
            if let Some(status) = engine::stopped_state(&self.docker, &running.name).await? {
                let log_tail = engine::log_tail(&self.docker, &running.name, ready::TAIL_LINES).await;
                return Err(EnvError::Exited { service: service.as_str(), status, log_tail });
            }
        }
        Ok(())
    }

    /// `docker start` of the stopped container, then the same readiness wait as at start-up.
    /// The host port is the same as before (explicit binding), so URLs stay right.
    async fn start_service(&mut self, service: Service) -> Result<(), EnvError> {
        let running = self.running(service)?;
        running.container.start().await.map_err(|e| EnvError::Docker(format!("starting {} again: {e}", service.as_str())))?;
        let handle = running.clone_handle();
        self.stopped.remove(&service);
        match service {
            Service::Postgres => self.wait_postgres(&handle).await,
            Service::Redis => self.wait_redis(&handle).await,
            Service::App => self.wait_app(&handle).await,
        }
    }

    /// Cumulative CPU seconds and current memory of each running container (one-shot stats,
    /// read concurrently). A stopped service is left out.
    async fn resources(&self) -> Vec<(Service, ResourceSample)> {
        let services = [(Service::App, &self.app), (Service::Postgres, &self.postgres), (Service::Redis, &self.redis)];
        let reads = services.iter().filter_map(|(service, running)| {
            let running = running.as_ref()?;
            let docker = &self.docker;
            let base = self.cpu_before_restarts.get(service).copied().unwrap_or(0.0);
            Some(async move {
                let mut sample = engine::sample(docker, &running.name).await?;
                sample.cpu_seconds += base;
                Some((*service, sample))
            })
        });
        futures::future::join_all(reads).await.into_iter().flatten().collect()
    }

    /// `settle`: after an interrupted or failed start, a create request that was in flight when
    /// its future was dropped may still complete in the engine after the first sweep; a second
    /// look half a second later removes it too.
    async fn teardown(&mut self, settle: bool) -> Result<(), EnvError> {
        let mut failures = Vec::new();
        for running in [self.app.take(), self.redis.take(), self.postgres.take()].into_iter().flatten() {
            if let Err(e) = running.container.rm().await {
                failures.push(format!("container {}: {e}", running.name));
            }
        }
        if let Err(e) = engine::sweep(&self.docker, Some(&self.run_id)).await {
            failures.push(e.to_string());
        }
        if settle {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = engine::sweep(&self.docker, Some(&self.run_id)).await {
                failures.push(e.to_string());
            }
        }
        self.closed = true;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(EnvError::Docker(format!("clean-up of run {}: {}", self.run_id, failures.join("; "))))
        }
    }

    /// Saves every container's log to `logs_dir/<service>.log` and says where in the error.
    async fn save_logs_into(&self, err: EnvError) -> EnvError {
        let mut saved = Vec::new();
        for service in [Service::Postgres, Service::Redis, Service::App] {
            let name = format!("perf-gate-{}-{}", self.run_id, service.as_str());
            if engine::stopped_state(&self.docker, &name).await.is_err() {
                continue; // never created
            }
            let log = engine::log_tail(&self.docker, &name, SAVED_LOG_LINES).await;
            let path = self.logs_dir.join(format!("{}.log", service.as_str()));
            match crate::util::write_atomic(&path, log.as_bytes()) {
                Ok(()) => saved.push(path),
                Err(e) => tracing::warn!("saving the log of {}: {e}", service.as_str()),
            }
        }
        if saved.is_empty() {
            return err;
        }
        let note = format!(" (container logs saved in {})", self.logs_dir.display());
        match err {
            EnvError::NotReady { service, timeout, detail, log_tail } => {
                EnvError::NotReady { service, timeout, detail: detail + &note, log_tail }
            }
            EnvError::Exited { service, status, log_tail } => EnvError::Exited { service, status: status + &note, log_tail },
            other => other,
        }
    }
}

impl Drop for State {
    /// Errors, panics and a start dropped half-way: everything labelled with the run goes.
    /// The testcontainers handles are forgotten rather than dropped (their own `Drop` needs a
    /// Tokio runtime and would race the sweep); the sweep removes their containers.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        for running in [self.app.take(), self.redis.take(), self.postgres.take()].into_iter().flatten() {
            std::mem::forget(running.container);
        }
        engine::sweep_blocking(&self.run_id);
    }
}

/// What the readiness waits need of a running container, without borrowing it.
struct Handle {
    name: String,
    host_port: u16,
}

impl Running {
    fn clone_handle(&self) -> Handle {
        Handle { name: self.name.clone(), host_port: self.host_port }
    }
}

fn start_error(service: Service, image: &str, e: TestcontainersError) -> EnvError {
    let text = super::procs::error_chain(&e);
    if text.contains("failed to pull the image") {
        let var = match service {
            Service::Postgres => images::POSTGRES_IMAGE_VAR,
            Service::Redis => images::REDIS_IMAGE_VAR,
            Service::App => images::APP_IMAGE_VAR,
        };
        return EnvError::Docker(format!(
            "{}: the image {image} is not in the engine's local store and could not be pulled ({text}). Ways out: run \
             with --backend local (PostgreSQL, Redis and the app as local processes); or set {var} to an image the engine \
             has (fixtures/images/build.sh builds them from Debian packages, without a registry)",
            service.as_str()
        ));
    }
    EnvError::Docker(format!("starting the {} container from {image}: {text}", service.as_str()))
}

/// A short random id: the run's label value and part of every name.
pub fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn random_password() -> String {
    use rand::RngExt;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(24).map(char::from).collect()
}

/// The fault proxies' addresses on the run's network (`GATEWAY:PORT`), for the services the
/// run started.
struct Through {
    postgres: Option<SocketAddr>,
    redis: Option<SocketAddr>,
}

/// What the app's templates resolve to inside its container: PostgreSQL (when `pg` gives its
/// login) and Redis (when `redis`) by their service names on the run's network, or the fault
/// proxies' addresses when `proxies` gives them.
fn app_values(pg: Option<&PgLogin>, redis: bool, proxies: Option<Through>, app_port: u16) -> AppEnvValues {
    // By name on the network, or the proxy's address when there is one.
    let at = |service: Service, port: u16, proxy: Option<SocketAddr>| match proxy {
        Some(p) => (p.ip().to_string(), p.port()),
        None => (service.as_str().to_string(), port),
    };
    let (pg_proxy, redis_proxy) = proxies.map_or((None, None), |t| (t.postgres, t.redis));
    AppEnvValues {
        postgres: pg.map(|login| {
            let (host, port) = at(Service::Postgres, postgres::PORT, pg_proxy);
            PostgresAddr { host, port, user: login.user.clone(), password: login.password.clone(), database: login.database.clone() }
        }),
        redis: redis.then(|| {
            let (host, port) = at(Service::Redis, redis::PORT, redis_proxy);
            RedisAddr { host, port }
        }),
        app_listen: format!("0.0.0.0:{app_port}"),
        app_port,
        cargo_target_dir: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(values: &AppEnvValues) -> Vec<String> {
        let names = ["url", "host", "port", "user", "password", "database"].map(|n| format!("{{{{postgres.{n}}}}}"));
        let redis = ["url", "host", "port"].map(|n| format!("{{{{redis.{n}}}}}"));
        names.iter().chain(&redis).map(|t| appenv::render("app.env.X", t, values).unwrap()).collect()
    }

    fn login() -> PgLogin {
        PgLogin { user: "perf".into(), database: "shop".into(), password: "s3cret".into() }
    }

    #[test]
    fn the_app_sees_the_services_by_name_on_the_run_network() {
        let values = app_values(Some(&login()), true, None, 8080);
        assert_eq!(
            rendered(&values),
            [
                "postgres://perf:s3cret@postgres:5432/shop",
                "postgres",
                "5432",
                "perf",
                "s3cret",
                "shop",
                "redis://redis:6379",
                "redis",
                "6379"
            ]
        );
        assert_eq!(values.app_listen, "0.0.0.0:8080");
    }

    #[test]
    fn with_fault_proxies_the_app_sees_the_proxies() {
        let pg: SocketAddr = "172.18.0.1:41000".parse().unwrap();
        let redis: SocketAddr = "172.18.0.1:41001".parse().unwrap();
        let values = app_values(Some(&login()), true, Some(Through { postgres: Some(pg), redis: Some(redis) }), 8080);
        assert_eq!(
            rendered(&values),
            [
                "postgres://perf:s3cret@172.18.0.1:41000/shop",
                "172.18.0.1",
                "41000",
                "perf",
                "s3cret",
                "shop",
                "redis://172.18.0.1:41001",
                "172.18.0.1",
                "41001"
            ]
        );
    }

    #[test]
    fn a_service_the_run_does_not_start_has_no_address() {
        let values = app_values(None, true, None, 8080);
        assert!(values.postgres.is_none());
        let err = appenv::render("app.env.DATABASE_URL", "{{postgres.url}}", &values).unwrap_err().to_string();
        assert!(err.contains("names postgres, which this run does not start"), "{err}");
        assert_eq!(appenv::render("app.env.X", "{{redis.url}}", &values).unwrap(), "redis://redis:6379");
        // With proxies: one in front of the service the run started, none for the other.
        let redis: SocketAddr = "172.18.0.1:41001".parse().unwrap();
        let values = app_values(None, true, Some(Through { postgres: None, redis: Some(redis) }), 8080);
        assert!(values.postgres.is_none());
        assert_eq!(appenv::render("app.env.X", "{{redis.host}}:{{redis.port}}", &values).unwrap(), "172.18.0.1:41001");
        let values = app_values(Some(&login()), false, None, 8080);
        assert!(values.redis.is_none());
        assert_eq!(appenv::render("app.env.X", "{{postgres.host}}:{{postgres.port}}", &values).unwrap(), "postgres:5432");
    }

    #[test]
    fn passwords_are_random_and_alphanumeric() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn run_ids_are_twelve_hex_digits() {
        let id = new_run_id();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
