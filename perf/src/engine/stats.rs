//! Statistics while the load runs: sharded accumulators the virtual users record into, and
//! the collector that closes a window each second and merges everything at the end.
//!
//! Memory is fixed by the plan, never by the run length: per endpoint and shard there are
//! three HDR histograms (latency, service time, and the current window's latency, reset each
//! second) and a few counters. Users record into shard `user % shards` under a short lock,
//! so contention stays low without a histogram per user.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// One second of the whole suite, as the engine measured it (seconds from the measured start).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub t: u32,
    pub requests: u64,
    pub errors: u64,
    pub active_vus: u32,
    /// Latency percentiles in ms; `None` when the second had no request.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One second of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointWindow {
    pub t: u32,
    pub requests: u64,
    pub errors: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Why a request failed. `Status` and `Capture` failures still have a latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No connection could be made (refused, unreachable, TLS handshake, connect timeout).
    Connect,
    /// The response did not complete within the request's timeout.
    Timeout,
    /// The connection broke or the response was malformed after the request went out.
    Body,
    /// A status the plan does not expect.
    Status,
    /// An expected 2xx whose body did not carry what the request captures.
    Capture,
    /// WebSocket: the server closed the connection (or it broke) while the user held it.
    Dropped,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] =
        [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Body, ErrorKind::Status, ErrorKind::Capture, ErrorKind::Dropped];

    /// The name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Body => "body",
            ErrorKind::Status => "status",
            ErrorKind::Capture => "capture",
            ErrorKind::Dropped => "dropped",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A histogram of microseconds with 3 significant digits that grows to the largest value
/// recorded (bounded by timeouts and run length, so its size is too).
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

/// Records a value, growing the histogram as needed. (`saturating_record` would clamp to the
/// current range instead of growing: a 1 s stall would read as a few milliseconds.)
fn put(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub request: usize,
    /// From the scheduled start (open model) or the actual start; `None` for transport errors.
    pub latency_us: Option<u64>,
    pub service_us: Option<u64>,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

struct EndpointAcc {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    requests: u64,
    by_kind: [u64; ErrorKind::ALL.len()],
    /// WebSocket connections: messages received.
    ws_messages: u64,
    statuses: Vec<(u16, u64)>,
    unexpected: Vec<(u16, u64)>,
    bytes_sent: u64,
    bytes_received: u64,
    window_latency: Histogram<u64>,
    window_requests: u64,
    window_errors: u64,
}

impl EndpointAcc {
    fn new() -> EndpointAcc {
        EndpointAcc {
            latency: new_histogram(),
            service: new_histogram(),
            requests: 0,
            by_kind: [0; ErrorKind::ALL.len()],
            ws_messages: 0,
            statuses: Vec::new(),
            unexpected: Vec::new(),
            bytes_sent: 0,
            bytes_received: 0,
            window_latency: new_histogram(),
            window_requests: 0,
            window_errors: 0,
        }
    }
}

fn bump(list: &mut Vec<(u16, u64)>, status: u16) {
    match list.iter_mut().find(|(s, _)| *s == status) {
        Some((_, n)) => *n += 1,
        None => list.push((status, 1)),
    }
}

struct Shard {
    endpoints: Vec<EndpointAcc>,
    /// Every finished request, warm-up included: what the progress display shows.
    live_requests: u64,
    live_errors: u64,
}

/// Where virtual users record samples.
pub(crate) struct Recorder {
    shards: Vec<Mutex<Shard>>,
}

impl Recorder {
    pub fn new(endpoints: usize, shards: usize) -> Recorder {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard { endpoints: (0..endpoints).map(|_| EndpointAcc::new()).collect(), live_requests: 0, live_errors: 0 })
            })
            .collect();
        Recorder { shards }
    }

    /// Records a sample; `measured` is false for requests that started in the warm-up,
    /// which count only for the live display.
    pub fn record(&self, shard: usize, s: &Sample, measured: bool) {
        let mut shard = self.shards[shard % self.shards.len()].lock();
        shard.live_requests += 1;
        shard.live_errors += s.error.is_some() as u64;
        if !measured {
            return;
        }
        let ep = &mut shard.endpoints[s.request];
        ep.requests += 1;
        ep.window_requests += 1;
        ep.bytes_sent += s.bytes_sent;
        ep.bytes_received += s.bytes_received;
        if let Some(kind) = s.error {
            ep.by_kind[kind.index()] += 1;
            ep.window_errors += 1;
        }
        if let Some(status) = s.status {
            bump(&mut ep.statuses, status);
            if s.error == Some(ErrorKind::Status) {
                bump(&mut ep.unexpected, status);
            }
        }
        if let Some(us) = s.latency_us {
            let us = us.max(1);
            put(&mut ep.latency, us);
            put(&mut ep.window_latency, us);
        }
        if let Some(us) = s.service_us {
            put(&mut ep.service, us.max(1));
        }
    }
}

