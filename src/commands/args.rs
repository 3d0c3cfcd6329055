//! Argument parsing shared by the handlers: arity, strict numbers, ticket-or-user targets and
//! option walking.

use crate::entry_id::parse_u64;
use crate::error::{printable, SeatqError};
use crate::ffi::command::Args;
use crate::queue::Target;

pub fn arity(args: &Args, min: usize, exact: bool) -> Result<(), SeatqError> {
    let n = args.bytes.len();
    if n < min || (exact && n != min) {
        return Err(SeatqError::WrongArity);
    }
    Ok(())
}

/// `key ticket` or `key USER user`.
pub fn target<'a>(args: &Args<'a>) -> Result<Target<'a>, SeatqError> {
    match args.bytes[..] {
        [_, _, ticket] => Ok(Target::Ticket(ticket)),
        [_, _, word, user] if word.eq_ignore_ascii_case(b"USER") => Ok(Target::User(user)),
        [_, _, _, _] => Err(SeatqError::Syntax(
            "name a ticket, or USER and a user".into(),
        )),
        _ => Err(SeatqError::WrongArity),
    }
}

/// Parses a non-negative integer argument within `[min, max]`.
pub fn number(arg: &[u8], name: &str, min: u64, max: u64) -> Result<u64, SeatqError> {
    match parse_u64(arg) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(SeatqError::Invalid(format!(
            "{name} must be an integer from {min} to {max}, got '{}'",
            printable(arg)
        ))),
    }
}

/// Walks `[OPTION value ...]` style arguments.
pub struct Options<'a, 'b> {
    args: &'b [&'a [u8]],
    pos: usize,
}

impl<'a, 'b> Options<'a, 'b> {
    pub fn new(args: &'b [&'a [u8]]) -> Self {
        Self { args, pos: 0 }
    }

    /// The next option name, upper-cased.
    pub fn next_name(&mut self) -> Option<Vec<u8>> {
        let name = self.args.get(self.pos)?;
        self.pos += 1;
        Some(name.to_ascii_uppercase())
    }

    pub fn value(&mut self, option: &str) -> Result<&'a [u8], SeatqError> {
        let value = self
            .args
            .get(self.pos)
            .ok_or_else(|| SeatqError::Syntax(format!("{option} needs a value")))?;
        self.pos += 1;
        Ok(value)
    }

    /// Everything not consumed yet.
    pub fn rest(&mut self) -> &'b [&'a [u8]] {
        let rest = &self.args[self.pos..];
        self.pos = self.args.len();
        rest
    }
}

pub fn unknown_option(name: &[u8]) -> SeatqError {
    SeatqError::Syntax(format!("unknown option '{}'", printable(name)))
}
