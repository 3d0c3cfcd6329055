//! A list of byte-string arguments kept in one buffer. Replicated effects and journal entries are
//! built as these: two allocations per list instead of one per argument (and no `fmt` machinery
//! for numbers), which matters on every write command.

use crate::entry_id::EntryId;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgList {
    bytes: Vec<u8>,
    /// Where each argument ends in `bytes`.
    ends: Vec<usize>,
}

impl ArgList {
    pub fn with_capacity(args: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(args),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn push(&mut self, arg: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(arg);
        self.end_arg()
    }

    /// One argument: `parts` joined by `separator`.
    pub fn push_joined<'a>(
        &mut self,
        parts: impl IntoIterator<Item = &'a [u8]>,
        separator: u8,
    ) -> &mut Self {
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                self.bytes.push(separator);
            }
            self.bytes.extend_from_slice(part);
        }
        self.end_arg()
    }

    /// A decimal number.
    pub fn push_u64(&mut self, n: u64) -> &mut Self {
        self.write_u64(n);
        self.end_arg()
    }

    /// An entry ID as `ms-seq`.
    pub fn push_id(&mut self, id: EntryId) -> &mut Self {
        self.write_u64(id.ms);
        self.bytes.push(b'-');
        self.write_u64(id.seq);
        self.end_arg()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let arg = &self.bytes[start..end];
            start = end;
            arg
        })
    }

    fn end_arg(&mut self) -> &mut Self {
        self.ends.push(self.bytes.len());
        self
    }

    fn write_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.bytes.extend_from_slice(&digits[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_back_in_order_and_numbers_are_decimal() {
        let mut args = ArgList::default();
        args.push(b"HOLD")
            .push_id(EntryId::new(1_795_511_306_645, 3))
            .push_u64(0)
            .push_u64(u64::MAX)
            .push(b"")
            .push_joined([&b"A1"[..], b"B2"], b',')
            .push_joined([], b',');
        let got: Vec<&[u8]> = args.iter().collect();
        assert_eq!(
            got,
            [
                &b"HOLD"[..],
                b"1795511306645-3",
                b"0",
                b"18446744073709551615",
                b"",
                b"A1,B2",
                b""
            ]
        );
        assert_eq!(args.len(), 7);
    }
}
