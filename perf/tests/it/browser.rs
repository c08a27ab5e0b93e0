//! The HTML report and the history site in a real browser: headless Chromium, driven over the
//! Chrome DevTools Protocol (CDP) by the small client below (JSON messages over one WebSocket,
//! through tokio-tungstenite). Each page is opened at a phone's width (390 px, mobile
//! emulation) and at a desktop's (1280 px), and must have:
//! - no console error, no uncaught exception, no error in the browser's log, and no request
//!   but the page's own file (self-contained: no fetch) and, for the report, the differential
//!   flame graph the run wrote beside it (an `<object>`: inferno's SVG runs its own script);
//! - every chart drawn: an `<svg>` of non-zero size holding data lines (plotters draws series
//!   as `<polyline>`s; a data line has 3 points or more, grid lines 2);
//! - the verdict and the per-endpoint table visible (report), the change point and its
//!   commit link visible (history page);
//! - the report's differential flame graph, opened by itself: every frame drawn, coloured by
//!   its change (red grew, blue shrank, grey unchanged), its search and zoom working;
//! - at 390 px: no horizontal overflow of the page, no text outside the screen or clipped
//!   (wide tables scroll inside their own box, which fits the screen).
//!
//! Needs Chromium (Debian: `apt-get install chromium`; `PERF_CHROMIUM` names another binary).
//! Without it the test says SKIPPED, unless `PERF_REQUIRE_BROWSER=1` (`.ci/run` sets it),
//! which makes that a failure. `PERF_BROWSER_SHOTS=DIR` also saves a screenshot of each page
//! and width there.
//!
//! Why not a CDP crate: chromiumoxide's generated protocol crate takes minutes to compile for
//! the five domains used here; the client is one WebSocket and a map of pending ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use perf::compare::compare_suite;
use perf::history::{self, NightRecord, SiteOptions};
use perf::plan::CompareRules;
use perf::summary::{self, Summary};
use perf::verdict::{BaselineSource, Confirmation, Headline, Report, RunFacts, SuiteReport};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Chromium binary, or `None` (then the test is skipped, or fails under
/// `PERF_REQUIRE_BROWSER=1`).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let named = std::env::var_os("PERF_CHROMIUM").filter(|v| !v.is_empty()).map(PathBuf::from);
    let found = named.or_else(|| {
        ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        })
    });
    match found {
        Some(p) if p.is_file() => Some(p),
        _ if std::env::var("PERF_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("{test}: PERF_REQUIRE_BROWSER=1 but no Chromium found (apt-get install chromium, or set PERF_CHROMIUM)")
        }
        _ => {
            eprintln!(
                "{test}: SKIPPED: no Chromium on PATH (apt-get install chromium, or set PERF_CHROMIUM; PERF_REQUIRE_BROWSER=1 makes this a failure)"
            );
            None
        }
    }
}

/// The report page and what it must show.
struct ReportPage {
    html: String,
    /// The verdict's words.
    words: String,
    endpoints: Vec<String>,
    /// The differential flame graphs written beside the report: (file name, SVG).
    graphs: Vec<(String, Vec<u8>)>,
}

/// The app's CPU profile of a run: `stacks` (folded stack, samples) over 1000 requests.
fn profile(stacks: &[(&str, u64)]) -> summary::Profile {
    let stacks: std::collections::BTreeMap<String, u64> = stacks.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    summary::Profile { hz: 99, requests: 1000, samples: stacks.values().sum(), stacks, ..summary::Profile::default() }
}