impl Recorder {
    /// A message arrived on a WebSocket connection of endpoint `endpoint`.
    pub fn record_ws_message(&self, shard: usize, endpoint: usize, measured: bool) {
        if measured {
            self.shards[shard % self.shards.len()].lock().endpoints[endpoint].ws_messages += 1;
        }
    }

    /// The server dropped a WebSocket connection of endpoint `endpoint`: an error of the
    /// connection (already counted as a request when it was opened), not a new request.
    pub fn record_ws_drop(&self, shard: usize, endpoint: usize, measured: bool) {
        let mut shard = self.shards[shard % self.shards.len()].lock();
        shard.live_errors += 1;
        if measured {
            let ep = &mut shard.endpoints[endpoint];
            ep.by_kind[ErrorKind::Dropped.index()] += 1;
            ep.window_errors += 1;
        }
    }
}

/// Users in an iteration (closed model: alive), with the peak since the last window.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    active: AtomicU32,
    peak: AtomicU32,
}

impl Gauge {
    pub fn inc(&self) {
        let n = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn current(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// The most users active at once since the previous call.
    pub fn take_peak(&self) -> u32 {
        let now = self.current();
        self.peak.swap(now, Ordering::Relaxed).max(now)
    }
}

/// Totals of one endpoint over the measured part.
#[derive(Debug, Clone)]
pub struct EndpointResult {
    pub name: String,
    pub requests: u64,
    /// Errors by kind (only kinds that occurred).
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// All responses by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses with a status the plan does not expect.
    pub unexpected_statuses: BTreeMap<u16, u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Latency in µs (from the scheduled start in the open model).
    pub latency: Histogram<u64>,
    /// Service time in µs (from the actual start).
    pub service: Histogram<u64>,
    pub windows: Vec<EndpointWindow>,
    /// The measured part in a few stretches of equal length, each with its latencies.
    pub segments: Vec<Segment>,
    /// WebSocket connections: messages received (matched or not).
    pub ws_messages: u64,
    /// `ws_connect` or `ws_message` for a WebSocket endpoint; `None` for HTTP.
    pub kind: Option<&'static str>,
}

/// Whole windows of one endpoint, taken together: the units the comparison resamples.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Seconds from the measured start to its first window.
    pub t: u32,
    /// Windows (seconds) it covers.
    pub seconds: u32,
    pub requests: u64,
    pub errors: u64,
    /// Its latencies (µs) as `(value, count)`, ascending: the recorded values of an HDR
    /// histogram, which is all a summary needs to encode it again exactly.
    pub latency: Vec<(u64, u64)>,
}

impl EndpointResult {
    pub fn errors(&self) -> u64 {
        self.errors_by_kind.values().sum()
    }
}

/// What the collector reports when a second closes: sent to live observers.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    pub suite: Window,
    /// Endpoints with at least one request in the window, by name.
    pub endpoints: Vec<(String, EndpointWindow)>,
}

fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

/// Closes windows and merges the shards; owned by the run's ticker.
pub(crate) struct Collector {
    names: Vec<String>,
    endpoint_windows: Vec<Vec<EndpointWindow>>,
    windows: Vec<Window>,
    scratch: Vec<Histogram<u64>>,
    suite_scratch: Histogram<u64>,
    live_seen: (u64, u64),
    /// Windows per segment, and the segment being filled.
    segment_s: u32,
    open: OpenSegment,
    segments: Vec<Vec<Segment>>,
}

/// The segment being filled, per endpoint.
struct OpenSegment {
    t: u32,
    windows: u32,
    latency: Vec<Histogram<u64>>,
    requests: Vec<u64>,
    errors: Vec<u64>,
}

impl Collector {
    /// A collector of `names`' windows, grouping every `segment_s` windows into a segment.
    pub fn new(names: Vec<String>, segment_s: u32) -> Collector {
        let n = names.len();
        Collector {
            names,
            endpoint_windows: vec![Vec::new(); n],
            windows: Vec::new(),
            scratch: (0..n).map(|_| new_histogram()).collect(),
            suite_scratch: new_histogram(),
            live_seen: (0, 0),
            segment_s: segment_s.max(1),
            open: OpenSegment {
                t: 0,
                windows: 0,
                latency: (0..n).map(|_| new_histogram()).collect(),
                requests: vec![0; n],
                errors: vec![0; n],
            },
            segments: vec![Vec::new(); n],
        }
    }

