//! Summaries of measured samples.

/// The `q` quantile (0 to 1) of `sorted` by nearest rank: the smallest sample that at least a
/// fraction `q` of the samples do not exceed; None without samples.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}