/// The report of the bundled quick fixture against the committed full-length baseline, each
/// with a CPU profile of the app (`busy` new in the run, `query` halved), and the report's
/// differential flame graphs (file name, SVG).
fn report_html() -> ReportPage {
    let mut head = summary::read(&root().join("fixtures/summaries/v1-baseline-quick.json")).unwrap();
    let mut base = summary::read(&root().join("results/baseline/local-2cpu-epyc-24g-link500us/baseline.json")).unwrap();
    base.profile = Some(profile(&[("refapp;tokio::runtime;handle;parse", 20), ("refapp;tokio::runtime;handle;query", 10)]));
    head.profile = Some(profile(&[
        ("refapp;tokio::runtime;handle;parse", 20),
        ("refapp;tokio::runtime;handle;query", 5),
        ("refapp;tokio::runtime;handle;track;busy", 40),
    ]));
    let comparison = compare_suite(Some(&base), &head, &CompareRules::default());
    let report = Report {
        facts: RunFacts::from_summary(&head),
        suites: vec![SuiteReport {
            summary: head.clone(),
            comparison: Some(comparison),
            baseline: BaselineSource::Committed { path: "results/baseline/local-2cpu-epyc-24g-link500us/baseline.json".into() },
            baseline_summary: Some(base),
            confirmation: Confirmation::NotRun,
            stored: None,
        }],
        invalid_reasons: Vec::new(),
    };
    let words = Headline::of(&report).words().to_string();
    ReportPage {
        html: perf::render::html(&report),
        words,
        endpoints: head.endpoints.keys().cloned().collect(),
        graphs: perf::render::flame_graphs(&report),
    }
}

/// A latency histogram with every value multiplied by `factor`, and its percentiles.
fn scaled(e: &mut summary::EndpointSummary, factor: f64) {
    if e.histogram.is_empty() {
        return;
    }
    let h = summary::hist::decode(&e.histogram).unwrap();
    let mut out = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for v in h.iter_recorded() {
        out.record_n(((v.value_iterated_to() as f64) * factor).max(1.0) as u64, v.count_at_value()).unwrap();
    }
    let q = |q: f64| Some(out.value_at_quantile(q) as f64 / 1000.0);
    (e.latency_ms.p50, e.latency_ms.p95, e.latency_ms.p99) = (q(0.5), q(0.95), q(0.99));
    e.histogram = summary::hist::encode(&out);
}

/// Twelve nights made of the fixture's summary, each a little faster or slower, `slots` 60%
/// slower from night 8: the history page of `baseline/slots`, with its change point's commit.
fn history_page(dir: &Path) -> (PathBuf, String) {
    let fixture: Summary = summary::read(&root().join("fixtures/summaries/v1-baseline-quick.json")).unwrap();
    let sha = |n: u32| format!("{:040x}", 0xabc0_u64 * 1000 + u64::from(n));
    let records: Vec<NightRecord> = (1..=12u32)
        .map(|n| {
            let mut s = fixture.clone();
            s.run.git.sha = Some(sha(n));
            s.run.started_at = format!("2026-11-{:02}T02:00:00Z", n);
            let drift = 1.0 + 0.03 * f64::from((n * 7) % 5) - 0.06;
            for (name, e) in s.endpoints.iter_mut() {
                scaled(e, if name == "slots" && n >= 8 { drift * 1.6 } else { drift });
            }
            NightRecord::from_summaries(&[s]).unwrap()
        })
        .collect();
    let trends = history::trends(&records, &CompareRules::default(), 30);
    let slots = trends.iter().find(|t| t.endpoint == "slots").unwrap();
    assert_eq!(slots.changes.len(), 1, "{:#?}", slots.changes);
    assert_eq!(slots.changes[0].sha, sha(8));
    let commit_url = SiteOptions::github("acme/shop").unwrap();
    let pages = history::site(&trends, &SiteOptions { commit_url: Some(commit_url), last: 30 });
    history::write_site(dir, &pages).unwrap();
    let page = dir.join(history::page_path(slots));
    (page, format!("https://github.com/acme/shop/commit/{}", sha(8)))
}

