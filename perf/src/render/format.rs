//! Number formatting and escaping shared by the renderers.
//!
//! Escaping is written here rather than taken from a crate: it is five characters for HTML and
//! a dozen for Markdown, and the Markdown rules are GitHub's table rules, which no escaping
//! crate targets.

use crate::compare::{Metric, MetricComparison};

/// Milliseconds with precision that suits the size: `0.412`, `12.34`, `123.4`, `1234`.
pub fn ms(v: f64) -> String {
    let a = v.abs();
    if a < 1.0 {
        format!("{v:.3}")
    } else if a < 100.0 {
        format!("{v:.2}")
    } else if a < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

pub fn opt_ms(v: Option<f64>) -> String {
    v.map(ms).unwrap_or_else(|| "-".to_string())
}

pub fn rps(v: f64) -> String {
    if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// A percentage already in percent: `0.25%`.
pub fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

/// A metric's value with its unit, or `-`.
pub fn value(metric: Metric, v: Option<f64>) -> String {
    match (metric, v) {
        (_, None) => "-".to_string(),
        (Metric::Rps, Some(v)) => format!("{} req/s", rps(v)),
        (Metric::ErrorRate, Some(v)) => pct(v),
        (_, Some(v)) => format!("{} ms", ms(v)),
    }
}

/// The threshold as written in the plan: `20%` or `1.00 pt`.
pub fn threshold(m: &MetricComparison) -> String {
    match m.metric {
        Metric::ErrorRate => format!("{:.2} pt", m.threshold),
        _ => format!("{:.0}%", m.threshold * 100.0),
    }
}

/// An SLO's value in its unit: latency in ms, `error_rate` (a fraction) in percent, `min_rps`
/// in req/s.
pub fn slo_value(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" => pct(v * 100.0),
        "min_rps" => format!("{} req/s", rps(v)),
        _ => format!("{} ms", ms(v)),
    }
}

/// `p99 250.0 ms, limit 200.00 ms` for an SLO entry.
pub fn slo_sentence(s: &crate::summary::SloResult) -> String {
    let actual = s.actual.map(|a| slo_value(&s.metric, a)).unwrap_or_else(|| "no data".to_string());
    let limit = if s.metric == "min_rps" { "at least" } else { "at most" };
    let mut line = format!("{} {actual}, {limit} {}", s.metric, slo_value(&s.metric, s.threshold));
    if let Some(r) = &s.reason {
        line.push_str(&format!(" ({r})"));
    }
    line
}

/// Bytes for people: `512 B`, `3.4 MiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// Text for HTML content and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a GitHub-flavoured Markdown paragraph or table cell: HTML is neutralised with
/// entities, `|` cannot end a cell, and emphasis, links, code and headings cannot start.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Shortens a git sha or plan hash for display.
pub fn short(s: &str) -> &str {
    match s.char_indices().nth(12) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(html("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(md("a|b <i>*x*</i>\nc"), "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt; c");
        assert_eq!(md("get_slots"), "get\\_slots");
    }

    #[test]
    fn numbers() {
        assert_eq!(ms(0.4123), "0.412");
        assert_eq!(ms(12.345), "12.35");
        assert_eq!(ms(1234.4), "1234");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
    }
}
