//! What a waiting ticket carries: the user ID and the `DATA field value ...` pairs, packed into one
//! allocation (varint length + bytes each) so that a waiting user costs one small heap block.

use crate::error::SeatqError;

pub const MAX_USER_LEN: usize = 256;
pub const MAX_DATA_PAIRS: usize = 16;
pub const MAX_DATA_ITEM_LEN: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketPayload(Box<[u8]>);

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

fn take_item(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_varint(bytes)?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

impl TicketPayload {
    /// Validates the user ID and DATA pairs against the limits and packs them.
    pub fn new(user: &[u8], data: &[(&[u8], &[u8])]) -> Result<Self, SeatqError> {
        validate_user(user)?;
        if data.len() > MAX_DATA_PAIRS {
            return Err(SeatqError::Invalid(format!(
                "DATA takes at most {MAX_DATA_PAIRS} field/value pairs"
            )));
        }
        let mut out = Vec::with_capacity(
            user.len()
                + 2
                + data
                    .iter()
                    .map(|(f, v)| f.len() + v.len() + 4)
                    .sum::<usize>(),
        );
        put_varint(&mut out, user.len());
        out.extend_from_slice(user);
        for (field, value) in data {
            for item in [field, value] {
                if item.len() > MAX_DATA_ITEM_LEN {
                    return Err(SeatqError::Invalid(format!(
                        "DATA fields and values are limited to {MAX_DATA_ITEM_LEN} bytes"
                    )));
                }
                put_varint(&mut out, item.len());
                out.extend_from_slice(item);
            }
        }
        Ok(Self(out.into_boxed_slice()))
    }

    /// Rebuilds a payload from its packed bytes (replication or RDB), checking every bound.
    pub fn from_packed(bytes: &[u8]) -> Result<Self, SeatqError> {
        let bad = || SeatqError::Invalid("malformed ticket payload".into());
        let (user, mut rest) = take_item(bytes).ok_or_else(bad)?;
        validate_user(user)?;
        let mut items = 0;
        while !rest.is_empty() {
            let (item, tail) = take_item(rest).ok_or_else(bad)?;
            if item.len() > MAX_DATA_ITEM_LEN {
                return Err(bad());
            }
            rest = tail;
            items += 1;
        }
        if items % 2 != 0 || items / 2 > MAX_DATA_PAIRS {
            return Err(bad());
        }
        Ok(Self(bytes.into()))
    }

    pub fn packed(&self) -> &[u8] {
        &self.0
    }

    pub fn user(&self) -> &[u8] {
        take_item(&self.0).expect("validated payload").0
    }

    /// The DATA pairs in the order they were given.
    pub fn data(&self) -> Vec<(&[u8], &[u8])> {
        let mut rest = take_item(&self.0).expect("validated payload").1;
        let mut pairs = Vec::new();
        while let Some((field, tail)) = take_item(rest) {
            let (value, tail) = take_item(tail).expect("validated payload");
            pairs.push((field, value));
            rest = tail;
        }
        pairs
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

fn validate_user(user: &[u8]) -> Result<(), SeatqError> {
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return Err(SeatqError::Invalid(format!(
            "user ID must be 1 to {MAX_USER_LEN} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_user_and_binary_data() {
        let p = TicketPayload::new(b"user-1", &[(b"seat\0pref", b"\xff\x00aisle"), (b"k", b"")])
            .unwrap();
        assert_eq!(p.user(), b"user-1");
        assert_eq!(
            p.data(),
            vec![
                (&b"seat\0pref"[..], &b"\xff\x00aisle"[..]),
                (&b"k"[..], &b""[..])
            ]
        );
        assert_eq!(TicketPayload::from_packed(p.packed()).unwrap(), p);
        let long = vec![b'x'; 300];
        let p = TicketPayload::new(b"u", &[(&long, &long)]).unwrap();
        assert_eq!(p.data()[0].1.len(), 300);
    }

    #[test]
    fn rejects_out_of_bounds_and_malformed() {
        assert!(TicketPayload::new(b"", &[]).is_err());
        assert!(TicketPayload::new(&[b'u'; 257], &[]).is_err());
        assert!(TicketPayload::new(b"u", &[(b"f", &[0u8; 4097])]).is_err());
        let many: Vec<(&[u8], &[u8])> = (0..17).map(|_| (&b"f"[..], &b"v"[..])).collect();
        assert!(TicketPayload::new(b"u", &many).is_err());
        for junk in [
            &b""[..],
            b"\x05ab",
            b"\x01u\x01f",
            b"\xff\xff\xff\xff\xff",
            b"\x00",
        ] {
            assert!(TicketPayload::from_packed(junk).is_err(), "{junk:?}");
        }
    }
}
