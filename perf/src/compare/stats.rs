//! Significance tests: Mann-Whitney U (exact for small samples, normal approximation with tie
//! correction beyond) and the two-proportion z-test.
//!
//! Written here because no well-kept Rust crate offers a rank test: `statrs` (used for the
//! normal distribution) has distributions, not tests. Both tests are one-sided: the gate asks
//! "is head worse?" (or "better?"), never "is it different?".

use statrs::distribution::{ContinuousCDF, Normal};

/// Which side of the comparison the alternative hypothesis says is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// Head values tend to be larger than base values.
    HeadGreater,
    /// Head values tend to be smaller than base values.
    HeadLess,
}

/// Up to this many values in total, the p-value is exact (the permutation distribution of
/// the rank sum, ties included); beyond, the normal approximation is within a fraction of a
/// percent and far cheaper.
const EXACT_MAX_TOTAL: usize = 40;

/// The outcome of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U statistic of the head sample: the number of (head, base) pairs where head is larger,
    /// ties counting one half.
    pub u_head: f64,
    pub p_value: f64,
    pub exact: bool,
}

/// One-sided Mann-Whitney U test of `head` against `base`. `None` when a side is empty or a
/// value is not finite.
pub fn mann_whitney(base: &[f64], head: &[f64], alt: Alternative) -> Option<MannWhitney> {
    if base.is_empty() || head.is_empty() || base.iter().chain(head).any(|v| !v.is_finite()) {
        return None;
    }
    let n_head = head.len();
    let n = base.len() + n_head;
    let mut all: Vec<(f64, bool)> = base.iter().map(|&v| (v, false)).chain(head.iter().map(|&v| (v, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Mid-ranks, doubled so that they stay integers: a tie group over sorted positions
    // i..j (0-based, exclusive end) shares the rank (i + 1 + j) / 2.
    let mut ranks2 = vec![0u64; n];
    let mut tie_term = 0.0; // sum of t^3 - t over tie groups
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let r2 = (i + 1 + j) as u64;
        ranks2[i..j].iter_mut().for_each(|r| *r = r2);
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let rank_sum2: u64 = all.iter().zip(&ranks2).filter(|(v, _)| v.1).map(|(_, r)| r).sum();
    let min_sum2 = (n_head * (n_head + 1)) as u64;
    let u_head = (rank_sum2 - min_sum2) as f64 / 2.0;

    if n <= EXACT_MAX_TOTAL {
        let p_value = exact_p(&ranks2, n_head, rank_sum2, alt);
        return Some(MannWhitney { u_head, p_value, exact: true });
    }
    let (n1, n2, nf) = (n_head as f64, base.len() as f64, n as f64);
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if var <= 0.0 {
        1.0 // every value tied: no evidence either way
    } else {
        let sd = var.sqrt();
        let normal = Normal::standard();
        match alt {
            Alternative::HeadGreater => normal.sf((u_head - mean - 0.5) / sd),
            Alternative::HeadLess => normal.cdf((u_head - mean + 0.5) / sd),
        }
    };
    Some(MannWhitney { u_head, p_value: p_value.clamp(0.0, 1.0), exact: false })
}

/// Exact one-sided p-value: the share of all ways to pick `k` of the (doubled) ranks whose sum
/// is at least (or at most) the observed one. Counting by dynamic programming over
/// (picked, sum) keeps it polynomial; counts fit an f64 exactly up to C(40, 20).
fn exact_p(ranks2: &[u64], k: usize, observed: u64, alt: Alternative) -> f64 {
    let max_sum = ranks2.iter().sum::<u64>() as usize;
    // ways[j][s]: subsets of j ranks seen so far whose doubled sum is s.
    let mut ways = vec![vec![0f64; max_sum + 1]; k + 1];
    ways[0][0] = 1.0;
    for &r in ranks2 {
        let r = r as usize;
        for j in (1..=k).rev() {
            let (lower, upper) = ways.split_at_mut(j);
            let (from, to) = (&lower[j - 1], &mut upper[0]);
            for s in (r..=max_sum).rev() {
                if from[s - r] != 0.0 {
                    to[s] += from[s - r];
                }
            }
        }
    }
    let dist = &ways[k];
    let total: f64 = dist.iter().sum();
    let observed = observed as usize;
    let tail: f64 = match alt {
        Alternative::HeadGreater => dist[observed.min(max_sum)..].iter().sum(),
        Alternative::HeadLess => dist[..=observed.min(max_sum)].iter().sum(),
    };
    (tail / total).clamp(0.0, 1.0)
}

/// One-sided two-proportion z-test (pooled variance) of head's failure rate against base's.
/// `None` when a side has no trials. When both rates are 0 (or both 1) there is no variance
/// and no evidence: p = 1.
pub fn two_proportion(base_hits: u64, base_n: u64, head_hits: u64, head_n: u64, alt: Alternative) -> Option<f64> {
    if base_n == 0 || head_n == 0 {
        return None;
    }
    let (b_n, h_n) = (base_n as f64, head_n as f64);
    let (b_p, h_p) = (base_hits.min(base_n) as f64 / b_n, head_hits.min(head_n) as f64 / h_n);
    let pooled = (base_hits.min(base_n) + head_hits.min(head_n)) as f64 / (b_n + h_n);
    let se = (pooled * (1.0 - pooled) * (1.0 / b_n + 1.0 / h_n)).sqrt();
    if se <= 0.0 {
        return Some(1.0);
    }
    let z = (h_p - b_p) / se;
    let normal = Normal::standard();
    Some(match alt {
        Alternative::HeadGreater => normal.sf(z),
        Alternative::HeadLess => normal.cdf(z),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn exact_p_matches_the_enumerated_distribution() {
        // 3 vs 3 with complete separation: only 1 of C(6,3) = 20 arrangements is as extreme.
        let r = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], Alternative::HeadGreater).unwrap();
        assert!(r.exact);
        assert_eq!(r.u_head, 9.0);
        assert!(close(r.p_value, 1.0 / 20.0, 1e-12), "{}", r.p_value);
        let r = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], Alternative::HeadLess).unwrap();
        assert!(close(r.p_value, 1.0, 1e-12));
    }

    #[test]
    fn exact_p_with_ties_counts_midranks() {
        // Pooled doubled mid-ranks of [1,2,2,3] + [2,3,4,5]: head holds 6, 11, 14, 16 (sum 47).
        // The reference is a brute-force count over all C(8,4) = 70 ways to pick head.
        let base = [1.0, 2.0, 2.0, 3.0];
        let head = [2.0, 3.0, 4.0, 5.0];
        let r = mann_whitney(&base, &head, Alternative::HeadGreater).unwrap();
        let ranks2 = [2u64, 6, 6, 6, 11, 11, 14, 16];
        let mut at_least = 0;
        let mut total = 0;
        for mask in 0u32..256 {
            if mask.count_ones() != 4 {
                continue;
            }
            total += 1;
            let s: u64 = (0..8).filter(|i| mask & (1 << i) != 0).map(|i| ranks2[i]).sum();
            if s >= 47 {
                at_least += 1;
            }
        }
        assert!(close(r.p_value, at_least as f64 / total as f64, 1e-12), "{} vs {at_least}/{total}", r.p_value);
    }

    #[test]
    fn normal_approximation_agrees_with_a_known_value() {
        // 25 vs 25, head = base + 10: fifteen tied pairs of values.
        let base: Vec<f64> = (0..25).map(f64::from).collect();
        let head: Vec<f64> = (0..25).map(|i| f64::from(i) + 10.0).collect();
        let r = mann_whitney(&base, &head, Alternative::HeadGreater).unwrap();
        assert!(!r.exact);
        // Worked by hand: U = 512.5, tie-corrected variance 2602.04, continuity 0.5,
        // z = 3.8723, p = 5.3915e-5 (the textbook asymptotic formula, as scipy computes it).
        assert_eq!(r.u_head, 512.5);
        assert!(close(r.p_value, 5.3915e-5, 1e-8), "{}", r.p_value);
        let same = mann_whitney(&base, &base, Alternative::HeadGreater).unwrap();
        assert!(same.p_value > 0.4);
    }

    #[test]
    fn all_tied_gives_no_evidence() {
        let v = vec![5.0; 30];
        let r = mann_whitney(&v, &v, Alternative::HeadGreater).unwrap();
        assert!(close(r.p_value, 1.0, 1e-12));
        assert!(mann_whitney(&[], &[1.0], Alternative::HeadGreater).is_none());
        assert!(mann_whitney(&[f64::NAN], &[1.0], Alternative::HeadGreater).is_none());
    }

    #[test]
    fn two_proportion_detects_a_jump_and_ignores_nothing() {
        let p = two_proportion(0, 1000, 50, 1000, Alternative::HeadGreater).unwrap();
        assert!(p < 1e-9, "{p}");
        let p = two_proportion(0, 1000, 0, 1000, Alternative::HeadGreater).unwrap();
        assert_eq!(p, 1.0);
        let p = two_proportion(1, 1000, 2, 1000, Alternative::HeadGreater).unwrap();
        assert!(p > 0.2, "{p}");
        assert!(two_proportion(0, 0, 1, 10, Alternative::HeadGreater).is_none());
    }
}
