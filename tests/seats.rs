//! Seat inventory against real servers.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redis::Connection;
use seatq_testkit::*;

/// Seat inventory on its own: events here need no admission pass (the admission tests cover
/// passes).
const NO_PASS: &[&str] = &["--seatq.require-pass", "0"];

fn add_seats(con: &mut Connection, key: &str, names: &[String]) {
    let mut cmd = redis::cmd("SEAT.ADD");
    cmd.arg(key).arg(names);
    let added: i64 = cmd.query(con).unwrap();
    assert_eq!(added as usize, names.len());
}

fn seat_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("A-{i}")).collect()
}

fn info(con: &mut Connection, key: &str) -> HashMap<String, i64> {
    record(&ok(con, &["SEAT.INFO", key]))
        .iter()
        .map(|(k, v)| (k.clone(), int(v)))
        .collect()
}

#[test]
fn seed_hold_release_sold_out() {
    for_each_server(|kind| {
        let server = Server::start(kind, NO_PASS);
        let mut con = server.connection();
        // Named seats: the seed's A-12 among 100.
        add_seats(&mut con, "concert", &seat_names(100));
        let held = record(&ok(&mut con, &["SEAT.HOLD", "concert", "user-1", "A-12"]));
        assert_eq!(int(&held["remaining"]), 99);
        assert_eq!(
            err(&mut con, &["SEAT.HOLD", "concert", "user-2", "A-12"]),
            "SEAT_UNAVAILABLE A-12"
        );
        assert_eq!(
            int(&ok(
                &mut con,
                &["SEAT.RELEASE", "concert", "user-1", "A-12"]
            )),
            100
        );
        // General admission: 100 -> 99 -> 100, then sold out without going negative.
        assert_eq!(int(&ok(&mut con, &["SEAT.ADD", "ga", "QTY", "100"])), 100);
        assert_eq!(
            int(&record(&ok(&mut con, &["SEAT.HOLD", "ga", "user-1", "QTY", "1"]))["remaining"]),
            99
        );
        assert_eq!(
            int(&ok(&mut con, &["SEAT.RELEASE", "ga", "user-1", "QTY", "1"])),
            100
        );
        ok(&mut con, &["SEAT.HOLD", "ga", "user-1", "QTY", "98"]);
        assert_eq!(
            err(&mut con, &["SEAT.HOLD", "ga", "user-2", "QTY", "3"]),
            "SOLD_OUT 2 left"
        );
        ok(&mut con, &["SEAT.HOLD", "ga", "user-2", "QTY", "2"]);
        assert_eq!(
            err(&mut con, &["SEAT.HOLD", "ga", "user-3", "QTY", "1"]),
            "SOLD_OUT 0 left"
        );
        let i = info(&mut con, "ga");
        assert_eq!(
            (i["ga_available"], i["ga_held"], i["ga_total"]),
            (0, 100, 100)
        );
        // Releasing never inflates: a second release of the same units is NOT_HELD.
        ok(&mut con, &["SEAT.RELEASE", "ga", "user-2", "QTY", "2"]);
        assert!(
            err(&mut con, &["SEAT.RELEASE", "ga", "user-2", "QTY", "2"]).starts_with("NOT_HELD")
        );
        assert_eq!(info(&mut con, "ga")["ga_available"], 2);
        // Confirm turns a hold into a sale; the journal has held, released and sold entries.
        let sold = record(&ok(
            &mut con,
            &["SEAT.CONFIRM", "ga", "user-1", "QTY", "98"],
        ));
        assert_eq!((int(&sold["sold"]), int(&sold["remaining"])), (98, 2));
        let types: Vec<String> = journal(&mut con, "{ga}.journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .collect();
        assert_eq!(
            types,
            ["held", "released", "held", "held", "released", "sold"]
        );
    });
}

/// A model of named seats rebuilt from the journal alone.
#[derive(Default)]
struct Replay {
    seats: BTreeMap<String, (String, String)>, // seat -> (state, holder)
    holds: HashMap<String, Vec<String>>,       // hold id -> seats still held
    sold_count: HashMap<String, u32>,          // seat -> how many times sold
}

impl Replay {
    fn run(entries: &[(String, Vec<(String, String)>)]) -> Replay {
        let mut r = Replay::default();
        for (_, e) in entries {
            let seats: Vec<String> = field(e, "seats")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let user = field(e, "user").to_string();
            match field(e, "type") {
                "held" => {
                    for s in &seats {
                        assert_eq!(
                            r.seats.get(s).map(|x| x.0.as_str()).unwrap_or("available"),
                            "available",
                            "journal holds a seat that is not available: {s}"
                        );
                        r.seats.insert(s.clone(), ("held".into(), user.clone()));
                    }
                    r.holds.insert(field(e, "hold").to_string(), seats);
                }
                kind @ ("released" | "sold") => {
                    for s in &seats {
                        assert_eq!(
                            r.seats.get(s),
                            Some(&("held".to_string(), user.clone())),
                            "{kind} of a seat {user} did not hold: {s}"
                        );
                        for held in r.holds.values_mut() {
                            held.retain(|x| x != s);
                        }
                        if kind == "sold" {
                            *r.sold_count.entry(s.clone()).or_default() += 1;
                            r.seats.insert(s.clone(), ("sold".into(), user.clone()));
                        } else {
                            r.seats.remove(s);
                        }
                    }
                }
                "hold_expired" => {
                    let remaining = r.holds.remove(field(e, "hold")).unwrap_or_default();
                    assert_eq!(
                        remaining, seats,
                        "expired hold returns exactly its remaining seats"
                    );
                    for s in &seats {
                        r.seats.remove(s);
                    }
                }
                other => panic!("unexpected journal entry {other}"),
            }
        }
        r
    }
}

#[test]
fn two_hundred_clients_racing_for_fifty_seats_never_oversell() {
    for_each_server(|kind| {
        let server = Server::start(kind, NO_PASS);
        let mut con = server.connection();
        let names = seat_names(50);
        add_seats(&mut con, "race", &names);
        ok(
            &mut con,
            &["QUEUE.CONFIG", "race", "SET", "USER-LIMIT", "4"],
        );
        let barrier = std::sync::Barrier::new(200);
        // Each client logs the seats it was told it bought.
        let acknowledged: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..200u64)
                .map(|c| {
                    let (server, barrier) = (&server, &barrier);
                    s.spawn(move || {
                        let mut con = server.connection();
                        let user = format!("user-{}", c % 120); // some users have two clients
                        let mut rng = c.wrapping_mul(0x9E3779B97F4A7C15) | 1;
                        let mut next = |n: u64| {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            rng % n
                        };
                        let mut mine: Vec<String> = Vec::new();
                        let mut bought = Vec::new();
                        barrier.wait();
                        for _ in 0..25 {
                            let op = next(10);
                            if op < 5 || mine.is_empty() {
                                let want: Vec<String> = (0..1 + next(3))
                                    .map(|_| format!("A-{}", next(50)))
                                    .collect();
                                let mut cmd = redis::cmd("SEAT.HOLD");
                                cmd.arg("race").arg(&user).arg(&want);
                                if next(4) == 0 {
                                    cmd.arg("TTL").arg(1);
                                }
                                if cmd.query::<redis::Value>(&mut con).is_ok() {
                                    mine.extend(want);
                                }
                            } else {
                                let k = next(mine.len() as u64) as usize;
                                let seat = mine.swap_remove(k);
                                let command = if op < 8 {
                                    "SEAT.CONFIRM"
                                } else {
                                    "SEAT.RELEASE"
                                };
                                if run(&mut con, &[command, "race", &user, &seat]).is_ok()
                                    && command == "SEAT.CONFIRM"
                                {
                                    bought.push(seat);
                                }
                            }
                        }
                        (user, bought)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Let every TTL-1 hold lapse and the timer return it, so the state is settled.
        std::thread::sleep(Duration::from_millis(1300));
        let mut status_args = vec!["SEAT.STATUS", "race"];
        status_args.extend(names.iter().map(String::as_str));
        let mut final_state = BTreeMap::new();
        wait_until(Duration::from_secs(5), || {
            final_state = items(&ok(&mut con, &status_args))
                .iter()
                .map(record)
                .filter(|r| text(&r["state"]) != "available")
                .map(|r| (text(&r["seat"]), (text(&r["state"]), text(&r["holder"]))))
                .collect::<BTreeMap<String, (String, String)>>();
            Replay::run(&journal(&mut con, "{race}.journal")).seats == final_state
        });
        // Every acknowledged sale is final, and no seat was sold to two clients.
        let mut buyers_of: HashMap<String, Vec<String>> = HashMap::new();
        for (user, bought) in &acknowledged {
            for seat in bought {
                buyers_of
                    .entry(seat.clone())
                    .or_default()
                    .push(user.clone());
                assert_eq!(
                    final_state.get(seat),
                    Some(&("sold".to_string(), user.clone())),
                    "acknowledged sale of {seat} to {user}"
                );
            }
        }
        assert!(
            buyers_of.values().all(|b| b.len() == 1),
            "a seat was sold twice: {buyers_of:?}"
        );
        assert!(!buyers_of.is_empty(), "the race sold something");
        // Counts add up, and the cap held for every user.
        let i = info(&mut con, "race");
        assert_eq!(i["seats_available"] + i["seats_held"] + i["seats_sold"], 50);
        assert_eq!(i["seats_sold"] as usize, buyers_of.len());
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        for (_, holder) in final_state.values() {
            *per_user.entry(holder.as_str()).or_default() += 1;
        }
        assert!(per_user.values().all(|&n| n <= 4), "{per_user:?}");
        // The journal alone replays to exactly the final state (checked above), selling no seat twice.
        let replay = Replay::run(&journal(&mut con, "{race}.journal"));
        assert_eq!(replay.seats, final_state);
        assert!(replay.sold_count.values().all(|&n| n == 1));
    });
}

#[test]
fn an_abandoned_hold_comes_back_by_itself_and_every_copy_agrees() {
    for_each_server(|kind| {
        let mut primary = Server::start(
            kind,
            &[
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--seatq.require-pass",
                "0",
            ],
        );
        let replica = primary.start_replica(&[]);
        let mut con = primary.connection();
        add_seats(&mut con, "show", &seat_names(10));
        ok(&mut con, &["SEAT.ADD", "show", "QTY", "20"]);
        let long = record(&ok(
            &mut con,
            &["SEAT.HOLD", "show", "keeper", "A-5", "A-6"],
        ));
        ok(&mut con, &["SEAT.HOLD", "show", "buyer", "A-7"]);
        ok(&mut con, &["SEAT.CONFIRM", "show", "buyer", "A-7"]);
        let held_at = Instant::now();
        ok(
            &mut con,
            &["SEAT.HOLD", "show", "walker", "A-1", "A-2", "TTL", "1"],
        );
        ok(
            &mut con,
            &["SEAT.HOLD", "show", "walker", "QTY", "3", "TTL", "1"],
        );
        // Nobody calls anything: the primary's timer returns the stock and journals it.
        wait_until(Duration::from_secs(5), || {
            journal(&mut con, "{show}.journal")
                .iter()
                .filter(|e| field(&e.1, "type") == "hold_expired")
                .count()
                == 2
        });
        let took = held_at.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "returned after {took:?}"
        );
        let i = info(&mut con, "show");
        assert_eq!(
            (
                i["seats_available"],
                i["seats_held"],
                i["seats_sold"],
                i["ga_available"],
                i["holds_expired_total"]
            ),
            (7, 2, 1, 20, 2)
        );
        assert_eq!(
            err(&mut con, &["SEAT.CONFIRM", "show", "walker", "A-1"]),
            "HOLD_EXPIRED A-1"
        );
        assert!(
            err(&mut con, &["SEAT.CONFIRM", "show", "walker", "QTY", "3"])
                .starts_with("HOLD_EXPIRED")
        );
        // Replica and AOF replay agree with the primary.
        assert_eq!(int(&ok(&mut con, &["WAIT", "1", "5000"])), 1);
        let digest_before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        let mut rcon = replica.connection();
        wait_until(Duration::from_secs(5), || {
            text(&ok(&mut rcon, &["DEBUG", "DIGEST"])) == digest_before
        });
        assert_eq!(info(&mut rcon, "show"), i);
        drop(rcon);
        drop(replica);
        primary.restart();
        let mut con = primary.connection();
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), digest_before);
        assert_eq!(info(&mut con, "show"), i);
        // DEBUG RELOAD keeps holds and their deadlines.
        let before = format!(
            "{:?}",
            ok(&mut con, &["SEAT.STATUS", "show", "A-5", "A-6", "A-7"])
        );
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(
            format!(
                "{:?}",
                ok(&mut con, &["SEAT.STATUS", "show", "A-5", "A-6", "A-7"])
            ),
            before
        );
        assert!(before.contains(&int(&long["expires_at_ms"]).to_string()));
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), digest_before);
    });
}

