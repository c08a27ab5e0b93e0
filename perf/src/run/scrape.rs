//! Reading the app's Prometheus endpoint: the series the plan names, before and after a suite.
//!
//! Hand-written on purpose: the gate needs "name{labels} value" lines for a handful of series
//! (prefix match on the metric name), which is ten lines over the text format; a client
//! library for the full exposition format (types, exemplars, timestamps) would add nothing.

use std::collections::BTreeMap;
use std::time::Duration;

/// Values of the series whose metric name starts with one of `prefixes`, keyed by the series
/// as written (name plus labels). Comments, malformed lines and non-numbers are skipped.
pub fn parse_series(text: &str, prefixes: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The series ends at the closing brace of the labels, or at the first blank.
        let series_end = match (line.find('{'), line.find(char::is_whitespace)) {
            (Some(brace), Some(ws)) if brace < ws => match line[brace..].find('}') {
                Some(close) => brace + close + 1,
                None => continue,
            },
            (_, Some(ws)) => ws,
            (_, None) => continue,
        };
        let (series, rest) = line.split_at(series_end);
        let name = series.split('{').next().unwrap_or(series);
        if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        let Some(value) = rest.split_whitespace().next() else { continue };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.insert(series.to_string(), value);
    }
    out
}

/// GETs `url` and parses the named series; `None` (with a logged warning) when the endpoint
/// does not answer 200 within a few seconds: metrics are context, never a reason to fail.
pub async fn scrape(client: &reqwest::Client, url: &str, prefixes: &[String]) -> Option<BTreeMap<String, f64>> {
    let response = match client.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot scrape {url}: {e}");
            return None;
        }
    };
    if !response.status().is_success() {
        tracing::warn!("cannot scrape {url}: status {}", response.status());
        return None;
    }
    let text = response.text().await.ok()?;
    Some(parse_series(&text, prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_named_series_with_labels_and_skips_the_rest() {
        let text = "# HELP refapp_cache_hits_total hits\n\
                    # TYPE refapp_cache_hits_total counter\n\
                    refapp_cache_hits_total 42\n\
                    refapp_db_pool{state=\"idle\"} 3\n\
                    refapp_db_pool{state=\"in use\"} 1 1700000000\n\
                    refapp_requests_total{route=\"health\"} 9\n\
                    refapp_breaker_state NaN\n\
                    refapp_broken{state=\"x\" 1\n\
                    refapp_cache_misses_total not-a-number\n";
        let prefixes = vec!["refapp_cache".to_string(), "refapp_db_pool".to_string(), "refapp_broken".to_string()];
        let got = parse_series(text, &prefixes);
        assert_eq!(got.get("refapp_cache_hits_total"), Some(&42.0));
        assert_eq!(got.get("refapp_db_pool{state=\"idle\"}"), Some(&3.0));
        assert_eq!(got.get("refapp_db_pool{state=\"in use\"}"), Some(&1.0));
        assert!(!got.contains_key("refapp_requests_total{route=\"health\"}"), "not a named series");
        assert!(!got.keys().any(|k| k.starts_with("refapp_broken")), "unterminated labels are skipped");
        assert!(!got.contains_key("refapp_cache_misses_total"), "a non-number is skipped");
        assert_eq!(got.len(), 3);
    }
}
