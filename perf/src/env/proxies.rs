//! The proxies between the app and PostgreSQL and between the app and Redis: chaos suites set
//! network faults on them, and a plan's `link_latency` makes them hold every chunk as
//! production's network would, for every suite, from the start of the environment (so the
//! app's own start-up, migrations and seed cross the same link).

use std::net::SocketAddr;

use super::error::EnvError;
use crate::faults::{FaultProxy, ProxyStats};
use crate::plan::{Fault, Link, Service, Setup};

/// Whether an environment puts proxies between the app and its databases: for chaos suites'
/// faults (`fault_proxies`), or for the link the plan models.
pub fn wanted(setup: &Setup, fault_proxies: bool) -> bool {
    fault_proxies || setup.environment.link.is_some()
}

/// The proxies of an environment started with `fault_proxies` or a plan's link.
#[derive(Debug)]
pub struct Proxies {
    pub postgres: FaultProxy,
    pub redis: FaultProxy,
}

impl Proxies {
    /// Starts one proxy per service, listening on `listen`'s address with a free port, each
    /// holding every chunk `link`'s latency each way (none: passing it on as it comes).
    pub async fn start(listen: std::net::IpAddr, postgres: SocketAddr, redis: SocketAddr, link: Option<Link>) -> Result<Proxies, EnvError> {
        let start = |service: &'static str, upstream: SocketAddr| async move {
            FaultProxy::start_with_link(SocketAddr::new(listen, 0), upstream, link)
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
