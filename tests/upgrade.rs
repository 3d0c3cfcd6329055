//! The upgrade from the first release (encoding version 1) on real servers: the RDB, the AOF
//! rewritten without the RDB preamble (`SEATQ.APPLY <key> SNAPSHOT <blob>`) and the AOF of
//! plain effects that the first release wrote during a sale in progress
//! (`tests/fixtures/v1/`, made by `generate.py` there with the first release's module), loaded
//! into this release. What the first release showed for each user, seat and setting is in
//! `v1.json`; whatever had to stay live is due in 2100, so the fixture means the same whenever
//! the test runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::Connection;
use seatq_testkit::*;
use serde_json::Value as Json;

const MAIN: &str = "{sale}:main";
const PRESALE: &str = "presale";
const OPENED: &str = "{tour}:opened";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

/// What the first release showed (v1.json).
fn recorded() -> Json {
    let text = std::fs::read_to_string(fixture("v1.json")).expect("v1.json");
    serde_json::from_str(&text).expect("v1.json parses")
}

fn events(v1: &Json) -> Vec<String> {
    v1["events"].as_object().unwrap().keys().cloned().collect()
}

/// The users of an event as the first release showed them.
fn users<'a>(v1: &'a Json, key: &str) -> Vec<(&'a String, &'a Json)> {
    v1["events"][key]["users"]
        .as_object()
        .unwrap()
        .iter()
        .collect()
}

fn far(v1: &Json) -> i64 {
    v1["far_ms"].as_i64().unwrap()
}

fn from_rdb(kind: ServerKind) -> Server {
    Server::start_with_files(kind, &[], &[(&fixture("v1.rdb"), "dump.rdb")])
}

/// A server started on a first-release AOF as a single `appendonly.aof` (which the server
/// turns into its multi-part form at start).
fn from_aof(kind: ServerKind, name: &str) -> Server {
    Server::start_with_files(
        kind,
        &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"],
        &[(&fixture(name), "appendonly.aof")],
    )
}

fn now_ms(con: &mut Connection) -> i64 {
    let t = items(&ok(con, &["TIME"]));
    int(&t[0]) * 1000 + int(&t[1]) / 1000
}

fn status_of(con: &mut Connection, key: &str, user: &str) -> redis::RedisResult<redis::Value> {
    run(con, &["QUEUE.STATUS", key, "USER", user])
}

/// A user still live in the first release: waiting, or admitted with a session and a pass.
fn live(user: &Json) -> bool {
    user["state"] == "waiting" || user.get("pass").is_some()
}

/// What two loads of the same stored events must agree on: each event's DEBUG DIGEST-VALUE
/// and the ticket of each user of the first release who has one (live).
fn identity(con: &mut Connection, v1: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in events(v1) {
        out.insert(format!("digest {key}"), digest(con, &key));
    }
    for key in events(v1) {
        for (user, _) in users(v1, &key) {
            if let Ok(st) = status_of(con, &key, user) {
                out.insert(format!("ticket {key} {user}"), text(&record(&st)["ticket"]));
            }
        }
    }
    out
}

