//! Malformed input: every command answers a clear error and changes nothing.

use seatq_testkit::*;

#[test]
fn bad_input_table_answers_errors_and_changes_nothing() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let ticket = enqueue(&mut con, "ev", "u1").0;
        enqueue(&mut con, "ev", "u2");
        ok(&mut con, &["SET", "plain", "string"]);
        ok(&mut con, &["SET", "{tagged}:journal", "not a stream"]);
        let long_user = "u".repeat(257);
        let long_value = "v".repeat(4097);
        // (command, expected error prefix)
        let table: Vec<(Vec<&str>, &str)> = vec![
            (vec!["QUEUE.ENQUEUE", "ev"], "ERR wrong number of arguments"),
            (vec!["QUEUE.ENQUEUE"], "ERR wrong number of arguments"),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "IDEMPOTENCY"],
                "ERR syntax error: IDEMPOTENCY needs a value",
            ),
            (
                vec![
                    "QUEUE.ENQUEUE",
                    "ev",
                    "u3",
                    "IDEMPOTENCY",
                    "a",
                    "IDEMPOTENCY",
                    "b",
                ],
                "ERR syntax error: IDEMPOTENCY given twice",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "IDEMPOTENCY", ""],
                "ERR idempotency key must be",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "NOPE"],
                "ERR syntax error: unknown option 'NOPE'",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "DATA"],
                "ERR syntax error: DATA takes field value pairs",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "DATA", "f"],
                "ERR syntax error: DATA takes field value pairs",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "DATA", "f", &long_value],
                "ERR DATA fields and values are limited",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", ""],
                "ERR user ID must be 1 to 256 bytes",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", &long_user],
                "ERR user ID must be 1 to 256 bytes",
            ),
            (vec!["QUEUE.ENQUEUE", "plain", "u3"], "WRONGTYPE"),
            (
                vec!["QUEUE.ENQUEUE", "{tagged}", "u3"],
                "JOURNAL_UNAVAILABLE the journal key {tagged}:journal holds a value that is not a stream",
            ),
            (
                vec!["QUEUE.ENQUEUE", "ev", "u3", "DATA", "f", "1", "f", "2"],
                "ERR DATA names a field twice",
            ),
            (
                vec!["QUEUE.ENQUEUE", "no}tag", "u3"],
                "ERR event key no}tag has no hash tag",
            ),
            (vec!["QUEUE.STATUS", "ev"], "ERR wrong number of arguments"),
            (
                vec!["QUEUE.STATUS", "ev", "1-0", "extra"],
                "ERR syntax error: name a ticket, or USER and a user",
            ),
            (
                vec!["QUEUE.STATUS", "ev", "USER", "u", "extra"],
                "ERR wrong number of arguments",
            ),
            (vec!["QUEUE.STATUS", "ev", "USER", "nobody"], "NO_SUCH_TICKET user nobody"),
            (vec!["QUEUE.STATUS", "ev", "0.0000000000000000"], "NO_SUCH_TICKET 0.0000000000000000"),
            (vec!["QUEUE.RENEW", "ev"], "ERR wrong number of arguments"),
            (vec!["QUEUE.RENEW", "ev", "nope"], "NO_SUCH_TICKET nope"),
            (vec!["QUEUE.REVOKE", "ev", "USER"], "NO_SUCH_TICKET USER"),
            (vec!["QUEUE.REVOKE", "plain", "nope"], "WRONGTYPE"),
            (vec!["QUEUE.VERIFY", "ev"], "ERR wrong number of arguments"),
            (vec!["QUEUE.STATUS", "missing", "USER", "u"], "NO_SUCH_TICKET user u"),
            (vec!["QUEUE.PAUSE", "ev", "now"], "ERR wrong number of arguments"),
            (vec!["QUEUE.RESUME", "plain"], "WRONGTYPE"),
            (vec!["QUEUE.CLOSE"], "ERR wrong number of arguments"),
            (vec!["QUEUE.REOPEN", "plain"], "WRONGTYPE"),
            (vec!["QUEUE.STATUS", "ev", "1-0"], "NO_SUCH_TICKET 1-0"),
            (
                vec!["QUEUE.STATUS", "ev", "garbage\r\n"],
                "NO_SUCH_TICKET garbage\\r\\n",
            ),
            (vec!["QUEUE.STATUS", "ev", "-1-0"], "NO_SUCH_TICKET -1-0"),
            (
                vec!["QUEUE.STATUS", "ev", "99999999999999999999999-0"],
                "NO_SUCH_TICKET",
            ),
            (vec!["QUEUE.STATUS", "missing", &ticket], "NO_SUCH_TICKET"),
            (vec!["QUEUE.STATUS", "plain", &ticket], "WRONGTYPE"),
            (vec!["QUEUE.LEAVE", "ev", "nope"], "NO_SUCH_TICKET nope"),
            (vec!["QUEUE.LEAVE", "ev"], "ERR wrong number of arguments"),
            (vec!["QUEUE.LEAVE", "plain", "1-0"], "WRONGTYPE"),
            (
                vec!["QUEUE.DEQUEUE", "ev", "COUNT"],
                "ERR syntax error: COUNT needs a value",
            ),
            (
                vec!["QUEUE.DEQUEUE", "ev", "COUNT", "0"],
                "ERR COUNT must be an integer from 1 to 10000",
            ),
            (
                vec!["QUEUE.DEQUEUE", "ev", "COUNT", "-1"],
                "ERR COUNT must be an integer from 1 to 10000",
            ),
            (
                vec!["QUEUE.DEQUEUE", "ev", "COUNT", "10001"],
                "ERR COUNT must be an integer from 1 to 10000",
            ),
            (
                vec!["QUEUE.DEQUEUE", "ev", "COUNT", "1.5"],
                "ERR COUNT must be an integer",
            ),
            (
                vec!["QUEUE.DEQUEUE", "ev", "LIMIT", "1"],
                "ERR syntax error: unknown option 'LIMIT'",
            ),
            (vec!["QUEUE.DEQUEUE", "plain"], "WRONGTYPE"),
            (vec!["QUEUE.LEN"], "ERR wrong number of arguments"),
            (vec!["QUEUE.LEN", "plain"], "WRONGTYPE"),
            (
                vec!["QUEUE.RANGE", "ev", "0"],
                "ERR wrong number of arguments",
            ),
            (
                vec!["QUEUE.RANGE", "ev", "-1", "5"],
                "ERR start must be an integer",
            ),
            (
                vec!["QUEUE.RANGE", "ev", "0", "abc"],
                "ERR count must be an integer",
            ),
            (
                vec!["QUEUE.RANGE", "ev", "0", "18446744073709551616"],
                "ERR count must be an integer",
            ),
            (vec!["QUEUE.INFO", "missing"], "NO_SUCH_EVENT"),
            (vec!["QUEUE.INFO", "plain"], "WRONGTYPE"),
            (vec!["QUEUE.CONFIG", "ev"], "ERR wrong number of arguments"),
            (
                vec!["QUEUE.CONFIG", "ev", "FROB"],
                "ERR syntax error: QUEUE.CONFIG takes GET or SET",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET"],
                "ERR wrong number of arguments",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT"],
                "ERR wrong number of arguments",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT", "0"],
                "ERR HEARTBEAT must be an integer from 1000 to 86400000",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT", "-5000"],
                "ERR HEARTBEAT must be an integer",
            ),
            (
                vec![
                    "QUEUE.CONFIG",
                    "ev",
                    "SET",
                    "HEARTBEAT",
                    "99999999999999999999",
                ],
                "ERR HEARTBEAT must be an integer",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "RATE", "10", "HEARTBEAT", "x"],
                "ERR HEARTBEAT must be an integer",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "JOURNAL", "maybe"],
                "ERR JOURNAL must be on or off",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "COLOR", "red"],
                "ERR unknown setting 'COLOR'",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "GET", "COLOR"],
                "ERR unknown setting 'COLOR'",
            ),
            (vec!["QUEUE.CONFIG", "plain", "GET"], "WRONGTYPE"),
            // A client never gets to apply effects, well-formed or not.
            (
                vec!["SEATQ.APPLY", "ev", "PAUSED", "99999999999999-0"],
                "ERR SEATQ.APPLY is internal",
            ),
            (vec!["SEATQ.APPLY", "ev", "EXPLODE"], "ERR SEATQ.APPLY is internal"),
            (vec!["SEATQ.APPLY", "ev", "SNAPSHOT", "\u{1}\u{2}\u{3}"], "ERR SEATQ.APPLY is internal"),
            (vec!["SEATQ.APPLY", "plain", "PURGED", "1", "1"], "ERR SEATQ.APPLY is internal"),
        ];
        assert_refused_unchanged(&mut con, &table);
        // A deleted event's passes are invalid, like any unknown pass.
        let verify = record(&ok(&mut con, &["QUEUE.VERIFY", "missing", "x.y.z"]));
        assert_eq!(text(&verify["state"]), "invalid");
        assert_eq!(
            int(&ok(&mut con, &["EXISTS", "missing", "no}tag", "{tagged}"])),
            0,
            "no event was created by a failed write"
        );
        // Binary junk in every position of every command: an answer, never a crash.
        let junk: &[&[u8]] = &[
            b"\x00",
            b"\xff\xfe",
            b"-",
            b"9223372036854775808",
            b"",
            b"\r\n*3",
        ];
        for name in [
            "QUEUE.ENQUEUE",
            "QUEUE.STATUS",
            "QUEUE.LEAVE",
            "QUEUE.DEQUEUE",
            "QUEUE.LEN",
            "QUEUE.RANGE",
            "QUEUE.INFO",
            "QUEUE.CONFIG",
            "SEATQ.APPLY",
            "QUEUE.ADMIT",
            "QUEUE.RENEW",
            "QUEUE.REVOKE",
            "QUEUE.VERIFY",
            "QUEUE.PAUSE",
            "QUEUE.RESUME",
            "QUEUE.CLOSE",
            "QUEUE.REOPEN",
            "SEAT.ADD",
            "SEAT.HOLD",
            "SEAT.RELEASE",
            "SEAT.CONFIRM",
            "SEAT.STATUS",
            "SEAT.INFO",
        ] {
            for arity in 0..6 {
                for j in junk {
                    let mut cmd = redis::cmd(name);
                    cmd.arg("junk-event");
                    for _ in 0..arity {
                        cmd.arg(*j);
                    }
                    let _ = cmd.query::<redis::Value>(&mut con);
                }
            }
        }
        assert_eq!(text(&ok(&mut con, &["PING"])), "PONG");
    });
}