/// Everything the page says about itself, in one evaluation.
const INSPECT: &str = r#"(() => {
  // The layout width; a mobile browser zooms out (innerWidth grows) when content is wider.
  const vw = document.documentElement.clientWidth;
  const visible = el => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none'; };
  const inside = el => { const r = el.getBoundingClientRect(); return r.left >= -1 && r.right <= vw + 1; };
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const r = svg.getBoundingClientRect();
    const lines = [...svg.querySelectorAll('polyline, path')].filter(p => {
      const pts = (p.getAttribute('points') || p.getAttribute('d') || '').trim().split(/\s+/).filter(x => x.length);
      const box = p.getBBox();
      return pts.length >= 3 && (box.width > 0 || box.height > 0);
    }).length;
    return { width: r.width, height: r.height, lines, inside: inside(svg) };
  });
  const cut = [];
  for (const el of document.querySelectorAll('h1,h2,h3,h4,p,li,figcaption,nav,summary,figure,section,details')) {
    if (!visible(el) || el.closest('.scroll')) continue;
    if (!inside(el)) cut.push(el.tagName + ' outside the screen: ' + el.innerText.slice(0, 80));
    const cs = getComputedStyle(el);
    if (['hidden', 'clip'].includes(cs.overflowX) && el.scrollWidth > el.clientWidth + 1) cut.push(el.tagName + ' clipped: ' + el.innerText.slice(0, 80));
  }
  const tables = [...document.querySelectorAll('table')].map(t => {
    const box = t.closest('.scroll') || t;
    const cs = getComputedStyle(box);
    const fits = inside(box);
    const scrolls = ['auto', 'scroll'].includes(cs.overflowX);
    return { head: [...t.querySelectorAll('th')].map(th => th.innerText.trim()),
             text: t.innerText, visible: visible(t), fits, scrolls,
             firstColumnInside: [...t.querySelectorAll('tbody tr td:first-child')].every(inside) };
  });
  const verdict = document.querySelector('.verdict');
  return {
    vw, innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, bodyScrollWidth: document.body.scrollWidth,
    charts, cut, tables,
    verdict: verdict ? { text: verdict.innerText.trim(), visible: visible(verdict), inside: inside(verdict) } : null,
    links: [...document.querySelectorAll('a')].filter(a => visible(a)).map(a => a.href),
  };
})()"#;

/// What a differential flame graph (inferno's SVG and its script) shows and does: its frames
/// (function, fill colour, width), then what its own search and zoom make of the `busy` frame.
const FLAME: &str = r#"(() => {
  const frames = [...document.querySelectorAll('#frames > g')].map(g => {
    const rect = g.querySelector('rect');
    return { title: g.querySelector('title').textContent, fill: rect.getAttribute('fill'), width: rect.getBBox().width };
  });
  const svg = document.documentElement.getBoundingClientRect();
  search('busy');
  const matched = document.getElementById('matched').textContent;
  const busy = [...document.querySelectorAll('#frames > g')].find(g => g.querySelector('title').textContent.startsWith('busy'));
  zoom(busy);
  const zoomedWidth = busy.querySelector('rect').getBBox().width;
  const unzoomShown = !document.getElementById('unzoom').classList.contains('hide');
  return { frames, width: svg.width, height: svg.height, matched, zoomedWidth, unzoomShown };
})()"#;

/// An event from the browser: its method, parameters and the page session it belongs to.
struct Event {
    method: String,
    params: Value,
    session: Option<String>,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// One DevTools connection to the browser. Commands are sent with an id and answered by a
/// message with the same id; everything else is an event.
struct Cdp {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    events: mpsc::UnboundedReceiver<Event>,
    next_id: u64,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect to the DevTools WebSocket");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let (events_tx, events) = mpsc::unbounded_channel();
        let waiting = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let v: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
                if let Some(id) = v["id"].as_u64() {
                    let answer = match v.get("error") {
                        Some(e) => Err(e.to_string()),
                        None => Ok(v["result"].clone()),
                    };
                    if let Some(tx) = waiting.lock().unwrap().remove(&id) {
                        let _ = tx.send(answer);
                    }
                } else if let Some(method) = v["method"].as_str() {
                    let session = v["sessionId"].as_str().map(str::to_string);
                    let _ = events_tx.send(Event { method: method.to_string(), params: v["params"].clone(), session });
                }
            }
        });
        Cdp { out, pending, events, next_id: 0 }
    }

    /// Sends a command (to a page's session when given) and waits for its answer.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.out.send(Message::text(msg.to_string())).expect("the DevTools connection is open");
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(Ok(v))) => v,
            Ok(Ok(Err(e))) => panic!("{method}: {e}"),
            _ => panic!("{method}: no answer from the browser within 30 s"),
        }
    }

    /// Waits for an event of a session, keeping the others it reads in `seen`.
    async fn wait_for(&mut self, session: &str, method: &str, seen: &mut Vec<Event>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {method} within 30 s"))
                .expect("the browser closed the connection");
            let found = e.method == method && e.session.as_deref() == Some(session);
            seen.push(e);
            if found {
                return;
            }
        }
    }

    /// Every event already received.
    fn drain(&mut self, seen: &mut Vec<Event>) {
        while let Ok(e) = self.events.try_recv() {
            seen.push(e);
        }
    }
}

