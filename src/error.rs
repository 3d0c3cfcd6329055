//! Every error a seatq command can answer. Each renders as `-CODE message`, the code first so
//! clients can branch on it (`DUPLICATE`, `NO_SUCH_TICKET`, ...).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatqError {
    /// Wrong number of arguments; rendered by Redis' own wrong-arity message.
    WrongArity,
    WrongType,
    /// A syntax error: unknown option, missing option value.
    Syntax(String),
    /// A value outside its allowed range or format.
    Invalid(String),
    /// The idempotency key was used: with the caller's own ticket, or nothing when the key was
    /// used by another user.
    Duplicate(Option<String>),
    NoSuchTicket(Vec<u8>),
    NoSuchEvent,
    /// The journal key holds something other than a stream, or its last entry is at or past
    /// the IDs seatq can still use: nothing is written until an operator fixes it.
    JournalUnavailable(String),
    /// Retry shortly: the journal is missing while seatq expects it (a slot migration moving
    /// the event and its journal one at a time), or lapsed holds are still being returned.
    TryAgain(String),
    /// The line takes no new joins (QUEUE.CLOSE or CLOSES-AT).
    Closed,
    /// The event has not opened: the pre-queue's order is not revealed (RANGE, DEQUEUE).
    NotOpen,
    SeatUnavailable(Vec<u8>),
    /// Not enough stock; the detail says how much is left (empty for named seats).
    SoldOut(String),
    NoSuchSeat(Vec<u8>),
    /// The seat (or `QTY n`) is not held by the caller.
    NotHeld(Vec<u8>),
    NotOwner(Vec<u8>),
    HoldExpired(Vec<u8>),
    LimitExceeded(String),
    /// The ticket still waits: its position and when to ask again.
    NotReady {
        position: u64,
        retry_after_ms: u64,
    },
    /// The ticket's wait or session is over (left, expired, no_show, revoked, ...).
    TicketEnded(&'static str),
    PassRequired,
    PassInvalid,
    /// A bug caught before it reached Redis (a panic).
    Internal(String),
    /// A sharded event's grant from a coordinator whose epoch is older than one the shard has
    /// seen (another coordinator took over); the detail names the shard's epoch.
    Fenced(u64),
    /// A join on a line shard that the user's hash does not name: (the user's shard, K).
    WrongShard(u32, u64),
}

