//! Stream-style identifiers (`<ms>-<seq>`). A ticket's ID is the ID of its `joined` journal entry,
//! as in the seed, so an ID is both a position in time and a key into the journal.

use std::fmt;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The smallest ID greater than `self` that is not earlier than `now_ms`: the same rule
    /// XADD uses for `*`, so IDs stay strictly increasing even if the clock steps back.
    pub fn next_at(self, now_ms: u64) -> Self {
        if now_ms > self.ms {
            Self::new(now_ms, 0)
        } else if self.seq == u64::MAX {
            Self::new(self.ms + 1, 0)
        } else {
            Self::new(self.ms, self.seq + 1)
        }
    }

    /// Parses the strict `<ms>-<seq>` form (both parts decimal, no sign, no spaces).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let dash = bytes.iter().position(|&b| b == b'-')?;
        Some(Self::new(
            parse_u64(&bytes[..dash])?,
            parse_u64(&bytes[dash + 1..])?,
        ))
    }
}

/// Strict unsigned decimal: digits only, no leading `+`, at most u64::MAX.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_strictly_increasing_even_when_clock_goes_back() {
        let a = EntryId::new(100, 5);
        assert_eq!(a.next_at(200), EntryId::new(200, 0));
        assert_eq!(a.next_at(100), EntryId::new(100, 6));
        assert_eq!(a.next_at(50), EntryId::new(100, 6));
        assert_eq!(EntryId::new(7, u64::MAX).next_at(0), EntryId::new(8, 0));
    }

    #[test]
    fn parse_is_strict() {
        assert_eq!(
            EntryId::parse(b"1759657663474-0"),
            Some(EntryId::new(1759657663474, 0))
        );
        for bad in [
            &b""[..],
            b"1",
            b"-1",
            b"1-",
            b"a-1",
            b"1-1-1",
            b"+1-0",
            b"1 -0",
            b"99999999999999999999999-0",
        ] {
            assert_eq!(
                EntryId::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(EntryId::new(3, 4).to_string(), "3-4");
    }
}
