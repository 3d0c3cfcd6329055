//! The keys of a sharded event named `<event>` (any bytes but `{` and `}`):
//!
//! | key | what | slot |
//! |---|---|---|
//! | `{<event>:s<i>:<n>}` | line shard `i` (a seatq event; journal `{<event>:s<i>:<n>}:journal`) | chosen: `<n>` is picked so the slot lands on the primary shard `i` should live on |
//! | `{<event>}:seats` | the inventory (a seatq event holding the seats) | the event name's |
//! | `{<event>}:meta` | the meta record (a hash: shard keys, K, group, epoch, rank table) | the event name's |
//! | `{<event>}:coordinator` | the coordinators' lease (a string, `SET NX PX`) | the event name's |
//!
//! Each shard's hash tag includes its index and a salt, so shards land in different slots (the
//! seed's `{event}:shard:N` put every shard in the event's one slot). The salt is chosen when
//! the event is created, by looking at the cluster's slot map: the smallest `<n>` whose slot a
//! chosen primary serves. The names never change afterwards; resharding moves a shard key (and
//! its journal, same slot) like any key, and the meta record keeps naming it.

/// Whether `event` can name a sharded event: 1-200 bytes, no braces (the keys wrap it in one).
pub fn valid_event(event: &[u8]) -> bool {
    !event.is_empty() && event.len() <= 200 && !event.iter().any(|&b| b == b'{' || b == b'}')
}

pub fn shard_key(event: &[u8], index: u32, salt: u32) -> Vec<u8> {
    [b"{", event, format!(":s{index}:{salt}}}").as_bytes()].concat()
}

pub fn inventory_key(event: &[u8]) -> Vec<u8> {
    [b"{", event, b"}:seats"].concat()
}

pub fn meta_key(event: &[u8]) -> Vec<u8> {
    [b"{", event, b"}:meta"].concat()
}

pub fn lease_key(event: &[u8]) -> Vec<u8> {
    [b"{", event, b"}:coordinator"].concat()
}

/// CRC16-CCITT (XMODEM), Redis Cluster's key hash.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of a key, as `CLUSTER KEYSLOT` computes it (the first non-empty `{tag}`).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&len| len > 0)
                .map(|len| &rest[..len])
        })
        .unwrap_or(key);
    crc16(hashed) & 16383
}

/// The smallest salt (below `limit`) that puts shard `index` of `event` in a slot `wanted`
/// accepts.
pub fn find_salt(
    event: &[u8],
    index: u32,
    limit: u32,
    wanted: impl Fn(u16) -> bool,
) -> Option<u32> {
    (0..limit).find(|&salt| wanted(key_slot(&shard_key(event, index, salt))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT (tests/sharded.rs checks more on a live cluster).
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"123456789"), 0x31c3 & 16383);
    }

    #[test]
    fn shards_get_their_own_slots() {
        let keys: Vec<Vec<u8>> = (0..4).map(|i| shard_key(b"sale", i, 0)).collect();
        assert_eq!(keys[1], b"{sale:s1:0}");
        let slots: std::collections::HashSet<u16> = keys.iter().map(|k| key_slot(k)).collect();
        assert_eq!(slots.len(), 4);
        assert_eq!(key_slot(&inventory_key(b"sale")), key_slot(b"sale"));
        assert_eq!(key_slot(&meta_key(b"sale")), key_slot(&lease_key(b"sale")));
        let salt = find_salt(b"sale", 2, 100_000, |s| s < 5461).unwrap();
        assert!(key_slot(&shard_key(b"sale", 2, salt)) < 5461);
        assert!(!valid_event(b"a{b") && !valid_event(b"") && valid_event(b"sale:2026"));
    }
}