/// Checks everything the first release showed against what this release shows after loading.
fn check_loaded_as_recorded(con: &mut Connection, v1: &Json) {
    let far = far(v1);
    let now = now_ms(con);
    for key in events(v1) {
        let ev = &v1["events"][&key];
        assert_eq!(text(&ok(con, &["TYPE", &key])), "seatq-evt", "{key}");
        // Every setting the first release had.
        let config = record(&ok(con, &["QUEUE.CONFIG", &key, "GET"]));
        for (field, value) in ev["config"].as_object().unwrap() {
            assert_eq!(
                int(&config[field]),
                value.as_i64().unwrap(),
                "{key} {field}"
            );
        }
        let info = record(&ok(con, &["QUEUE.INFO", &key]));
        let qv1 = &ev["queue_info"];
        let prequeue = key == PRESALE;
        let waiting = qv1["waiting"].as_i64().unwrap();
        assert_eq!(
            (int(&info["waiting"]), int(&info["prequeue"])),
            (waiting, if prequeue { waiting } else { 0 }),
            "{key}: waiting and pre-queue"
        );
        assert_eq!(int(&info["opened"]), i64::from(!prequeue), "{key}");
        for total in ["joined_total", "left_total", "expired_total"] {
            assert_eq!(
                int(&info[total]),
                qv1[total].as_i64().unwrap(),
                "{key} {total}"
            );
        }
        let tickets = users(v1, &key).len() as i64;
        assert_eq!(
            int(&info["next_serial"]),
            tickets,
            "{key}: a serial per ticket"
        );
        let sessions = users(v1, &key)
            .iter()
            .filter(|(_, u)| u.get("pass").is_some())
            .count();
        assert_eq!(int(&info["sessions"]), sessions as i64, "{key}");
        assert_eq!(int(&info["sessions_unclaimed"]), 0, "{key}");

        // Waiting users keep their places, their DATA and their heartbeat; sessions their pass.
        // (QUEUE.RANGE shows a pre-queue's order only once it opens.)
        let entries: BTreeMap<String, _> = if prequeue {
            let e = err(con, &["QUEUE.RANGE", &key, "0", "100"]);
            assert!(e.starts_with("NOT_OPEN"), "{key}: {e}");
            BTreeMap::new()
        } else {
            let range = record(&ok(con, &["QUEUE.RANGE", &key, "0", "100"]));
            items(&range["entries"])
                .iter()
                .map(|e| {
                    let e = record(e);
                    (text(&e["user"]), e)
                })
                .collect()
        };
        for (user, u) in users(v1, &key) {
            let old_ticket = u["ticket"].as_str().unwrap();
            let e = err(con, &["QUEUE.STATUS", &key, old_ticket]);
            assert!(
                e.starts_with("NO_SUCH_TICKET"),
                "{key} {user}: the first release's ticket form no longer resolves: {e}"
            );
            if u["state"] == "waiting" {
                let st = record(&status_of(con, &key, user).unwrap());
                assert_eq!(text(&st["state"]), "waiting", "{key} {user}");
                let want = u["position"].as_i64().unwrap();
                if prequeue {
                    // Hidden until opening; still waiting, so its heartbeat survived.
                    assert_eq!(int(&st["position"]), 0, "{key} {user}");
                    continue;
                }
                assert_eq!(int(&st["position"]), want, "{key} {user}: position");
                let entry = &entries[user.as_str()];
                assert_eq!(int(&entry["position"]), want);
                assert_eq!(int(&entry["heartbeat_expires_at_ms"]), far, "{key} {user}");
                let data = record(&entries[user.as_str()]["data"]);
                let data: BTreeMap<String, String> =
                    data.iter().map(|(k, v)| (k.clone(), text(v))).collect();
                let want: BTreeMap<String, String> = u["data"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(data, want, "{key} {user}: DATA");
                assert_eq!(text(&entries[user.as_str()]["ticket"]), text(&st["ticket"]));
            } else if let Some(pass) = u.get("pass") {
                let st = record(&status_of(con, &key, user).unwrap());
                assert_eq!(text(&st["state"]), "admitted", "{key} {user}");
                assert_eq!(int(&st["claimed"]), 1, "{key} {user}");
                assert_eq!(text(&st["pass"]), pass.as_str().unwrap(), "{key} {user}");
                assert_eq!(int(&st["pass_expires_at_ms"]), far, "{key} {user}");
            } else {
                // Ended (left, expired, taken by a worker): nothing live is addressed by USER.
                let e = status_of(con, &key, user).unwrap_err();
                assert!(error_line(&e).starts_with("NO_SUCH_TICKET"), "{key} {user}");
            }
        }

        // Seats, holds and sales as recorded.
        for (seat, s) in ev["seats"].as_object().unwrap() {
            let st = record(&items(&ok(con, &["SEAT.STATUS", &key, seat]))[0]);
            assert_eq!(
                text(&st["state"]),
                s["state"].as_str().unwrap(),
                "{key} {seat}"
            );
            assert_eq!(
                text(&st["holder"]),
                s["holder"].as_str().unwrap_or(""),
                "{key} {seat}"
            );
            assert_eq!(
                int(&st["expires_at_ms"]),
                s["expires_at_ms"].as_i64().unwrap()
            );
        }
        if let Some(seat_info) = ev["seat_info"].as_object() {
            let info = record(&ok(con, &["SEAT.INFO", &key]));
            for (field, value) in seat_info {
                assert_eq!(
                    int(&info[field]),
                    value.as_i64().unwrap(),
                    "{key} SEAT.INFO {field}"
                );
            }
        }

        // Idempotency keys: DUPLICATE naming the ticket to its own live user, to nobody else.
        let before = digest(con, &key);
        for (idem, r) in ev["idempotency"].as_object().unwrap() {
            if r["expires_at_ms"].as_i64().unwrap() < now + 60_000 {
                continue; // made by a join seven days before: gone by now
            }
            let user = r["user"].as_str().unwrap();
            let got = err(con, &["QUEUE.ENQUEUE", &key, user, "IDEMPOTENCY", idem]);
            if live(&ev["users"][user]) {
                let st = record(&status_of(con, &key, user).unwrap());
                assert_eq!(
                    got,
                    format!("DUPLICATE {}", text(&st["ticket"])),
                    "{key} {idem}"
                );
            } else {
                assert_eq!(
                    got, "DUPLICATE the idempotency key was already used",
                    "{key} {idem}"
                );
            }
            let got = err(
                con,
                &["QUEUE.ENQUEUE", &key, "intruder", "IDEMPOTENCY", idem],
            );
            assert_eq!(
                got, "DUPLICATE the idempotency key was already used",
                "{key} {idem}"
            );
        }
        assert_eq!(
            digest(con, &key),
            before,
            "{key}: refused joins change nothing"
        );
    }
}

#[test]
fn every_event_of_the_first_release_loads_as_it_was() {
    let v1 = recorded();
    for_each_server(|kind| {
        let server = from_rdb(kind);
        let mut con = server.connection();
        let mut keys: Vec<String> = items(&ok(&mut con, &["KEYS", "*"]))
            .iter()
            .map(text)
            .collect();
        keys.sort();
        let mut want: Vec<String> = v1["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().into())
            .collect();
        want.sort();
        assert_eq!(keys, want, "every key loads");
        check_loaded_as_recorded(&mut con, &v1);

        // A live session's pass from the first release: SEAT.HOLD takes it as the exact pass of
        // that user's session (REQUIRE-PASS is on); QUEUE.VERIFY checks signed passes only.
        let pass = |user: &str| v1["events"][MAIN]["users"][user]["pass"].as_str().unwrap();
        let ended = v1["events"][MAIN]["users"]["s-leave"]["ended_pass"]
            .as_str()
            .unwrap();
        assert_refused_unchanged(
            &mut con,
            &[
                (vec!["SEAT.HOLD", MAIN, "w02", "A7"], "PASS_REQUIRED"),
                (
                    vec!["SEAT.HOLD", MAIN, "w02", "A7", "PASS", pass("w01")],
                    "PASS_INVALID",
                ),
                (
                    vec!["SEAT.HOLD", MAIN, "s-leave", "A7", "PASS", ended],
                    "PASS_INVALID",
                ),
            ],
        );
        let old_main = journal(&mut con, "{sale}:main:journal").len();
        let held = record(&ok(
            &mut con,
            &["SEAT.HOLD", MAIN, "w01", "A7", "PASS", pass("w01")],
        ));
        assert_eq!(int(&held["seats"]), 1);
        let claim = record(&ok(&mut con, &["QUEUE.ADMIT", MAIN, "USER", "w01"]));
        assert_eq!(
            (text(&claim["pass"]), int(&claim["existing"])),
            (pass("w01").into(), 1)
        );
        let verify = record(&ok(&mut con, &["QUEUE.VERIFY", MAIN, pass("w01")]));
        assert_eq!(text(&verify["state"]), "invalid", "not a signed pass");
        // USER-LIMIT 4 still counts what the first release's holds and sales hold: w02 has 2
        // sold and 2 held.
        let e = err(
            &mut con,
            &["SEAT.HOLD", MAIN, "w02", "A8", "PASS", pass("w02")],
        );
        assert!(e.starts_with("LIMIT_EXCEEDED"), "{e}");

        // The journals: a key with a hash tag keeps its stream and continues it; a key without
        // one starts `{key}.journal` and leaves the first release's `{key}:journal` as it was.
        let old_presale = journal(&mut con, "{presale}:journal").len();
        let joined = record(&ok(&mut con, &["QUEUE.ENQUEUE", PRESALE, "p-new"]));
        assert_eq!(
            (
                text(&joined["state"]),
                int(&joined["position"]),
                int(&joined["existing"])
            ),
            ("waiting".into(), 0, 0),
            "a pre-queue join"
        );
        let main_journal = journal(&mut con, "{sale}:main:journal");
        assert_eq!(main_journal.len(), old_main + 1, "the hold is journaled");
        assert_eq!(field(&main_journal.last().unwrap().1, "type"), "held");
        assert_eq!(journal(&mut con, "{presale}:journal").len(), old_presale);
        let presale_journal = journal(&mut con, "{presale}.journal");
        assert_eq!(presale_journal.len(), 1);
        assert_eq!(field(&presale_journal[0].1, "type"), "joined");
    });
}

#[test]
fn two_loads_of_the_same_stored_events_derive_the_same_tickets() {
    let v1 = recorded();
    for_each_server(|kind| {
        let mut a = from_rdb(kind);
        let b = from_rdb(kind);
        let first = identity(&mut a.connection(), &v1);
        assert_eq!(
            identity(&mut b.connection(), &v1),
            first,
            "two servers, one RDB"
        );
        a.restart();
        assert_eq!(
            identity(&mut a.connection(), &v1),
            first,
            "the same server restarted"
        );

        // The AOF rewritten by the first release without the RDB preamble holds the same
        // events as SNAPSHOT blobs: the same tickets, the same events.
        let aof = from_aof(kind, "v1-snapshot.aof");
        let mut acon = aof.connection();
        assert_eq!(
            identity(&mut acon, &v1),
            first,
            "the AOF's snapshots convert alike"
        );
        check_loaded_as_recorded(&mut acon, &v1);
        // An AOF rewritten by the first release with the RDB preamble (the default) starts with
        // the same RDB.
        let preamble = from_aof(kind, "v1.rdb");
        assert_eq!(
            identity(&mut preamble.connection(), &v1),
            first,
            "the RDB preamble"
        );

        // A replica that converted its own copy of the RDB, then syncs with the primary.
        let replica = from_rdb(kind);
        let mut rcon = replica.connection();
        assert_eq!(
            identity(&mut rcon, &v1),
            first,
            "the replica's own conversion"
        );
        ok(&mut rcon, &["REPLICAOF", "127.0.0.1", &a.port.to_string()]);
        wait_until(Duration::from_secs(20), || {
            let info = text(&ok(&mut rcon, &["INFO", "replication"]));
            info.contains("master_link_status:up") && !info.contains("master_sync_in_progress:1")
        });
        assert_eq!(
            identity(&mut rcon, &v1),
            first,
            "the replica after its sync"
        );
    });
}

#[test]
fn the_upgraded_sale_goes_on_and_persists() {
    let v1 = recorded();
    for_each_server(|kind| {
        let mut primary = from_rdb(kind);
        let replica = primary.start_replica(&[]);
        let (mut con, mut rcon) = (primary.connection(), replica.connection());
        let loaded = identity(&mut con, &v1);
        assert_eq!(identity(&mut rcon, &v1), loaded, "the replica's full sync");
        let pass = |user: &str| v1["events"][MAIN]["users"][user]["pass"].as_str().unwrap();
        let ticket = |con: &mut Connection, user: &str| {
            text(&record(&status_of(con, MAIN, user).unwrap())["ticket"])
        };

        // Joins: a newcomer queues behind the nine waiting; a waiting user of the first release
        // who joins again gets their ticket back (how a client holding an old ticket recovers);
        // a user whose ticket ended joins at the back.
        let joined = record(&ok(&mut con, &["QUEUE.ENQUEUE", MAIN, "newcomer"]));
        assert_eq!(int(&joined["position"]), 10);
        assert!(
            text(&joined["ticket"]).starts_with("18."),
            "the next serial"
        );
        let again = record(&ok(&mut con, &["QUEUE.ENQUEUE", MAIN, "w06"]));
        assert_eq!((int(&again["existing"]), int(&again["position"])), (1, 3));
        assert_eq!(text(&again["ticket"]), ticket(&mut con, "w06"));
        let back = record(&ok(&mut con, &["QUEUE.ENQUEUE", MAIN, "x-left"]));
        assert_eq!((int(&back["existing"]), int(&back["position"])), (0, 11));

        // A session of the first release buys with its old pass (CONFIRM-ENDS-SESSION is off:
        // the session goes on); another ends it, and its pass stops working.
        ok(
            &mut con,
            &["SEAT.HOLD", MAIN, "w01", "A7", "PASS", pass("w01")],
        );
        let sold = record(&ok(&mut con, &["SEAT.CONFIRM", MAIN, "w01", "A7", "A4"]));
        assert_eq!(int(&sold["sold"]), 2);
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", MAIN, "USER", "w02"])), 1);
        let e = err(
            &mut con,
            &["SEAT.HOLD", MAIN, "w02", "A8", "PASS", pass("w02")],
        );
        assert!(e.starts_with("PASS_INVALID"), "{e}");

        // QUEUE.RENEW gives a first-release session a signed pass, due when the old one was
        // (a converted session cannot last longer); the old pass then stops working.
        let renewed = record(&ok(&mut con, &["QUEUE.RENEW", MAIN, "USER", "w03"]));
        assert_eq!(text(&renewed["pass"]).matches('.').count(), 2);
        assert_eq!(int(&renewed["expires_at_ms"]), far(&v1));
        let e = err(
            &mut con,
            &["SEAT.HOLD", MAIN, "w03", "A8", "PASS", pass("w03")],
        );
        assert!(e.starts_with("PASS_INVALID"), "{e}");
        ok(
            &mut con,
            &[
                "SEAT.HOLD",
                MAIN,
                "w03",
                "A2",
                "PASS",
                &text(&renewed["pass"]),
            ],
        );

        // The server calls the line again once there is room: w04 and w05, in their order.
        ok(&mut con, &["QUEUE.CONFIG", MAIN, "SET", "CAPACITY", "4"]);
        wait_until(Duration::from_secs(10), || {
            text(&record(&status_of(&mut con, MAIN, "w05").unwrap())["state"]) == "admitted"
        });
        ok(&mut con, &["QUEUE.PAUSE", MAIN]);
        assert_eq!(
            text(&record(&status_of(&mut con, MAIN, "w04").unwrap())["state"]),
            "admitted"
        );
        assert_eq!(
            int(&record(&status_of(&mut con, MAIN, "w06").unwrap())["position"]),
            1
        );
        let claim = record(&ok(&mut con, &["QUEUE.ADMIT", MAIN, "USER", "w04"]));
        let jwt = text(&claim["pass"]);
        assert_eq!(jwt.matches('.').count(), 2, "a signed pass: {jwt}");
        let verify = record(&ok(&mut con, &["QUEUE.VERIFY", MAIN, &jwt]));
        assert_eq!(text(&verify["state"]), "valid");
        ok(&mut con, &["SEAT.HOLD", MAIN, "w04", "A8", "PASS", &jwt]);
        ok(&mut con, &["SEAT.CONFIRM", MAIN, "w04", "A8"]);
        // w05 claims too: nothing is left to lapse (a no-show would end it later).
        ok(&mut con, &["QUEUE.ADMIT", MAIN, "USER", "w05"]);
        let seat = record(&items(&ok(&mut con, &["SEAT.STATUS", MAIN, "A8"]))[0]);
        assert_eq!(
            (text(&seat["state"]), text(&seat["holder"])),
            ("sold".into(), "w04".into())
        );
        let kinds: Vec<String> = journal(&mut con, "{sale}:main:journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .collect();
        // w02's LEAVE made room for w04 at once, CAPACITY 4 for w05: both calls journaled.
        let tail = ["paused", "claimed", "held", "sold", "claimed"];
        assert!(kinds.ends_with(&tail.map(String::from)), "{kinds:?}");
        let last_end = kinds.iter().rposition(|k| k == "session_ended").unwrap();
        let calls = kinds[last_end..]
            .iter()
            .filter(|k| *k == "admitted")
            .count();
        assert_eq!(calls, 2, "{kinds:?}");
        // The pre-queue event stays a pre-queue and takes joins.
        let p = record(&ok(&mut con, &["QUEUE.ENQUEUE", PRESALE, "p-new"]));
        assert_eq!(
            (text(&p["state"]), int(&p["position"])),
            ("waiting".into(), 0)
        );
        ok(&mut con, &["QUEUE.ENQUEUE", OPENED, "o-new"]);

        // Everything holds over a SAVE and restart, DEBUG RELOAD, and on the replica.
        let mut after = identity(&mut con, &v1);
        for key in ["newcomer", "x-left"] {
            after.insert(format!("ticket {MAIN} {key}"), ticket(&mut con, key));
        }
        let whole = settled(&mut con);
        wait_until(Duration::from_secs(10), || {
            text(&ok(&mut rcon, &["DEBUG", "DIGEST"])) == whole
        });
        ok(&mut con, &["SAVE"]);
        primary.restart();
        let mut con = primary.connection();
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            whole,
            "SAVE and restart"
        );
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            whole,
            "DEBUG RELOAD"
        );
        let mut now = identity(&mut con, &v1);
        for key in ["newcomer", "x-left"] {
            now.insert(format!("ticket {MAIN} {key}"), ticket(&mut con, key));
        }
        assert_eq!(now, after);
        // The restarted primary's RDB is version 2 now: a fresh replica syncs it.
        let replica = primary.start_replica(&[]);
        assert_eq!(
            text(&ok(&mut replica.connection(), &["DEBUG", "DIGEST"])),
            whole
        );
    });
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The first release let a user whose pass had expired join again before its timer ended the
/// session; an RDB saved (or a DUMP made, or a MIGRATE sent) in that window holds both the
/// lapsed session and the user's new waiting ticket. It loads with the session ended.
#[test]
fn a_lapsed_session_whose_user_joined_again_loads_as_ended() {
    let v1 = recorded();
    let key = "{edge}:rejoin";
    let edge = &v1["dumps"][key];
    let payload = unhex(edge["payload_hex"].as_str().unwrap());
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        // Loaded and looked at in one transaction: the server calls the line on its own (RATE
        // 100) as soon as it may.
        let users: Vec<(&String, &Json)> = edge["users"].as_object().unwrap().iter().collect();
        let mut look = redis::pipe();
        look.atomic()
            .cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(&payload)
            .ignore();
        for (user, _) in &users {
            look.cmd("QUEUE.STATUS").arg(key).arg("USER").arg(*user);
        }
        look.cmd("QUEUE.INFO").arg(key);
        let replies: Vec<redis::Value> = look
            .query(&mut con)
            .unwrap_or_else(|e| panic!("RESTORE of the first release's DUMP: {e}"));
        for ((user, u), reply) in users.iter().zip(&replies) {
            let st = record(reply);
            assert_eq!(text(&st["state"]), "waiting", "{user}");
            assert_eq!(
                int(&st["position"]),
                u["position"].as_i64().unwrap(),
                "{user}"
            );
        }
        let info = record(replies.last().unwrap());
        assert_eq!((int(&info["waiting"]), int(&info["sessions"])), (2, 0));
        // Paused (its own upkeep step may call the line first), the event stays as it is while
        // its digest is compared across a reload.
        ok(&mut con, &["QUEUE.PAUSE", key]);
        let before = digest(&mut con, key);
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(digest(&mut con, key), before);
    });
}