impl SeatqError {
    pub fn code(&self) -> &'static str {
        match self {
            SeatqError::WrongArity | SeatqError::Syntax(_) | SeatqError::Invalid(_) => "ERR",
            SeatqError::WrongType => "WRONGTYPE",
            SeatqError::JournalUnavailable(_) => "JOURNAL_UNAVAILABLE",
            SeatqError::TryAgain(_) => "TRYAGAIN",
            SeatqError::Closed => "CLOSED",
            SeatqError::NotOpen => "NOT_OPEN",
            SeatqError::Duplicate(_) => "DUPLICATE",
            SeatqError::NoSuchTicket(_) => "NO_SUCH_TICKET",
            SeatqError::NoSuchEvent => "NO_SUCH_EVENT",
            SeatqError::SeatUnavailable(_) => "SEAT_UNAVAILABLE",
            SeatqError::SoldOut(_) => "SOLD_OUT",
            SeatqError::NoSuchSeat(_) => "NO_SUCH_SEAT",
            SeatqError::NotHeld(_) => "NOT_HELD",
            SeatqError::NotOwner(_) => "NOT_OWNER",
            SeatqError::HoldExpired(_) => "HOLD_EXPIRED",
            SeatqError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            SeatqError::NotReady { .. } => "NOT_READY",
            SeatqError::TicketEnded(_) => "TICKET_ENDED",
            SeatqError::PassRequired => "PASS_REQUIRED",
            SeatqError::PassInvalid => "PASS_INVALID",
            SeatqError::Internal(_) => "ERR",
            SeatqError::Fenced(_) => "FENCED",
            SeatqError::WrongShard(..) => "WRONG_SHARD",
        }
    }

    /// The error line as `message` gives it, piece by piece; NOT_READY (what every waiting
    /// poll of QUEUE.ADMIT gets) without `fmt`.
    pub fn write_message(&self, mut push: impl FnMut(&[u8])) {
        match self {
            SeatqError::NotReady {
                position,
                retry_after_ms,
            } => {
                let mut number = itoa::Buffer::new();
                push(b"NOT_READY position ");
                push(number.format(*position).as_bytes());
                push(b" retry_after_ms ");
                push(number.format(*retry_after_ms).as_bytes());
            }
            other => push(other.message().as_bytes()),
        }
    }

    /// The full error line, without the leading `-`.
    pub fn message(&self) -> String {
        let detail = match self {
            SeatqError::WrongArity => "wrong number of arguments".to_string(),
            SeatqError::WrongType => {
                "Operation against a key holding the wrong kind of value".to_string()
            }
            SeatqError::Syntax(m) => format!("syntax error: {m}"),
            SeatqError::Invalid(m) => m.clone(),
            SeatqError::Duplicate(Some(ticket)) => ticket.clone(),
            SeatqError::Duplicate(None) => "the idempotency key was already used".into(),
            SeatqError::JournalUnavailable(m) | SeatqError::TryAgain(m) => m.clone(),
            SeatqError::Closed => "the line is closed to new joins".into(),
            SeatqError::NotOpen => {
                "the event has not opened: the pre-queue's order is drawn in secret until OPENS-AT"
                    .into()
            }
            SeatqError::NoSuchTicket(t) => printable(t),
            SeatqError::NoSuchEvent => "no such event".to_string(),
            SeatqError::SeatUnavailable(s)
            | SeatqError::NoSuchSeat(s)
            | SeatqError::NotHeld(s)
            | SeatqError::NotOwner(s)
            | SeatqError::HoldExpired(s) => printable(s),
            SeatqError::SoldOut(m) | SeatqError::LimitExceeded(m) => m.clone(),
            SeatqError::NotReady {
                position,
                retry_after_ms,
            } => {
                format!("position {position} retry_after_ms {retry_after_ms}")
            }
            SeatqError::TicketEnded(state) => state.to_string(),
            SeatqError::PassRequired => "this event requires an admission pass (PASS)".into(),
            SeatqError::PassInvalid => {
                "the pass is malformed, forged, expired, revoked or not this user's".into()
            }
            SeatqError::Internal(m) => format!("seatq internal error: {m}"),
            SeatqError::Fenced(epoch) => {
                format!("epoch {epoch}: a coordinator with a newer epoch granted this shard")
            }
            SeatqError::WrongShard(shard, shards) => {
                format!("the user belongs to shard {shard} of {shards} (shard_of)")
            }
        };
        if detail.is_empty() {
            return self.code().to_string();
        }
        format!("{} {}", self.code(), detail)
    }
}

/// Echoes client bytes in an error line without letting CR/LF or junk break the protocol.
pub fn printable(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(64)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > 64 {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_their_code_and_are_single_line() {
        let e = SeatqError::NoSuchTicket(b"a\r\nb\xff".to_vec());
        assert_eq!(e.message(), "NO_SUCH_TICKET a\\r\\nb\\xff");
        assert_eq!(
            SeatqError::Duplicate(Some("5.00ff".into())).message(),
            "DUPLICATE 5.00ff"
        );
    }

    #[test]
    fn written_messages_are_the_messages() {
        for e in [
            SeatqError::NotReady {
                position: 12_345,
                retry_after_ms: 0,
            },
            SeatqError::Closed,
            SeatqError::TicketEnded("left"),
        ] {
            let mut line = Vec::new();
            e.write_message(|piece| line.extend_from_slice(piece));
            assert_eq!(line, e.message().as_bytes());
        }
    }
}
