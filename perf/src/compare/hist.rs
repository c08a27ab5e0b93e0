//! The summaries' HDR histograms as the comparison uses them: decoded (through
//! [`crate::summary::hist`], the one codec), merged across rounds, read at a quantile.

use hdrhistogram::Histogram;

/// Decodes one histogram; `None` for an empty string (no samples) or bytes that do not decode.
pub(crate) fn decode(encoded: &str) -> Option<Histogram<u64>> {
    if encoded.is_empty() {
        return None;
    }
    crate::summary::hist::decode(encoded).ok()
}

/// Merges histograms exactly; `None` when there is nothing to merge.
pub(crate) fn merge<'a>(histograms: impl IntoIterator<Item = &'a Histogram<u64>>) -> Option<Histogram<u64>> {
    let mut merged: Option<Histogram<u64>> = None;
    for h in histograms {
        match merged.as_mut() {
            None => {
                // A fresh, auto-resizing histogram accepts every range the others cover.
                let mut m = Histogram::<u64>::new(h.sigfig()).ok()?;
                m.add(h).ok()?;
                merged = Some(m);
            }
            Some(m) => m.add(h).ok()?,
        }
    }
    merged
}

/// The value at quantile `q` of a histogram recorded in microseconds, in milliseconds.
pub(crate) fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    if h.is_empty() { None } else { Some(h.value_at_quantile(q) as f64 / 1000.0) }
}

#[cfg(test)]
pub(crate) use crate::summary::hist::encode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges_exactly() {
        let mut a = Histogram::<u64>::new(3).unwrap();
        let mut b = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000u64 {
            a.record(v * 10).unwrap();
            b.record(v * 1000).unwrap();
        }
        let (da, db) = (decode(&encode(&a)).unwrap(), decode(&encode(&b)).unwrap());
        assert_eq!(da.len(), 1000);
        let m = merge([&da, &db]).unwrap();
        assert_eq!(m.len(), 2000);
        assert_eq!(m.max(), b.max());
        assert!(decode("").is_none());
        assert!(decode("not base64!").is_none());
        assert!(merge(std::iter::empty()).is_none());
    }
}
