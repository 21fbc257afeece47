//! Nearest-rank percentiles, for latency figures (and the bench's median RSS).

/// Nearest-rank percentiles of a call's turn latencies: (p50, p95, max), ms.
pub fn percentiles(totals: &[u64]) -> Option<(u64, u64, u64)> {
    if totals.is_empty() {
        return None;
    }
    let mut sorted = totals.to_vec();
    sorted.sort_unstable();
    let rank = |p: f64| {
        let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[i.clamp(1, sorted.len()) - 1]
    };
    Some((rank(50.0), rank(95.0), sorted[sorted.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentiles(&[]), None);
        assert_eq!(percentiles(&[700]), Some((700, 700, 700)));
        let totals: Vec<u64> = (1..=20).map(|i| i * 100).collect();
        assert_eq!(percentiles(&totals), Some((1_000, 1_900, 2_000)));
    }
}
