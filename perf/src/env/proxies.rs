//! The fault proxies that chaos suites put between the app and PostgreSQL and between the app
//! and Redis, to set network faults on them.

use std::net::SocketAddr;

use super::error::EnvError;
use crate::faults::{FaultProxy, ProxyStats};
use crate::plan::{Fault, Service};

/// The fault proxies of an environment started with `fault_proxies`.
#[derive(Debug)]
pub struct Proxies {
    pub postgres: FaultProxy,
    pub redis: FaultProxy,
}

impl Proxies {
    /// Starts one proxy per service, listening on `listen`'s address with a free port.
    pub async fn start(listen: std::net::IpAddr, postgres: SocketAddr, redis: SocketAddr) -> Result<Proxies, EnvError> {
        let start = |service: &'static str, upstream: SocketAddr| async move {
            FaultProxy::start(SocketAddr::new(listen, 0), upstream)
                .await
                .map_err(|e| EnvError::Io { context: format!("starting the fault proxy for {service} on {listen}"), source: e })
        };
        Ok(Proxies { postgres: start("postgres", postgres).await?, redis: start("redis", redis).await? })
    }

    /// Counters of both proxies since they started.
    pub fn stats(&self) -> [(Service, ProxyStats); 2] {
        [(Service::Postgres, self.postgres.stats()), (Service::Redis, self.redis.stats())]
    }

    fn set(&self, service: Service, fault: Fault) -> Result<(), EnvError> {
        match service {
            Service::Postgres => self.postgres.set(fault),
            Service::Redis => self.redis.set(fault),
            Service::App => {
                return Err(EnvError::Other("the app has no fault proxy in front of it: faults apply to postgres and redis".into()));
            }
        }
        Ok(())
    }
}

/// Sets `fault` through `proxies`, or says why there are none.
pub(super) fn set_fault(proxies: Option<&Proxies>, service: Service, fault: Fault) -> Result<(), EnvError> {
    match proxies {
        Some(p) => p.set(service, fault),
        None => Err(EnvError::Other(format!(
            "cannot set `{}` on {}: the environment was started without fault proxies",
            fault.describe(),
            service.as_str()
        ))),
    }
}
