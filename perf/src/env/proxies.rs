//! The proxies between the app and PostgreSQL and between the app and Redis: chaos suites set
//! network faults on them, and a plan's `link_latency` makes them hold every chunk as
//! production's network would, for every suite, from the start of the environment (so the
//! app's own start-up, migrations and seed cross the same link). Only in front of the
//! services the run starts: a plan without Redis has no Redis proxy, and a fault on it is
//! refused (the plan compiler refuses such an action first, with its place in the file).

use std::net::SocketAddr;

use super::error::EnvError;
use crate::faults::{FaultProxy, ProxyStats};
use crate::plan::{Fault, Link, Service, Setup, not_started};

/// Whether an environment puts proxies between the app and its databases: for chaos suites'
/// faults (`fault_proxies`), or for the link the plan models.
pub fn wanted(setup: &Setup, fault_proxies: bool) -> bool {
    fault_proxies || setup.environment.link.is_some()
}

/// The proxies of an environment started with `fault_proxies` or a plan's link.
#[derive(Debug)]
pub struct Proxies {
    /// `None` when the run starts no PostgreSQL.
    pub postgres: Option<FaultProxy>,
    /// `None` when the run starts no Redis.
    pub redis: Option<FaultProxy>,
}

impl Proxies {
    /// Starts one proxy per service given (its upstream address), listening on `listen`'s
    /// address with a free port, each holding every chunk `link`'s latency each way (none:
    /// passing it on as it comes).
    pub async fn start(
        listen: std::net::IpAddr,
        postgres: Option<SocketAddr>,
        redis: Option<SocketAddr>,
        link: Option<Link>,
    ) -> Result<Proxies, EnvError> {
        let start = |service: &'static str, upstream: Option<SocketAddr>| async move {
            let Some(upstream) = upstream else { return Ok(None) };
            FaultProxy::start_with_link(SocketAddr::new(listen, 0), upstream, link)
                .await
                .map(Some)
                .map_err(|e| EnvError::Io { context: format!("starting the fault proxy for {service} on {listen}"), source: e })
        };
        Ok(Proxies { postgres: start("postgres", postgres).await?, redis: start("redis", redis).await? })
    }

    /// The address the app reaches `service` at through its proxy (`None` without one).
    pub fn addr(&self, service: Service) -> Option<SocketAddr> {
        self.proxy(service).map(FaultProxy::addr)
    }

    /// Counters of each proxy since it started, PostgreSQL's first.
    pub fn stats(&self) -> Vec<(Service, ProxyStats)> {
        [Service::Postgres, Service::Redis].into_iter().filter_map(|s| Some((s, self.proxy(s)?.stats()))).collect()
    }

    fn proxy(&self, service: Service) -> Option<&FaultProxy> {
        match service {
            Service::Postgres => self.postgres.as_ref(),
            Service::Redis => self.redis.as_ref(),
            Service::App => None,
        }
    }

    fn set(&self, service: Service, fault: Fault) -> Result<(), EnvError> {
        if service == Service::App {
            return Err(EnvError::Other("the app has no fault proxy in front of it: faults apply to postgres and redis".into()));
        }
        let proxy =
            self.proxy(service).ok_or_else(|| EnvError::Other(format!("cannot set `{}`: {}", fault.describe(), not_started(service))))?;
        proxy.set(fault);
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