    /// Closes the open segment (when it holds a window) into every endpoint's list.
    fn close_segment(&mut self) {
        let open = &mut self.open;
        if open.windows == 0 {
            return;
        }
        for (i, list) in self.segments.iter_mut().enumerate() {
            let latency = open.latency[i].iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
            list.push(Segment { t: open.t, seconds: open.windows, requests: open.requests[i], errors: open.errors[i], latency });
            open.latency[i].reset();
            open.requests[i] = 0;
            open.errors[i] = 0;
        }
        open.t += open.windows;
        open.windows = 0;
    }

    /// Requests and errors finished (warm-up included) since the previous call.
    pub fn live(&mut self, rec: &Recorder) -> (u64, u64) {
        let (mut r, mut e) = (0, 0);
        for s in &rec.shards {
            let s = s.lock();
            r += s.live_requests;
            e += s.live_errors;
        }
        let delta = (r - self.live_seen.0, e - self.live_seen.1);
        self.live_seen = (r, e);
        delta
    }

    /// Closes window `t` (seconds from the measured start): takes what the shards gathered
    /// since the previous close and resets their window parts.
    pub fn close_window(&mut self, rec: &Recorder, t: u32, active_vus: u32) -> WindowReport {
        let n = self.names.len();
        let mut requests = vec![0u64; n];
        let mut errors = vec![0u64; n];
        for shard in &rec.shards {
            let mut shard = shard.lock();
            for (i, ep) in shard.endpoints.iter_mut().enumerate() {
                if ep.window_requests == 0 && ep.window_errors == 0 {
                    continue;
                }
                requests[i] += ep.window_requests;
                errors[i] += ep.window_errors;
                ep.window_requests = 0;
                ep.window_errors = 0;
                if !ep.window_latency.is_empty() {
                    let _ = self.scratch[i].add(&ep.window_latency);
                    ep.window_latency.reset();
                }
            }
        }
        let mut report_eps = Vec::new();
        for i in 0..n {
            if requests[i] == 0 && errors[i] == 0 {
                continue;
            }
            let h = &self.scratch[i];
            let w = EndpointWindow { t, requests: requests[i], errors: errors[i], p50: ms(h, 0.50), p95: ms(h, 0.95), p99: ms(h, 0.99) };
            let _ = self.suite_scratch.add(h);
            let _ = self.open.latency[i].add(h);
            self.open.requests[i] += requests[i];
            self.open.errors[i] += errors[i];
            self.scratch[i].reset();
            self.endpoint_windows[i].push(w.clone());
            report_eps.push((self.names[i].clone(), w));
        }
        let h = &self.suite_scratch;
        let suite = Window {
            t,
            requests: requests.iter().sum(),
            errors: errors.iter().sum(),
            active_vus,
            p50: ms(h, 0.50),
            p95: ms(h, 0.95),
            p99: ms(h, 0.99),
        };
        self.suite_scratch.reset();
        self.windows.push(suite.clone());
        self.open.windows += 1;
        if self.open.windows >= self.segment_s {
            self.close_segment();
        }
        WindowReport { suite, endpoints: report_eps }
    }

