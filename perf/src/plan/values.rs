//! The plan's small value types: what the file's model, the compiled form and the layers after
//! the plan all name. Durations as written (`"250ms"`), think time, the HTTP version, a suite's
//! kind, an executor, an SLO entry, a per-endpoint compare override and a service of the
//! environment. No TOML here, only serde: the model deserializes them, everything else reads
//! them as plain data.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `"250ms"`, `"10s"`, `"1m30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// Parses `"250ms"`, `"10s"`, `"1m30s"`; the error says what was expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}): expected a number with a unit, like \"250ms\", \"10s\" or \"1m30s\""))
}

/// A duration that may be finer than a millisecond and carry decimals: `"0.5ms"`, `"500us"`,
/// `"500µs"`, `"1.25ms"`; anything else [`parse_duration`] reads too (`"1ms"`, `"2s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FineDur(pub Duration);

impl<'de> Deserialize<'de> for FineDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_fine_duration(&s).map(FineDur).map_err(serde::de::Error::custom)
    }
}

/// Parses a number, decimals allowed, and one unit among `ns`, `us`, `µs`, `ms` and `s`
/// (`"0.5ms"`); otherwise as [`parse_duration`] does.
pub fn parse_fine_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let ns_per_unit = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return parse_duration(t),
    };
    if number.is_empty() || number.matches('.').count() > 1 || number.starts_with('.') || number.ends_with('.') {
        return parse_duration(t);
    }
    let ns = number.parse::<f64>().map_err(|e| format!("invalid duration {s:?} ({e})"))? * ns_per_unit;
    if !ns.is_finite() || ns >= u64::MAX as f64 {
        return Err(format!("invalid duration {s:?}: too long"));
    }
    Ok(Duration::from_nanos(ns.round() as u64))
}

/// The network between the app and its databases as the plan models it (`[environment]
/// link_latency` and `link_jitter`): each chunk of bytes, each way, is held `latency` ± a
/// uniform `jitter` by a proxy in between, as production's 0.2 to 1 ms between machines would
/// hold it, where the loopback of a test machine costs tens of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub latency: Duration,
    pub jitter: Duration,
}

impl Link {
    /// A duration as the testbed's key writes it: whole milliseconds as `ms`, anything else in
    /// whole microseconds (`1ms`, `500us`, `1500us`).
    pub fn key_part(d: Duration) -> String {
        let us = d.as_micros();
        if us > 0 && us.is_multiple_of(1000) { format!("{}ms", us / 1000) } else { format!("{us}us") }
    }

    /// `0.5 ms each way` or `0.5 ms ± 0.1 ms each way`, for people.
    pub fn describe(&self) -> String {
        let ms = |d: Duration| {
            let text = format!("{:.3}", d.as_secs_f64() * 1000.0);
            format!("{} ms", text.trim_end_matches('0').trim_end_matches('.'))
        };
        if self.jitter.is_zero() {
            format!("{} each way", ms(self.latency))
        } else {
            format!("{} ± {} each way", ms(self.latency), ms(self.jitter))
        }
    }
}

/// Think time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Think {
    pub min: Duration,
    pub max: Duration,
}

impl<'de> Deserialize<'de> for Think {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Range([String; 2]),
        }
        let expected = "expected a duration like \"1s\" or a range like [\"500ms\", \"2s\"]";
        let raw = Raw::deserialize(d).map_err(|_| serde::de::Error::custom(expected))?;
        let (min, max) = match raw {
            Raw::One(s) => {
                let v = parse_duration(&s).map_err(serde::de::Error::custom)?;
                (v, v)
            }
            Raw::Range([a, b]) => {
                (parse_duration(&a).map_err(serde::de::Error::custom)?, parse_duration(&b).map_err(serde::de::Error::custom)?)
            }
        };
        if min > max {
            return Err(serde::de::Error::custom(format!(
                "think time range is reversed: {} is more than {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )));
        }
        Ok(Think { min, max })
    }
}

/// The HTTP version every request of a plan uses (`[defaults] http`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum HttpVersion {
    #[default]
    #[serde(rename = "http1")]
    Http1,
    #[serde(rename = "http2")]
    Http2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteKind {
    /// Latency and throughput under a load shape; verdict by SLOs and the baseline.
    #[default]
    Load,
    /// Steady load, a sudden jump, steady again: errors during the jump, recovery time after.
    Spike,
    /// Arrival rate raised in steps: the breaking point and how it breaks.
    Stress,
    /// Constant load for long: memory and latency trends (leaks).
    Soak,
    /// Services stopped and started during the run, with assertions.
    Chaos,
}

impl SuiteKind {
    /// The name written in `kind = "…"` and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            SuiteKind::Load => "load",
            SuiteKind::Spike => "spike",
            SuiteKind::Stress => "stress",
            SuiteKind::Soak => "soak",
            SuiteKind::Chaos => "chaos",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    ConstantVus,
    RampingVus,
    ConstantArrivalRate,
    RampingArrivalRate,
}

impl Executor {
    pub fn name(self) -> &'static str {
        match self {
            Executor::ConstantVus => "constant-vus",
            Executor::RampingVus => "ramping-vus",
            Executor::ConstantArrivalRate => "constant-arrival-rate",
            Executor::RampingArrivalRate => "ramping-arrival-rate",
        }
    }

    /// Open-model executors schedule starts independently of responses.
    pub fn is_open(self) -> bool {
        matches!(self, Executor::ConstantArrivalRate | Executor::RampingArrivalRate)
    }
}

/// Limits for one endpoint (or `"*"`). Durations are latencies from the scheduled start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub p50: Option<Dur>,
    pub p90: Option<Dur>,
    pub p95: Option<Dur>,
    pub p99: Option<Dur>,
    pub p999: Option<Dur>,
    pub max: Option<Dur>,
    /// Largest acceptable fraction of failed requests, 0..=1.
    pub error_rate: Option<f64>,
    /// Smallest acceptable throughput, requests per second.
    pub min_rps: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricThresholds {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub rps: Option<f64>,
    pub error_rate_points: Option<f64>,
    /// This endpoint's latency floor, over the plan's and the measured noise.
    pub floor: Option<Dur>,
}

/// A service of the environment: the app under test and the two it may depend on (which of
/// those a run starts: `EnvironmentSetup::starts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    App,
    Postgres,
    Redis,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::App, Service::Postgres, Service::Redis];

    /// `app`, `postgres`, `redis`: the plan's and the summaries' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::App => "app",
            Service::Postgres => "postgres",
            Service::Redis => "redis",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl PartialEq<&str> for Service {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