#[test]
fn bad_input_for_every_seat_command_changes_nothing() {
    for_each_server(|kind| {
        let server = Server::start(kind, NO_PASS);
        let mut con = server.connection();
        add_seats(&mut con, "ev", &seat_names(5));
        ok(&mut con, &["SEAT.ADD", "ev", "QTY", "10"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "owner", "A-0"]);
        ok(&mut con, &["SET", "plain", "x"]);
        let long_seat = "S".repeat(65);
        let table: Vec<(Vec<&str>, &str)> = vec![
            (vec!["SEAT.ADD", "ev"], "ERR wrong number of arguments"),
            (
                vec!["SEAT.ADD", "ev", "bad seat"],
                "ERR seat names are 1 to 64",
            ),
            (vec!["SEAT.ADD", "ev", "A,B"], "ERR seat names are 1 to 64"),
            (
                vec!["SEAT.ADD", "ev", &long_seat],
                "ERR seat names are 1 to 64",
            ),
            (
                vec!["SEAT.ADD", "ev", "QTY"],
                "ERR syntax error: QTY needs a value",
            ),
            (
                vec!["SEAT.ADD", "ev", "QTY", "0"],
                "ERR QTY must be an integer from 1",
            ),
            (
                vec!["SEAT.ADD", "ev", "QTY", "-5"],
                "ERR QTY must be an integer from 1",
            ),
            (
                vec!["SEAT.ADD", "ev", "QTY", "4294967296"],
                "ERR QTY must be an integer from 1",
            ),
            (
                vec!["SEAT.ADD", "ev", "QTY", "5", "A-9"],
                "ERR syntax error: name seats or QTY n, not both",
            ),
            (
                vec!["SEAT.ADD", "ev", "TTL", "5"],
                "ERR syntax error: TTL is an option of SEAT.HOLD only and cannot name a seat",
            ),
            (vec!["SEAT.ADD", "plain", "A-1"], "WRONGTYPE"),
            (
                vec!["SEAT.HOLD", "ev", "u"],
                "ERR wrong number of arguments",
            ),
            (vec!["SEAT.HOLD", "ev", "u", "A-9"], "NO_SUCH_SEAT A-9"),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "A-9"],
                "NO_SUCH_SEAT A-9",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "A-1"],
                "ERR seat A-1 is named twice",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "A-0"],
                "SEAT_UNAVAILABLE A-0",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "QTY", "0"],
                "ERR QTY must be an integer from 1",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "QTY", "-1"],
                "ERR QTY must be an integer from 1",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "QTY", "11"],
                "SOLD_OUT 10 left",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "QTY", "1", "QTY", "2"],
                "ERR syntax error: QTY given twice",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "TTL", "0"],
                "ERR TTL must be an integer from 1 to 86400",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "TTL", "-10"],
                "ERR TTL must be an integer from 1 to 86400",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "TTL", "86401"],
                "ERR TTL must be an integer from 1 to 86400",
            ),
            (
                vec![
                    "SEAT.HOLD",
                    "ev",
                    "u",
                    "A-1",
                    "TTL",
                    "99999999999999999999999",
                ],
                "ERR TTL must be an integer",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "TTL"],
                "ERR syntax error: TTL needs a value",
            ),
            (
                vec!["SEAT.HOLD", "ev", "u", "A-1", "QTY", "1"],
                "ERR syntax error: name seats or QTY n, not both",
            ),
            (
                vec!["SEAT.HOLD", "ev", "", "A-1"],
                "ERR user ID must be 1 to 256 bytes",
            ),
            (vec!["SEAT.HOLD", "missing", "u", "A-1"], "NO_SUCH_SEAT A-1"),
            (vec!["SEAT.HOLD", "plain", "u", "A-1"], "WRONGTYPE"),
            (
                vec!["SEAT.RELEASE", "ev", "u"],
                "ERR wrong number of arguments",
            ),
            (
                vec!["SEAT.RELEASE", "ev", "intruder", "A-0"],
                "NOT_OWNER A-0",
            ),
            (vec!["SEAT.RELEASE", "ev", "owner", "A-1"], "NOT_HELD A-1"),
            (
                vec!["SEAT.RELEASE", "ev", "owner", "A-0", "A-1"],
                "NOT_HELD A-1",
            ),
            (
                vec!["SEAT.RELEASE", "ev", "owner", "QTY", "1"],
                "NOT_HELD QTY 1: 0 held",
            ),
            (
                vec!["SEAT.RELEASE", "ev", "owner", "A-0", "TTL", "5"],
                "ERR syntax error: TTL is an option of SEAT.HOLD only and cannot name a seat",
            ),
            (vec!["SEAT.RELEASE", "plain", "u", "A-0"], "WRONGTYPE"),
            (
                vec!["SEAT.CONFIRM", "ev", "intruder", "A-0"],
                "NOT_OWNER A-0",
            ),
            (vec!["SEAT.CONFIRM", "ev", "owner", "A-2"], "NOT_HELD A-2"),
            (
                vec!["SEAT.CONFIRM", "ev", "owner", "Z-1"],
                "NO_SUCH_SEAT Z-1",
            ),
            (
                vec!["SEAT.CONFIRM", "ev", "owner", "A-0", "A-0"],
                "ERR seat A-0 is named twice",
            ),
            (
                vec!["SEAT.CONFIRM", "ev", "owner", "QTY", "0"],
                "ERR QTY must be an integer from 1",
            ),
            (vec!["SEAT.CONFIRM", "plain", "u", "A-0"], "WRONGTYPE"),
            (vec!["SEAT.STATUS", "ev"], "ERR wrong number of arguments"),
            (
                vec!["SEAT.STATUS", "ev", "A-0", "nope"],
                "NO_SUCH_SEAT nope",
            ),
            (vec!["SEAT.STATUS", "plain", "A-0"], "WRONGTYPE"),
            (vec!["SEAT.INFO", "missing"], "NO_SUCH_EVENT"),
            (
                vec!["SEAT.INFO", "ev", "extra"],
                "ERR wrong number of arguments",
            ),
            (vec!["SEAT.INFO", "plain"], "WRONGTYPE"),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "USER-LIMIT", "-1"],
                "ERR USER-LIMIT must be an integer from 0",
            ),
            (
                vec!["QUEUE.CONFIG", "ev", "SET", "HOLD-TTL", "999"],
                "ERR HOLD-TTL must be an integer from 1000",
            ),
        ];
        assert_refused_unchanged(&mut con, &table);
        assert_eq!(int(&ok(&mut con, &["EXISTS", "missing"])), 0);
        // A per-user cap counts held plus sold seats.
        ok(&mut con, &["QUEUE.CONFIG", "ev", "SET", "USER-LIMIT", "2"]);
        ok(&mut con, &["SEAT.CONFIRM", "ev", "owner", "A-0"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "owner", "QTY", "1"]);
        assert_eq!(
            err(&mut con, &["SEAT.HOLD", "ev", "owner", "A-3"]),
            "LIMIT_EXCEEDED 2 held or bought, 1 requested, limit 2"
        );
    });
}