    /// Merges the shards into per-endpoint totals. Call after the last window closed.
    pub fn finish(mut self, rec: &Recorder) -> (Vec<EndpointResult>, Vec<Window>) {
        self.close_segment();
        let mut out: Vec<EndpointResult> = self
            .names
            .into_iter()
            .zip(self.endpoint_windows)
            .zip(self.segments)
            .map(|((name, windows), segments)| EndpointResult {
                name,
                requests: 0,
                errors_by_kind: BTreeMap::new(),
                statuses: BTreeMap::new(),
                unexpected_statuses: BTreeMap::new(),
                bytes_sent: 0,
                bytes_received: 0,
                latency: new_histogram(),
                service: new_histogram(),
                windows,
                segments,
                ws_messages: 0,
                kind: None,
            })
            .collect();
        for shard in &rec.shards {
            let shard = shard.lock();
            for (acc, res) in shard.endpoints.iter().zip(out.iter_mut()) {
                res.requests += acc.requests;
                for kind in ErrorKind::ALL {
                    let n = acc.by_kind[kind.index()];
                    if n > 0 {
                        *res.errors_by_kind.entry(kind).or_default() += n;
                    }
                }
                for &(s, n) in &acc.statuses {
                    *res.statuses.entry(s).or_default() += n;
                }
                for &(s, n) in &acc.unexpected {
                    *res.unexpected_statuses.entry(s).or_default() += n;
                }
                res.bytes_sent += acc.bytes_sent;
                res.bytes_received += acc.bytes_received;
                res.ws_messages += acc.ws_messages;
                let _ = res.latency.add(&acc.latency);
                let _ = res.service.add(&acc.service);
            }
        }
        (out, self.windows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(request: usize, latency_ms: u64, error: Option<ErrorKind>, status: Option<u16>) -> Sample {
        Sample {
            request,
            latency_us: status.map(|_| latency_ms * 1000),
            service_us: status.map(|_| latency_ms * 1000),
            status,
            error,
            bytes_sent: 10,
            bytes_received: 20,
        }
    }

    #[test]
    fn windows_add_up_to_totals_and_warmup_is_left_out() {
        let rec = Recorder::new(2, 3);
        let mut col = Collector::new(vec!["a".into(), "b".into()], 2);
        rec.record(0, &sample(0, 5, None, Some(200)), false);
        for i in 0..10 {
            rec.record(i, &sample(0, 10 + i as u64, None, Some(200)), true);
        }
        rec.record(1, &sample(1, 3, Some(ErrorKind::Status), Some(500)), true);
        let w0 = col.close_window(&rec, 0, 4);
        assert_eq!(w0.suite.requests, 11);
        assert_eq!(w0.suite.errors, 1);
        assert_eq!(w0.suite.active_vus, 4);
        assert_eq!(w0.endpoints.len(), 2);
        rec.record(2, &sample(1, 1, Some(ErrorKind::Connect), None), true);
        let w1 = col.close_window(&rec, 1, 1);
        assert_eq!((w1.suite.requests, w1.suite.errors), (1, 1));
        assert_eq!(w1.suite.p50, None, "a transport error has no latency");
        let w2 = col.close_window(&rec, 2, 0);
        assert_eq!(w2.suite.requests, 0);
        assert_eq!(col.live(&rec), (13, 2));
        let (eps, windows) = col.finish(&rec);
        assert_eq!(windows.len(), 3);
        let total: u64 = eps.iter().map(|e| e.requests).sum();
        assert_eq!(total, windows.iter().map(|w| w.requests).sum::<u64>());
        assert_eq!(eps[0].requests, 10);
        assert_eq!(eps[0].latency.len(), 10);
        assert_eq!(eps[0].latency.max() / 1000, 19);
        // Windows 0-1 and 2 (the last, shorter) make the segments; they hold every request.
        let segs: Vec<(u32, u32, u64, u64)> = eps[1].segments.iter().map(|s| (s.t, s.seconds, s.requests, s.errors)).collect();
        assert_eq!(segs, vec![(0, 2, 2, 2), (2, 1, 0, 0)]);
        assert_eq!(eps[0].segments[0].latency.iter().map(|(_, n)| n).sum::<u64>(), 10);
        assert_eq!(eps[1].requests, 2);
        assert_eq!(eps[1].errors(), 2);
        assert_eq!(eps[1].unexpected_statuses.get(&500), Some(&1));
        assert_eq!(eps[1].errors_by_kind.get(&ErrorKind::Connect), Some(&1));
        assert_eq!(eps[1].latency.len(), 1);
        assert_eq!(eps[0].bytes_sent, 100);
        assert_eq!(eps[0].windows.len(), 1);
        assert_eq!(eps[1].windows.iter().map(|w| w.requests).sum::<u64>(), 2);
    }

    #[test]
    fn large_values_grow_the_histogram_instead_of_clamping() {
        let rec = Recorder::new(1, 1);
        rec.record(0, &sample(0, 1, None, Some(200)), true);
        rec.record(0, &sample(0, 7_000, None, Some(200)), true);
        let (eps, _) = Collector::new(vec!["a".into()], 5).finish(&rec);
        assert_eq!(eps[0].latency.max() / 1_000_000, 7);
        assert_eq!(eps[0].service.max() / 1_000_000, 7);
    }

    #[test]
    fn gauge_reports_the_peak_of_each_window() {
        let g = Gauge::default();
        g.inc();
        g.inc();
        g.inc();
        g.dec();
        g.dec();
        assert_eq!(g.take_peak(), 3);
        assert_eq!(g.take_peak(), 1);
    }
}
