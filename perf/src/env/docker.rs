//! The docker backend: PostgreSQL, Redis and the app in containers (testcontainers).
//! (Being written: see the docker issue.)

use super::{EnvError, ResourceSample, Service, ServiceInfo, StartOptions};
use crate::plan::model::Plan;

pub struct DockerEnv {
    app_url: String,
}

impl DockerEnv {
    pub async fn start(_plan: &Plan, _opts: &StartOptions) -> Result<DockerEnv, EnvError> {
        Err(EnvError::Other("the docker backend is not built yet".into()))
    }
    pub fn app_url(&self) -> &str {
        &self.app_url
    }
    pub fn services(&self) -> Vec<ServiceInfo> {
        Vec::new()
    }
    pub async fn stop_service(&mut self, _service: Service) -> Result<(), EnvError> {
        Err(EnvError::Other("the docker backend is not built yet".into()))
    }
    pub async fn start_service(&mut self, _service: Service) -> Result<(), EnvError> {
        Err(EnvError::Other("the docker backend is not built yet".into()))
    }
    pub async fn resources(&self) -> Vec<(Service, ResourceSample)> {
        Vec::new()
    }
    pub async fn shutdown(self) -> Result<(), EnvError> {
        Ok(())
    }
}

/// True when a Docker engine answers on the usual sockets.
pub async fn engine_answers() -> bool {
    false
}