/// The first release's AOF of effects (its changes as `SEATQ.APPLY <key> JOIN ...`,
/// `CONFIG`, `HOLD`, ...): this release cannot replay them, and the server must not start
/// without the sale they hold.
#[test]
fn an_aof_of_the_first_release_effects_stops_the_server_instead_of_losing_the_sale() {
    for_each_server(|kind| {
        let dir = std::env::temp_dir().join(format!(
            "seatq-upgrade-{}-{}",
            kind.name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture("v1-commands.aof"), dir.join("appendonly.aof")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(kind.binary())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--aof-use-rdb-preamble", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("server.log"))
            .arg("--loadmodule")
            .arg(seatq_testkit::server::module_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        assert!(
            status.is_some_and(|s| !s.success()),
            "the server started on the first release's effects ({status:?}); log:\n{log}"
        );
        assert!(
            log.contains("the first release's effects") && log.contains("BGREWRITEAOF"),
            "the log says why and what to do:\n{log}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// What the first release had no setting for (CLAIM-TTL, SESSION-MAX, CLOSES-AT) a converted
/// event takes from the module configs of the server that converts it, like a new event.
#[test]
fn settings_the_first_release_lacked_come_from_the_module_configs() {
    for_each_server(|kind| {
        let server = Server::start_with_files(
            kind,
            &[
                "--seatq.claim-ttl-ms",
                "600000",
                "--seatq.session-max-ms",
                "7200000",
            ],
            &[(&fixture("v1.rdb"), "dump.rdb")],
        );
        let mut con = server.connection();
        for key in [MAIN, PRESALE, OPENED] {
            let config = record(&ok(&mut con, &["QUEUE.CONFIG", key, "GET"]));
            assert_eq!(int(&config["claim-ttl"]), 600_000, "{key}");
            assert_eq!(int(&config["session-max"]), 7_200_000, "{key}");
            assert_eq!(int(&config["closes-at"]), 0, "{key}");
        }
    });
}

/// Upgraded on its AOF without a rewrite: the first release's events stay in the AOF's base
/// (an RDB preamble or SNAPSHOT blobs) and this release's effects follow in its incremental
/// part. Every start converts the base again, the same way, and replays the effects on it.
#[test]
fn an_aof_whose_base_is_the_first_release_replays_this_release_effects() {
    let v1 = recorded();
    for_each_server(|kind| {
        for base in ["v1-snapshot.aof", "v1.rdb"] {
            let mut server = from_aof(kind, base);
            let mut con = server.connection();
            let pass = v1["events"][MAIN]["users"]["w01"]["pass"].as_str().unwrap();
            let newcomer = record(&ok(&mut con, &["QUEUE.ENQUEUE", MAIN, "newcomer"]));
            ok(&mut con, &["SEAT.HOLD", MAIN, "w01", "A7", "PASS", pass]);
            ok(&mut con, &["SEAT.CONFIRM", MAIN, "w01", "A7"]);
            ok(&mut con, &["QUEUE.LEAVE", MAIN, "USER", "w02"]);
            wait_until(Duration::from_secs(10), || {
                text(&record(&status_of(&mut con, MAIN, "w04").unwrap())["state"]) == "admitted"
            });
            ok(&mut con, &["QUEUE.ADMIT", MAIN, "USER", "w04"]);
            ok(&mut con, &["QUEUE.PAUSE", MAIN]);
            ok(&mut con, &["QUEUE.ENQUEUE", PRESALE, "p-new"]);
            let before = identity(&mut con, &v1);
            let whole = settled(&mut con);
            server.restart();
            let mut con = server.connection();
            assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), whole, "{base}");
            assert_eq!(identity(&mut con, &v1), before, "{base}");
            let st = record(&status_of(&mut con, MAIN, "newcomer").unwrap());
            assert_eq!(text(&st["ticket"]), text(&newcomer["ticket"]), "{base}");
        }
    });
}
