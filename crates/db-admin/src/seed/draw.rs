//! Draws from the seeded random generators: weighted choices and time-ordered ids.

use rand::Rng;
use uuid::Uuid;

/// The running sums of `weights`, for [`pick`].
pub(super) fn cumulative(weights: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect()
}

/// An index drawn with the weights whose running sums are `cdf` (not empty).
pub(super) fn pick(cdf: &[f64], rng: &mut impl Rng) -> usize {
    let total = cdf.last().copied().unwrap_or(0.0);
    let u = rng.random::<f64>() * total;
    cdf.partition_point(|&c| c <= u).min(cdf.len().saturating_sub(1))
}

/// 1 + an index drawn with integer weights.
pub(super) fn pick_weighted(weights: &[u32], rng: &mut impl Rng) -> usize {
    let total: u32 = weights.iter().sum();
    let mut u = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i + 1;
        }
        u -= w;
    }
    weights.len()
}

/// A version 7 UUID for the time `us` (microseconds since the epoch): the milliseconds in the
/// timestamp field, the microseconds within the millisecond in the 12 bits after the version
/// (RFC 9562's "increased clock precision"), so ids sort like their times; the rest random
/// from the seeded generator (deterministic, and no system call per id).
pub(super) fn uuid_v7(us: i64, rng: &mut impl Rng) -> Uuid {
    let millis = u64::try_from(us.div_euclid(1000)).unwrap_or(0);
    let sub = us.rem_euclid(1000) as u16;
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&sub.to_be_bytes());
    bytes[2..].copy_from_slice(&rng.random::<u64>().to_le_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn uuids_sort_like_their_times() {
        let mut rng = StdRng::seed_from_u64(5);
        let a = uuid_v7(1_700_000_000_000_001, &mut rng);
        let b = uuid_v7(1_700_000_000_000_002, &mut rng);
        assert!(a < b);
        assert_eq!(a.get_version_num(), 7);
    }
}