/// Headless Chromium on a free DevTools port, with its own profile; killed when dropped.
struct Chromium {
    child: tokio::process::Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch(binary: &Path) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-extensions",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Chromium says where its DevTools listen on standard error.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_string());
                }
                said.push(line);
            }
            None
        })
        .await;
        let ws_url = match found {
            Ok(Some(url)) => url,
            _ => panic!("{} did not open its DevTools port within 60 s; it said:\n{}", binary.display(), said.join("\n")),
        };
        // Keep reading standard error so that Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Chromium { child, ws_url, _profile: profile }
    }
}

/// Errors the page caused, and the URLs it requested.
#[derive(Default)]
struct Seen {
    errors: Vec<String>,
    requests: Vec<String>,
}

impl Seen {
    fn of(session: &str, events: &[Event]) -> Seen {
        let mut seen = Seen::default();
        for e in events.iter().filter(|e| e.session.as_deref() == Some(session)) {
            let p = &e.params;
            match e.method.as_str() {
                "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                    let args: Vec<String> = p["args"].as_array().into_iter().flatten().map(|a| a["value"].to_string()).collect();
                    seen.errors.push(format!("console.{}: {}", p["type"].as_str().unwrap_or(""), args.join(" ")));
                }
                "Runtime.exceptionThrown" => seen.errors.push(format!("exception: {}", p["exceptionDetails"])),
                "Log.entryAdded" if p["entry"]["level"] == "error" => seen.errors.push(format!("log: {}", p["entry"]["text"])),
                "Network.requestWillBeSent" => seen.requests.push(p["request"]["url"].as_str().unwrap_or_default().to_string()),
                _ => {}
            }
        }
        seen
    }
}

/// Opens `url` in a new tab at `width`, returns what [`INSPECT`] found and what the page did.
async fn open(cdp: &mut Cdp, url: &str, width: i64, mobile: bool) -> (Value, Seen) {
    open_with(cdp, url, width, mobile, INSPECT).await
}

/// Opens `url` in a new tab at `width`, returns what `script` found and what the page did.
async fn open_with(cdp: &mut Cdp, url: &str, width: i64, mobile: bool, script: &str) -> (Value, Seen) {
    let target = cdp.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
    let target_id = target["targetId"].as_str().unwrap().to_string();
    let attached = cdp.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true })).await;
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(session.as_str());
    for domain in ["Page", "Runtime", "Log", "Network"] {
        cdp.call(s, &format!("{domain}.enable"), json!({})).await;
    }
    let metrics = json!({ "width": width, "height": 844, "deviceScaleFactor": if mobile { 3 } else { 1 }, "mobile": mobile });
    cdp.call(s, "Emulation.setDeviceMetricsOverride", metrics).await;
    let mut events = Vec::new();
    cdp.drain(&mut events);
    let nav = cdp.call(s, "Page.navigate", json!({ "url": url })).await;
    assert!(nav.get("errorText").is_none(), "{url}: {nav}");
    cdp.wait_for(&session, "Page.loadEventFired", &mut events).await;
    let facts = cdp.call(s, "Runtime.evaluate", json!({ "expression": script, "returnByValue": true })).await;
    assert!(facts.get("exceptionDetails").is_none(), "the inspection script failed: {facts}");
    let facts = facts["result"]["value"].clone();
    // Late console messages and log entries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(dir) = std::env::var_os("PERF_BROWSER_SHOTS").filter(|v| !v.is_empty()) {
        let name = format!("{}-{width}.png", url.rsplit('/').next().unwrap_or("page").trim_end_matches(".html"));
        let shot = cdp.call(s, "Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
    cdp.drain(&mut events);
    cdp.call(None, "Target.closeTarget", json!({ "targetId": target_id })).await;
    (facts, Seen::of(&session, &events))
}

