//! HDR histograms in summaries: V2 deflate serialization in base64 (the `HISTFAAA…` form
//! HdrHistogram's other implementations read), so summaries from several runs or shards merge
//! exactly instead of averaging percentiles.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Why an encoded histogram could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram cannot be decoded: {0}")]
    Decode(String),
    #[error("histograms cannot be merged: {0}")]
    Merge(String),
}

/// Encodes a histogram as base64 of its V2 deflate serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing a histogram into memory cannot fail");
    STANDARD.encode(bytes)
}

/// Decodes what [`encode`] wrote (or any V2 / V2 deflate histogram in base64).
pub fn decode(s: &str) -> Result<Histogram<u64>, HistError> {
    let bytes = STANDARD.decode(s.trim())?;
    let mut h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| HistError::Decode(format!("{e:?}")))?;
    // Merged results may hold larger values than either part: let it grow.
    h.auto(true);
    Ok(h)
}

/// Adds an encoded histogram into `into`.
pub fn merge_into(into: &mut Histogram<u64>, encoded: &str) -> Result<(), HistError> {
    let h = decode(encoded)?;
    into.add(&h).map_err(|e| HistError::Merge(format!("{e:?}")))
}

/// Merges encoded histograms into one, encoded. Exact: the result is what a single run
/// recording every sample would have produced.
pub fn merge<'a>(parts: impl IntoIterator<Item = &'a str>) -> Result<String, HistError> {
    let mut total = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for p in parts {
        merge_into(&mut total, p)?;
    }
    Ok(encode(&total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new(3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn round_trip_keeps_every_count() {
        let h = hist(&[1, 5, 5, 1_000, 123_456, 9_999_999]);
        let s = encode(&h);
        assert!(s.starts_with("HISTFAAA"), "{s}");
        let back = decode(&s).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn merge_is_exact() {
        let a = hist(&[100, 200, 300]);
        let b = hist(&[400, 50_000]);
        let merged = decode(&merge([encode(&a).as_str(), encode(&b).as_str()]).unwrap()).unwrap();
        let all = hist(&[100, 200, 300, 400, 50_000]);
        assert_eq!(merged.len(), 5);
        for q in [0.0, 0.25, 0.5, 0.75, 0.99, 1.0] {
            assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q), "q={q}");
        }
        let empty = merge(std::iter::empty()).unwrap();
        assert_eq!(decode(&empty).unwrap().len(), 0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(decode("not base64!"), Err(HistError::Base64(_))));
        assert!(matches!(decode("aGVsbG8="), Err(HistError::Decode(_))));
    }
}
