//! Every error a seatq command can answer. Each renders as `-CODE message`, the code first so
//! clients can branch on it (`DUPLICATE`, `NO_SUCH_TICKET`, ...).

use crate::entry_id::EntryId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatqError {
    /// Wrong number of arguments; rendered by Redis' own wrong-arity message.
    WrongArity,
    WrongType,
    /// A syntax error: unknown option, missing option value.
    Syntax(String),
    /// A value outside its allowed range or format.
    Invalid(String),
    Duplicate(EntryId),
    NoSuchTicket(Vec<u8>),
    NoSuchEvent,
    /// The journal key holds something other than a stream.
    JournalWrongType(Vec<u8>),
    SeatUnavailable(Vec<u8>),
    /// Not enough stock; the detail says how much is left (empty for named seats).
    SoldOut(String),
    NoSuchSeat(Vec<u8>),
    /// The seat (or `QTY n`) is not held by the caller.
    NotHeld(Vec<u8>),
    NotOwner(Vec<u8>),
    HoldExpired(Vec<u8>),
    LimitExceeded(String),
    /// Not this ticket's turn yet (or the venue is full): retry after the given time.
    NotReady {
        position: u64,
        retry_after_ms: u64,
    },
    /// The admission budget is spent for now.
    RateLimited {
        position: u64,
        retry_after_ms: u64,
    },
    /// The ticket can no longer be admitted: it left, expired or was taken by a worker.
    TicketEnded(&'static str),
    PassRequired,
    PassInvalid,
    /// A bug caught before it reached Redis (a panic).
    Internal(String),
}

impl SeatqError {
    pub fn code(&self) -> &'static str {
        match self {
            SeatqError::WrongArity | SeatqError::Syntax(_) | SeatqError::Invalid(_) => "ERR",
            SeatqError::WrongType | SeatqError::JournalWrongType(_) => "WRONGTYPE",
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
            SeatqError::RateLimited { .. } => "RATE_LIMITED",
            SeatqError::TicketEnded(_) => "TICKET_ENDED",
            SeatqError::PassRequired => "PASS_REQUIRED",
            SeatqError::PassInvalid => "PASS_INVALID",
            SeatqError::Internal(_) => "ERR",
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
            SeatqError::Duplicate(ticket) => ticket.to_string(),
            SeatqError::NoSuchTicket(t) => printable(t),
            SeatqError::NoSuchEvent => "no such event".to_string(),
            SeatqError::JournalWrongType(key) => {
                format!(
                    "journal key {} holds a value that is not a stream",
                    printable(key)
                )
            }
            SeatqError::SeatUnavailable(s)
            | SeatqError::NoSuchSeat(s)
            | SeatqError::NotHeld(s)
            | SeatqError::NotOwner(s)
            | SeatqError::HoldExpired(s) => printable(s),
            SeatqError::SoldOut(m) | SeatqError::LimitExceeded(m) => m.clone(),
            SeatqError::NotReady {
                position,
                retry_after_ms,
            }
            | SeatqError::RateLimited {
                position,
                retry_after_ms,
            } => {
                format!("position {position} retry_after_ms {retry_after_ms}")
            }
            SeatqError::TicketEnded(state) => state.to_string(),
            SeatqError::PassRequired => "this event requires an admission pass (PASS)".into(),
            SeatqError::PassInvalid => "the pass is unknown, expired or not this user's".into(),
            SeatqError::Internal(m) => format!("seatq internal error: {m}"),
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
            SeatqError::Duplicate(EntryId::new(5, 1)).message(),
            "DUPLICATE 5-1"
        );
    }
}
