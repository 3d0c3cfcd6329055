//! Commands given as words, and the assertions the tests make with them.

use std::collections::HashMap;

use redis::{Connection, Value};

use crate::reply::{error_line, int, items, record, text};

/// Runs a command given as words.
pub fn run(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

/// Runs a command that must succeed; panics with the command and the error otherwise.
pub fn ok(con: &mut Connection, args: &[&str]) -> Value {
    run(con, args).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Runs a command that must fail; returns its error line.
pub fn err(con: &mut Connection, args: &[&str]) -> String {
    match run(con, args) {
        Ok(v) => panic!("{args:?} should fail but answered {v:?}"),
        Err(e) => error_line(&e),
    }
}

/// Joins and returns (ticket, position).
pub fn enqueue(con: &mut Connection, key: &str, user: &str) -> (String, i64) {
    let r = record(&ok(con, &["QUEUE.ENQUEUE", key, user]));
    (text(&r["ticket"]), int(&r["position"]))
}

/// QUEUE.STATUS of a ticket, as a record.
pub fn status(con: &mut Connection, key: &str, ticket: &str) -> HashMap<String, Value> {
    record(&ok(con, &["QUEUE.STATUS", key, ticket]))
}

/// DEBUG DIGEST-VALUE of one key: two servers agree on it when they hold the same value.
pub fn digest(con: &mut Connection, key: &str) -> String {
    let v = ok(con, &["DEBUG", "DIGEST-VALUE", key]);
    items(&v).first().map(text).unwrap_or_default()
}

/// Waits until nothing changes any more (the same DEBUG DIGEST a second apart), so a state
/// can be compared with a copy of it: timers may still be ending what has lapsed.
pub fn settled(con: &mut Connection) -> String {
    let mut digest = text(&ok(con, &["DEBUG", "DIGEST"]));
    crate::wait_until(std::time::Duration::from_secs(30), || {
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let now = text(&ok(con, &["DEBUG", "DIGEST"]));
        std::mem::replace(&mut digest, now) == digest
    });
    digest
}

/// Runs each (command, expected error prefix) row: every one must be refused with that error,
/// and together they must leave the whole database unchanged (DEBUG DIGEST).
pub fn assert_refused_unchanged(con: &mut Connection, table: &[(Vec<&str>, &str)]) {
    let before = text(&ok(con, &["DEBUG", "DIGEST"]));
    for (args, expected) in table {
        let got = err(con, args);
        assert!(
            got.starts_with(expected),
            "{args:?}: expected '{expected}', got '{got}'"
        );
    }
    assert_eq!(
        text(&ok(con, &["DEBUG", "DIGEST"])),
        before,
        "no bad command changed anything"
    );
}