/// What every page must satisfy at `width`. It loads nothing but itself and the files the
/// run wrote beside it that it names in `beside` (the report's flame graphs).
fn check_page(what: &str, url: &str, beside: &[String], width: i64, facts: &Value, seen: &Seen) {
    let ctx = format!("{what} at {width} px");
    assert!(seen.errors.is_empty(), "{ctx}: errors: {:#?}", seen.errors);
    let foreign: Vec<&String> = seen.requests.iter().filter(|u| u.as_str() != url && !beside.contains(u)).collect();
    assert!(foreign.is_empty(), "{ctx}: requests beyond the page itself: {foreign:?}");
    let charts = facts["charts"].as_array().unwrap();
    assert!(!charts.is_empty(), "{ctx}: no chart");
    for (i, c) in charts.iter().enumerate() {
        assert!(c["width"].as_f64().unwrap() > 100.0 && c["height"].as_f64().unwrap() > 30.0, "{ctx}: chart {i} not drawn: {c}");
        assert!(c["lines"].as_u64().unwrap() >= 1, "{ctx}: chart {i} has no data line: {c}");
        assert!(c["inside"].as_bool().unwrap(), "{ctx}: chart {i} is wider than the screen: {c}");
    }
    let vw = facts["vw"].as_f64().unwrap();
    // A desktop window keeps room for its vertical scroll bar (15 px here); a phone's overlays.
    assert!(vw <= width as f64 && vw >= width as f64 - 20.0, "{ctx}: layout width {vw}");
    assert_eq!(facts["innerWidth"].as_f64().unwrap(), width as f64, "{ctx}: zoomed out to fit wide content: {facts}");
    assert!(facts["scrollWidth"].as_f64().unwrap() <= vw, "{ctx}: the page scrolls sideways: {facts}");
    assert!(facts["bodyScrollWidth"].as_f64().unwrap() <= vw, "{ctx}: the body overflows: {facts}");
    assert!(facts["cut"].as_array().unwrap().is_empty(), "{ctx}: text cut: {}", facts["cut"]);
    for t in facts["tables"].as_array().unwrap() {
        assert!(t["fits"].as_bool().unwrap(), "{ctx}: a table's box is wider than the screen: {}", t["head"]);
        assert!(t["scrolls"].as_bool().unwrap(), "{ctx}: a table cannot scroll inside its box: {}", t["head"]);
    }
}

