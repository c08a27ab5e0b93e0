//! The local backend: PostgreSQL, Redis and the app as child processes.
//! (Being written: see the foundation issue.)
//!
//! [`PostgresProcess`] and [`RedisProcess`] also serve tests that need a real database or
//! cache without the whole environment.

mod postgres;
mod redis;

pub use postgres::{PostgresOptions, PostgresProcess};
pub use redis::{RedisOptions, RedisProcess};

use super::{EnvError, ResourceSample, Service, ServiceInfo, StartOptions};
use crate::plan::model::Plan;

pub struct LocalEnv {
    app_url: String,
}

impl LocalEnv {
    pub async fn start(_plan: &Plan, _opts: &StartOptions) -> Result<LocalEnv, EnvError> {
        Err(EnvError::Other("the local backend is not built yet".into()))
    }
    pub fn app_url(&self) -> &str {
        &self.app_url
    }
    pub fn services(&self) -> Vec<ServiceInfo> {
        Vec::new()
    }
    pub async fn stop_service(&mut self, _service: Service) -> Result<(), EnvError> {
        Err(EnvError::Other("the local backend is not built yet".into()))
    }
    pub async fn start_service(&mut self, _service: Service) -> Result<(), EnvError> {
        Err(EnvError::Other("the local backend is not built yet".into()))
    }
    pub fn resources(&self) -> Vec<(Service, ResourceSample)> {
        Vec::new()
    }
    pub async fn shutdown(self) -> Result<(), EnvError> {
        Ok(())
    }
}
