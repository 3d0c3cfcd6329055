//! Which shard a user belongs to: a stable hash of the user ID, meant to be the same in every
//! language (a client package must compute it identically: the vectors below are the
//! reference), so the gateway, the module and the coordinator agree without asking anyone. A user belongs to exactly one shard
//! of an event, so "one live ticket per user" stays exact: it is checked on one key.
//!
//! The function: FNV-1a (64-bit) over the user's bytes, then the splitmix64 finalizer (FNV's
//! low bits are weak for IDs that differ in their last characters), then a multiply-shift onto
//! `0..shards` (`(h * shards) >> 64`, no modulo bias worth measuring).

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The splitmix64 finalizer.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The shard (0-based) of `user` in an event of `shards` shards (0 or 1 shard: 0).
pub fn shard_of(user: &[u8], shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    ((u128::from(mix(fnv1a64(user))) * u128::from(shards)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors (a client package's implementation must give the same).
    #[test]
    fn known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let got: Vec<u32> = ["alice", "bob", "user-1", "user-2", "", "\u{e9}"]
            .iter()
            .map(|u| shard_of(u.as_bytes(), 16))
            .collect();
        assert_eq!(
            got,
            vec![12, 6, 12, 4, 15, 2],
            "keep in step with the Python client"
        );
        assert_eq!(shard_of(b"anyone", 1), 0);
        assert_eq!(shard_of(b"anyone", 0), 0);
    }

    #[test]
    fn users_spread_evenly() {
        for shards in [2u32, 3, 4, 8, 16] {
            let mut counts = vec![0u32; shards as usize];
            let n = 200_000;
            for i in 0..n {
                counts[shard_of(format!("user-{i}").as_bytes(), shards) as usize] += 1;
            }
            let expected = n as f64 / f64::from(shards);
            for c in counts {
                assert!(
                    (f64::from(c) - expected).abs() / expected < 0.02,
                    "{shards} shards: {c} vs {expected}"
                );
            }
        }
    }
}
