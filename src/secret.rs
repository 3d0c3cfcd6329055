//! Each event's secret: 32 bytes drawn on the primary when the event is created (replicated
//! with its creation, stored with the event, never journaled). Three keys derive from it:
//! - the ticket key, which makes the part of a ticket a client cannot guess;
//! - the shuffle key, which orders the pre-queue;
//! - the event pass key, which signs passes when no `seatq.pass-keys` are configured.

use hmac::{KeyInit, Mac};

use crate::admission::pass::PassKey;
use std::hash::Hasher;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const SECRET_LEN: usize = 32;

#[derive(Clone, PartialEq, Eq)]
pub struct EventSecret {
    secret: [u8; SECRET_LEN],
    ticket_key: [u8; 16],
    shuffle_key: [u8; 16],
    pass_key: PassKey,
}

impl std::fmt::Debug for EventSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSecret(..)")
    }
}

fn derive(secret: &[u8; SECRET_LEN], label: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl EventSecret {
    pub fn new(secret: [u8; SECRET_LEN]) -> Self {
        let half = |k: [u8; 32]| -> [u8; 16] { k[..16].try_into().expect("16 of 32 bytes") };
        Self {
            ticket_key: half(derive(&secret, b"seatq ticket")),
            shuffle_key: half(derive(&secret, b"seatq shuffle")),
            pass_key: PassKey::event(&derive(&secret, b"seatq pass")),
            secret,
        }
    }

    pub fn bytes(&self) -> &[u8; SECRET_LEN] {
        &self.secret
    }

    pub fn shuffle_key(&self) -> [u8; 16] {
        self.shuffle_key
    }

    pub fn pass_key(&self) -> &PassKey {
        &self.pass_key
    }

    /// The unguessable part of a ticket: a keyed hash (SipHash-2-4, a pseudo-random function)
    /// of its serial, 64 bits.
    pub fn ticket_tag(&self, serial: u32) -> u64 {
        let mut h = siphasher::sip::SipHasher24::new_with_key(&self.ticket_key);
        h.write_u32(serial);
        h.finish()
    }

    /// The ticket a client holds: `<serial>.<tag as 16 hex digits>`.
    pub fn ticket(&self, serial: u32) -> String {
        let mut tag = [0u8; 16];
        hex::encode_to_slice(self.ticket_tag(serial).to_be_bytes(), &mut tag)
            .expect("8 bytes fill 16 hex digits");
        let mut ticket = String::with_capacity(27);
        ticket.push_str(itoa::Buffer::new().format(serial));
        ticket.push('.');
        ticket.push_str(std::str::from_utf8(&tag).expect("hex is ASCII"));
        ticket
    }

    /// The serial of a well-formed ticket whose tag is right; None for anything else, so a
    /// guessed ticket and a missing one look the same.
    pub fn serial_of(&self, ticket: &[u8]) -> Option<u32> {
        let dot = ticket.iter().position(|&b| b == b'.')?;
        let (serial, tag) = (&ticket[..dot], &ticket[dot + 1..]);
        // Only the canonical form: `parse` alone would also take "+42" and so give every
        // ticket a second spelling.
        let canonical = !serial.is_empty()
            && serial.len() <= 10
            && serial.iter().all(u8::is_ascii_digit)
            && (serial.len() == 1 || serial[0] != b'0');
        if !canonical {
            return None;
        }
        let serial: u32 = std::str::from_utf8(serial).ok()?.parse().ok()?;
        if tag.len() != 16 || !tag.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let tag = u64::from_str_radix(std::str::from_utf8(tag).ok()?, 16).ok()?;
        (tag == self.ticket_tag(serial)).then_some(serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_guesses_fail() {
        let s = EventSecret::new([9; 32]);
        let t = s.ticket(42);
        assert_eq!(t, format!("42.{:016x}", s.ticket_tag(42)));
        assert_eq!(s.serial_of(t.as_bytes()), Some(42));
        let other = EventSecret::new([8; 32]);
        assert_eq!(
            other.serial_of(t.as_bytes()),
            None,
            "another event's ticket"
        );
        for bad in [
            "42",
            "42.",
            ".0000000000000000",
            "042.0000000000000000",
            "x.y",
        ] {
            assert_eq!(s.serial_of(bad.as_bytes()), None, "{bad}");
        }
        for alias in [
            t.to_uppercase(),
            format!("+{t}"),
            format!("0{t}"),
            format!(" {t}"),
        ] {
            assert_eq!(
                s.serial_of(alias.as_bytes()),
                None,
                "one spelling only: {alias}"
            );
        }
        // Neighbouring serials have unrelated tags.
        assert_ne!(s.ticket_tag(1) ^ s.ticket_tag(2), 0);
        assert_ne!(
            s.shuffle_key(),
            EventSecret::new([8; 32]).shuffle_key(),
            "keys depend on the secret"
        );
    }
}