fn table_with<'a>(facts: &'a Value, column: &str) -> &'a Value {
    facts["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["head"].as_array().unwrap().iter().any(|h| h == column))
        .unwrap_or_else(|| panic!("no table with a column {column}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_history_pages_in_chromium() {
    let Some(chromium) = chromium_or_skip("report_and_history_pages_in_chromium") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ReportPage { html: report, words, endpoints, graphs } = report_html();
    let report_path = dir.path().join("report.html");
    std::fs::write(&report_path, &report).unwrap();
    // Written beside the report, as the gate does (run/outputs.rs).
    let graph_names: Vec<&str> = graphs.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(graph_names, ["baseline.profile-diff.svg"], "a flame graph for the suite whose CPU per request moved");
    for (name, svg) in &graphs {
        std::fs::write(dir.path().join(name), svg).unwrap();
    }
    let graph_path = dir.path().join(&graphs[0].0);
    let (history_path, commit_link) = history_page(&dir.path().join("site"));

    let browser = Chromium::launch(&chromium).await;
    let mut cdp = Cdp::connect(&browser.ws_url).await;
    let url = |p: &Path| format!("file://{}", p.display());
    for (width, mobile) in [(390, true), (1280, false)] {
        let report_url = url(&report_path);
        let (facts, seen) = open(&mut cdp, &report_url, width, mobile).await;
        let graph_url = url(&graph_path);
        check_page("report.html", &report_url, std::slice::from_ref(&graph_url), width, &facts, &seen);
        assert!(seen.requests.contains(&graph_url), "report at {width} px: the flame graph is shown in the page: {:?}", seen.requests);
        let verdict = &facts["verdict"];
        assert_eq!(verdict["text"], words, "report at {width} px: {verdict}");
        assert!(verdict["visible"].as_bool().unwrap() && verdict["inside"].as_bool().unwrap(), "report at {width} px: {verdict}");
        let table = table_with(&facts, "Endpoint");
        assert!(table["visible"].as_bool().unwrap() && table["firstColumnInside"].as_bool().unwrap(), "{table}");
        for e in &endpoints {
            assert!(table["text"].as_str().unwrap().contains(e.as_str()), "report at {width} px: {e} not in the endpoint table");
        }
        // The CPU section names the new function and links its flame graph.
        let cpu = table_with(&facts, "Function (self time)");
        assert!(cpu["visible"].as_bool().unwrap() && cpu["text"].as_str().unwrap().contains("busy"), "report at {width} px: {cpu}");
        assert!(
            facts["links"].as_array().unwrap().iter().any(|l| l == graph_url.as_str()),
            "report at {width} px: no visible link to {graph_url}"
        );

        // The flame graph itself: drawn, coloured by change, its search and zoom working.
        let (flame, seen) = open_with(&mut cdp, &graph_url, width, mobile, FLAME).await;
        assert!(seen.errors.is_empty(), "flame graph at {width} px: errors: {:#?}", seen.errors);
        assert!(seen.requests.iter().all(|u| *u == graph_url), "flame graph at {width} px: requests beyond itself: {:?}", seen.requests);
        assert!(
            flame["width"].as_f64().unwrap() > 300.0 && flame["height"].as_f64().unwrap() > 100.0,
            "flame graph at {width} px: {flame}"
        );
        let frames = flame["frames"].as_array().unwrap();
        let frame = |name: &str| {
            frames
                .iter()
                .find(|f| f["title"].as_str().unwrap().starts_with(&format!("{name} (")))
                .unwrap_or_else(|| panic!("flame graph at {width} px: no frame {name}: {frames:?}"))
        };
        let rgb = |f: &Value| -> Vec<u32> {
            let fill = f["fill"].as_str().unwrap();
            fill.trim_start_matches("rgb(").trim_end_matches(')').split(',').map(|c| c.trim().parse().unwrap()).collect()
        };
        for name in ["refapp", "handle", "parse", "query", "busy"] {
            assert!(frame(name)["width"].as_f64().unwrap() > 0.0, "flame graph at {width} px: {name} is drawn: {frames:?}");
        }
        let (busy, query, parse) = (rgb(frame("busy")), rgb(frame("query")), rgb(frame("parse")));
        assert!(busy[0] > busy[2], "busy grew: red, not {busy:?}");
        assert!(query[2] > query[0], "query shrank: blue, not {query:?}");
        assert!(parse[0] == parse[1] && parse[1] == parse[2], "parse did not change: neutral, not {parse:?}");
        // busy is 40 of the run's 65 samples: the search matches 61.5%.
        assert_eq!(flame["matched"], "Matched: 61.5%", "flame graph at {width} px: {flame}");
        assert!(flame["unzoomShown"].as_bool().unwrap(), "zooming offers the way back: {flame}");
        assert!(
            flame["zoomedWidth"].as_f64().unwrap() > frame("busy")["width"].as_f64().unwrap() * 1.3,
            "zoomed, busy fills the width: {flame}"
        );

        let history_url = url(&history_path);
        let (facts, seen) = open(&mut cdp, &history_url, width, mobile).await;
        check_page("history page", &history_url, &[], width, &facts, &seen);
        assert_eq!(facts["charts"].as_array().unwrap().len(), 2, "history page: latency and throughput charts");
        let changes = table_with(&facts, "What moved");
        assert!(changes["visible"].as_bool().unwrap() && changes["text"].as_str().unwrap().contains("regression"), "{changes}");
        assert!(facts["links"].as_array().unwrap().iter().any(|l| l == commit_link.as_str()), "no visible link to {commit_link}");
        assert!(table_with(&facts, "p95 ms")["visible"].as_bool().unwrap());
    }
    // Closing answers by closing the connection; the child is killed if it lingers.
    let _ = cdp.out.send(Message::text(json!({ "id": 0, "method": "Browser.close" }).to_string()));
    let mut child = browser.child;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
