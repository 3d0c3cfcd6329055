//! Section `instructions`: instructions per call (Ir) under callgrind, the figure that does not
//! move with the machine's load. One server runs under `valgrind --tool=callgrind` with seatq,
//! the benchmark's floor module (`crates/floor-module`) and, when given, redis-cell; Ir counts
//! only inside the functions that read and run requests, write replies and run module timers
//! (see `callgrind`). Each cell is one measurement: `--instr-calls` calls (default 2,000) of one
//! kind, pipelined `--instr-depth` deep (16) on one connection, total Ir / calls. A "call" of
//! the seed's flow is every Redis call their gateway makes for one HTTP request (`gateway`).
//!
//! Columns: the seed's flow as their gateway runs it; the seed's minimal Lua (`benches/lua/*.lua`,
//! one EVALSHA); seatq with the journal on (the default) and off; the floor module (`FLOOR.WRITE`:
//! open + stream append + replicate + notify + reply, the least a journaled write does;
//! `FLOOR.TOUCH` without the append, for journal off; `FLOOR.READ` for reads); one bare command.

mod names;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::{Cmd, Connection, Value};
use seatq_testkit::info::server_version;
use seatq_testkit::reply::{record_field, text};
use seatq_testkit::rng::splitmix64;
use seatq_testkit::server::{build_workspace_library, Server};

use crate::design::{hex32, user_id, Op, Subject, ADMIT_RATE};
use crate::gateway::{self, GatewayScripts};
use crate::options::Options;
use crate::phase::failure;
use crate::progress;
use crate::report::{print_table, ratio, thousands};
use crate::seed::{self, Scripts};
use crate::server_stats::info;
use crate::targets::Findings;
use crate::wire::{decode, Wire};
use names::short_name;
use seatq_testkit::callgrind::{functions, Counter, Dump, FunctionCost};

/// The design columns of the instruction table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Col {
    Flow,
    Lua,
    On,
    Off,
    FloorModule,
    Bare,
}

const COLS: [Col; 6] = [
    Col::Flow,
    Col::Lua,
    Col::On,
    Col::Off,
    Col::FloorModule,
    Col::Bare,
];

/// One measured cell: Ir per call, what ran, and how many calls were refused.
#[derive(Clone)]
struct Cell {
    ir: f64,
    what: String,
    refused: usize,
    first_refusal: Option<String>,
    dump: PathBuf,
    /// Commands per call (flows run several).
    commands: usize,
    /// Round trips per call as the client sends it (the seed's gateway: one per call but for
    /// join's pipeline).
    trips: usize,
    /// What the dump's total was divided by (calls, or tickets called).
    per: usize,
}

/// What a row's calls are, for the goals: a journaled write (compared with FLOOR.WRITE), a read
/// (FLOOR.READ), or neither.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Write,
    Read,
    Other,
}

struct Row {
    name: &'static str,
    class: Class,
    /// A refusal is this row's expected answer (NOT_READY, DUPLICATE, a denied CL.THROTTLE).
    refusal_expected: bool,
    cells: HashMap<Col, Cell>,
}

/// The measurement context: the callgrind'ed server and its connections.
struct Lab {
    /// Declared before the server: its dumps are removed before the server stops.
    counter: Counter,
    _server: Server,
    con: Connection,
    wire: Wire,
    scripts: Scripts,
    gw: GatewayScripts,
    calls: usize,
    depth: usize,
    next_user: usize,
    redis_cell: bool,
}

/// Sends `groups` (each one call's commands) `depth` groups per pipeline, waiting for every
/// reply of a pipeline before sending the next; returns the replies, one Vec per group.
fn send(wire: &mut Wire, groups: &[Vec<Cmd>], depth: usize) -> Vec<Vec<Value>> {
    let mut out = Vec::with_capacity(groups.len());
    for batch in groups.chunks(depth) {
        let bytes: Vec<u8> = batch
            .iter()
            .flatten()
            .flat_map(|c| c.get_packed_command())
            .collect();
        let n: usize = batch.iter().map(Vec::len).sum();
        let (mut raw, mut ends) = (Vec::new(), Vec::new());
        wire.exchange(&bytes, n, &mut raw, &mut ends);
        let mut replies = decode(&raw, &ends).into_iter();
        for g in batch {
            out.push(replies.by_ref().take(g.len()).collect());
        }
    }
    out
}

impl Lab {
    /// `n` new user numbers.
    fn users(&mut self, n: usize) -> Vec<usize> {
        let start = self.next_user;
        self.next_user += n;
        (start..start + n).collect()
    }

    /// Runs `groups` without counting (setup); panics on a refusal unless `tolerate`.
    fn run(&mut self, groups: &[Vec<Cmd>], tolerate: bool) -> Vec<Vec<Value>> {
        let replies = send(&mut self.wire, groups, 1000);
        if !tolerate {
            if let Some(f) = replies.iter().flatten().find_map(failure) {
                panic!("instructions setup refused: {f}");
            }
        }
        replies
    }

    /// Counts `groups`: a few calls of the same kind first (not counted, so one-time work such
    /// as a script's first run stays out), then the measured calls.
    fn measure(&mut self, what: &str, groups: Vec<Vec<Cmd>>) -> (Cell, Vec<Vec<Value>>) {
        let depth = self.depth;
        self.measure_at(what, groups, depth)
    }

    /// A flow of the seed's gateway: measured pipelined like the rest, remembering its round
    /// trips.
    fn measure_flow(&mut self, what: &str, flows: Vec<gateway::Trips>) -> (Cell, Vec<Vec<Value>>) {
        let trips = flows.first().map_or(1, Vec::len);
        let groups = flows
            .into_iter()
            .map(|f| f.into_iter().flatten().collect())
            .collect();
        let (mut cell, replies) = self.measure(what, groups);
        cell.trips = trips;
        (cell, replies)
    }

    fn measure_at(
        &mut self,
        what: &str,
        groups: Vec<Vec<Cmd>>,
        depth: usize,
    ) -> (Cell, Vec<Vec<Value>>) {
        let commands = groups.first().map_or(1, Vec::len);
        let calls = groups.len();
        let wire = &mut self.wire;
        let (dump, replies): (Dump, _) = self.counter.measure(|| send(wire, &groups, depth));
        let refusals: Vec<String> = replies
            .iter()
            .filter_map(|g| g.iter().find_map(failure))
            .collect();
        let cell = Cell {
            ir: dump.total as f64 / calls as f64,
            what: what.to_string(),
            refused: refusals.len(),
            first_refusal: refusals.first().cloned(),
            dump: dump.path,
            commands,
            trips: 1,
            per: calls,
        };
        (cell, replies)
    }
}

fn cmd(words: &[&str]) -> Cmd {
    let mut c = redis::cmd(words[0]);
    for w in &words[1..] {
        c.arg(*w);
    }
    c
}

fn one(c: Cmd) -> Vec<Cmd> {
    vec![c]
}

fn field(v: &Value, name: &str) -> String {
    record_field(v, name)
        .map(text)
        .unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

/// The seatq events of one journal setting.
struct SeatqSide {
    col: Col,
    /// Paused: joins wait, nothing is called.
    waiting: String,
    /// Calls at an unlimited rate once resumed.
    sessions: String,
    /// Empty, for PAUSE/RESUME and CLOSE/REOPEN.
    control: String,
}

fn seatq_side(col: Col) -> SeatqSide {
    let tag = if col == Col::On { "on" } else { "off" };
    SeatqSide {
        col,
        waiting: format!("iw:{{{tag}}}"),
        sessions: format!("is:{{{tag}}}"),
        control: format!("ic:{{{tag}}}"),
    }
}

fn configure(con: &mut Connection, key: &str, journal: bool) {
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg(key)
        .arg("SET")
        .arg("RATE")
        .arg(ADMIT_RATE)
        .arg("BURST")
        .arg(ADMIT_RATE)
        .arg("CAPACITY")
        .arg(0)
        .arg("HEARTBEAT")
        .arg(86_400_000)
        .arg("CLAIM-TTL")
        .arg(86_400_000)
        .arg("JOURNAL")
        .arg(if journal { "on" } else { "off" })
        .query(con)
        .expect("QUEUE.CONFIG");
    let _: i64 = redis::cmd("QUEUE.PAUSE")
        .arg(key)
        .query(con)
        .expect("QUEUE.PAUSE");
}

/// Waits until `key` has no waiting ticket (the timer called them all).
fn wait_called(con: &mut Connection, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n: i64 = redis::cmd("QUEUE.LEN")
            .arg(key)
            .query(con)
            .expect("QUEUE.LEN");
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: {n} tickets still waiting"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every row, measured.
fn measure_rows(lab: &mut Lab) -> Vec<Row> {
    let n = lab.calls;
    let mut rows: Vec<Row> = Vec::new();
    macro_rules! row {
        ($name:expr, $class:expr, $refusal:expr) => {{
            rows.push(Row {
                name: $name,
                class: $class,
                refusal_expected: $refusal,
                cells: HashMap::new(),
            });
            rows.len() - 1
        }};
    }
    let put = |rows: &mut Vec<Row>, r: usize, col: Col, cell: Cell| {
        rows[r].cells.insert(col, cell);
    };
    // Row indices by name.
    let r_enqueue = row!("QUEUE.ENQUEUE, new user", Class::Write, false);
    let r_idem = row!(
        "QUEUE.ENQUEUE .. IDEMPOTENCY, new user",
        Class::Write,
        false
    );
    let r_again = row!("QUEUE.ENQUEUE, already waiting", Class::Other, true);
    let r_status = row!("QUEUE.STATUS ticket (waiting)", Class::Read, false);
    let r_status_user = row!("QUEUE.STATUS USER user (waiting)", Class::Read, false);
    let r_refused = row!("QUEUE.ADMIT, refused poll (NOT_READY)", Class::Other, true);
    let r_call = row!("server call: admit one ticket (timer)", Class::Write, false);
    let r_claim = row!("QUEUE.ADMIT, claim (admitted ticket)", Class::Write, false);
    let r_claimed = row!("QUEUE.ADMIT, already claimed", Class::Other, false);
    let r_verify = row!("QUEUE.VERIFY pass", Class::Read, false);
    let r_hold = row!("SEAT.HOLD user seat PASS pass", Class::Write, false);
    let r_release = row!("SEAT.RELEASE user seat", Class::Write, false);
    let r_renew = row!("QUEUE.RENEW ticket", Class::Write, false);
    let r_confirm = row!("SEAT.CONFIRM user seat", Class::Write, false);
    let r_revoke = row!("QUEUE.REVOKE ticket", Class::Write, false);
    let r_leave = row!("QUEUE.LEAVE ticket (waiting)", Class::Write, false);
    let r_dequeue = row!("QUEUE.DEQUEUE COUNT 1", Class::Write, false);
    let r_seat_add = row!("SEAT.ADD seat (not journaled)", Class::Other, false);
    let r_pause = row!("QUEUE.PAUSE / QUEUE.RESUME", Class::Write, false);
    let r_close = row!("QUEUE.CLOSE / QUEUE.REOPEN", Class::Write, false);
    let r_len = row!("QUEUE.LEN", Class::Read, false);
    let r_range = row!("QUEUE.RANGE 0 10", Class::Read, false);
    let r_info = row!("QUEUE.INFO", Class::Read, false);
    let r_config = row!("QUEUE.CONFIG GET RATE", Class::Read, false);
    let r_seat_status = row!("SEAT.STATUS seat", Class::Read, false);
    let r_seat_info = row!("SEAT.INFO", Class::Read, false);
    let r_ping = row!("reference: PING / FLOOR.NOOP", Class::Other, false);
    let r_ping1 = row!("reference: PING, no pipelining", Class::Other, false);
    let r_touch = row!(
        "reference: write, no journal (FLOOR.TOUCH)",
        Class::Other,
        false
    );
    let r_throttle = row!("reference: CL.THROTTLE allowed", Class::Other, false);

    // ---- floors (the floor module and bare commands) ----
    progress("instructions: floors");
    let seats_bare: Vec<String> = (0..n).map(|i| format!("B-{i}")).collect();
    let users = lab.users(n);
    let (c, _) = lab.measure(
        "FLOOR.WRITE",
        users
            .iter()
            .map(|&u| one(cmd(&["FLOOR.WRITE", "fl:{w}", &user_id(u)])))
            .collect(),
    );
    let floor_write = c.clone();
    for r in [
        r_enqueue, r_idem, r_claim, r_call, r_hold, r_release, r_renew, r_confirm, r_revoke,
        r_leave, r_dequeue, r_pause, r_close,
    ] {
        put(&mut rows, r, Col::FloorModule, c.clone());
    }
    let (c, _) = lab.measure(
        "FLOOR.TOUCH",
        (0..n)
            .map(|_| one(cmd(&["FLOOR.TOUCH", "fl:{t}"])))
            .collect(),
    );
    put(&mut rows, r_touch, Col::FloorModule, c.clone());
    put(&mut rows, r_seat_add, Col::FloorModule, c);
    let (c, _) = lab.measure(
        "FLOOR.READ",
        (0..n)
            .map(|_| one(cmd(&["FLOOR.READ", "fl:{w}"])))
            .collect(),
    );
    for r in [
        r_again,
        r_status,
        r_status_user,
        r_refused,
        r_claimed,
        r_verify,
        r_len,
        r_range,
        r_info,
        r_config,
        r_seat_status,
        r_seat_info,
    ] {
        put(&mut rows, r, Col::FloorModule, c.clone());
    }
    let (c, _) = lab.measure(
        "FLOOR.NOOP",
        (0..n)
            .map(|_| one(cmd(&["FLOOR.NOOP", "fl:{n}"])))
            .collect(),
    );
    put(&mut rows, r_ping, Col::FloorModule, c);
    let (c, _) = lab.measure("PING", (0..n).map(|_| one(cmd(&["PING"]))).collect());
    put(&mut rows, r_ping, Col::Bare, c);
    let (c, _) = lab.measure_at("PING", (0..n).map(|_| one(cmd(&["PING"]))).collect(), 1);
    put(&mut rows, r_ping1, Col::Bare, c);
    let (c, _) = lab.measure(
        "XADD (4 fields)",
        users
            .iter()
            .map(|&u| {
                one(cmd(&[
                    "XADD",
                    "bare:{x}",
                    "*",
                    "token",
                    &hex32(u, 1),
                    "event_id",
                    "bench",
                    "user_id",
                    &user_id(u),
                    "timestamp",
                    "1796000000000",
                ]))
            })
            .collect(),
    );
    for r in [r_enqueue, r_idem, r_leave, r_dequeue] {
        put(&mut rows, r, Col::Bare, c.clone());
    }
    let (c, _) = lab.measure(
        "SET .. EX",
        users
            .iter()
            .map(|&u| {
                one(cmd(&[
                    "SET",
                    &format!("bare:pass:{}", user_id(u)),
                    &hex32(u, 2),
                    "EX",
                    "900",
                ]))
            })
            .collect(),
    );
    for r in [r_claim, r_call, r_renew, r_revoke] {
        put(&mut rows, r, Col::Bare, c.clone());
    }
    let (c, _) = lab.measure(
        "GET",
        users
            .iter()
            .map(|&u| one(cmd(&["GET", &format!("bare:pass:{}", user_id(u))])))
            .collect(),
    );
    for r in [r_claimed, r_verify, r_len, r_config] {
        put(&mut rows, r, Col::Bare, c.clone());
    }
    let (c, _) = lab.measure(
        "EXISTS",
        users
            .iter()
            .map(|&u| one(cmd(&["EXISTS", &format!("bare:pass:{}", user_id(u))])))
            .collect(),
    );
    put(&mut rows, r_again, Col::Bare, c);
    for (r, value) in [
        (r_hold, "HOLD"),
        (r_release, "AVAILABLE"),
        (r_confirm, "SOLD"),
    ] {
        let (c, _) = lab.measure(
            "HSET",
            seats_bare
                .iter()
                .map(|s| one(cmd(&["HSET", "bare:seats", s, value])))
                .collect(),
        );
        put(&mut rows, r, Col::Bare, c);
    }
    let (c, _) = lab.measure(
        "HGET",
        seats_bare
            .iter()
            .map(|s| one(cmd(&["HGET", "bare:seats", s])))
            .collect(),
    );
    put(&mut rows, r_seat_status, Col::Bare, c);
    let (c, _) = lab.measure(
        "HSETNX",
        (0..n)
            .map(|i| {
                one(cmd(&[
                    "HSETNX",
                    "bare:seats2",
                    &format!("N-{i}"),
                    "AVAILABLE",
                ]))
            })
            .collect(),
    );
    put(&mut rows, r_seat_add, Col::Bare, c);
    let (c, _) = lab.measure(
        "HLEN",
        (0..n).map(|_| one(cmd(&["HLEN", "bare:seats"]))).collect(),
    );
    put(&mut rows, r_seat_info, Col::Bare, c);
    // CL.THROTTLE answers [limited, ...]: its refusals are the calls it limited.
    let limited = |mut c: Cell, replies: &[Vec<Value>]| -> Cell {
        c.refused = replies
            .iter()
            .filter(
                |g| matches!(&g[0], Value::Array(v) if matches!(v.first(), Some(Value::Int(1)))),
            )
            .count();
        c.first_refusal = Some("limited".into());
        c
    };
    if lab.redis_cell {
        let (c, replies) = lab.measure(
            "CL.THROTTLE (allowed)",
            (0..n)
                .map(|_| one(cmd(&["CL.THROTTLE", "cell:{a}", "1000000", "1000000", "1"])))
                .collect(),
        );
        put(&mut rows, r_throttle, Col::Bare, limited(c, &replies));
        lab.run(
            &[one(cmd(&["CL.THROTTLE", "cell:{d}", "0", "1", "3600"]))],
            true,
        );
        let (c, replies) = lab.measure(
            "CL.THROTTLE (denied)",
            (0..n)
                .map(|_| one(cmd(&["CL.THROTTLE", "cell:{d}", "0", "1", "3600"])))
                .collect(),
        );
        put(&mut rows, r_refused, Col::Bare, limited(c, &replies));
    }

    // ---- seatq, journal on and off ----
    for side in [seatq_side(Col::On), seatq_side(Col::Off)] {
        let journal = side.col == Col::On;
        progress(&format!(
            "instructions: seatq, journal {}",
            if journal { "on" } else { "off" }
        ));
        let col = side.col;
        for key in [&side.waiting, &side.sessions, &side.control] {
            configure(&mut lab.con, key, journal);
        }
        // The waiting line (paused): joins, polls, refused claims, leaves, dequeues.
        let a = lab.users(n);
        let (c, replies) = lab.measure(
            "QUEUE.ENQUEUE",
            a.iter()
                .map(|&u| one(cmd(&["QUEUE.ENQUEUE", &side.waiting, &user_id(u)])))
                .collect(),
        );
        put(&mut rows, r_enqueue, col, c);
        let tickets: Vec<String> = replies.iter().map(|g| field(&g[0], "ticket")).collect();
        let idem = lab.users(n);
        let (c, _) = lab.measure(
            "QUEUE.ENQUEUE .. IDEMPOTENCY",
            idem.iter()
                .map(|&u| {
                    let user = user_id(u);
                    one(cmd(&[
                        "QUEUE.ENQUEUE",
                        &side.waiting,
                        &user,
                        "IDEMPOTENCY",
                        &format!("req-{user}"),
                    ]))
                })
                .collect(),
        );
        put(&mut rows, r_idem, col, c);
        let (c, replies) = lab.measure(
            "QUEUE.ENQUEUE (existing 1)",
            a.iter()
                .map(|&u| one(cmd(&["QUEUE.ENQUEUE", &side.waiting, &user_id(u)])))
                .collect(),
        );
        let existing = replies
            .iter()
            .filter(|g| record_field(&g[0], "existing").map(text).as_deref() == Some("1"))
            .count();
        let mut c = c;
        c.refused = existing;
        c.first_refusal = Some("existing 1".into());
        put(&mut rows, r_again, col, c);
        // Polls on tickets spread over the line.
        let order: Vec<usize> = (0..n)
            .map(|i| (splitmix64(i as u64) % n as u64) as usize)
            .collect();
        let (c, _) = lab.measure(
            "QUEUE.STATUS",
            order
                .iter()
                .map(|&i| one(cmd(&["QUEUE.STATUS", &side.waiting, &tickets[i]])))
                .collect(),
        );
        put(&mut rows, r_status, col, c);
        let (c, _) = lab.measure(
            "QUEUE.STATUS USER",
            order
                .iter()
                .map(|&i| {
                    one(cmd(&[
                        "QUEUE.STATUS",
                        &side.waiting,
                        "USER",
                        &user_id(a[i]),
                    ]))
                })
                .collect(),
        );
        put(&mut rows, r_status_user, col, c);
        let (c, _) = lab.measure(
            "QUEUE.ADMIT (NOT_READY)",
            order
                .iter()
                .map(|&i| one(cmd(&["QUEUE.ADMIT", &side.waiting, &tickets[i]])))
                .collect(),
        );
        put(&mut rows, r_refused, col, c);
        for (r, words) in [
            (r_len, vec!["QUEUE.LEN"]),
            (r_range, vec!["QUEUE.RANGE", "0", "10"]),
            (r_info, vec!["QUEUE.INFO"]),
            (r_config, vec!["QUEUE.CONFIG", "GET", "RATE"]),
        ] {
            let mut full = vec![words[0], side.waiting.as_str()];
            full.extend(&words[1..]);
            let (c, _) = lab.measure(&words.join(" "), (0..n).map(|_| one(cmd(&full))).collect());
            put(&mut rows, r, col, c);
        }
        let (c, _) = lab.measure(
            "QUEUE.LEAVE",
            tickets
                .iter()
                .map(|t| one(cmd(&["QUEUE.LEAVE", &side.waiting, t])))
                .collect(),
        );
        put(&mut rows, r_leave, col, c);
        let (c, _) = lab.measure(
            "QUEUE.DEQUEUE COUNT 1",
            (0..n)
                .map(|_| one(cmd(&["QUEUE.DEQUEUE", &side.waiting, "COUNT", "1"])))
                .collect(),
        );
        put(&mut rows, r_dequeue, col, c);

        // Sessions: the server calls 2n tickets, then claims, passes, seats.
        let s = lab.users(n);
        let s2 = lab.users(n);
        let joined = lab.run(
            &s.iter()
                .chain(&s2)
                .map(|&u| one(cmd(&["QUEUE.ENQUEUE", &side.sessions, &user_id(u)])))
                .collect::<Vec<_>>(),
            false,
        );
        let stickets: Vec<String> = joined.iter().map(|g| field(&g[0], "ticket")).collect();
        let seats: Vec<String> = (0..n).map(|i| format!("S-{i}")).collect();
        for chunk in seats.chunks(1000) {
            let _: i64 = redis::cmd("SEAT.ADD")
                .arg(&side.sessions)
                .arg(chunk)
                .query(&mut lab.con)
                .expect("SEAT.ADD");
        }
        let sessions = side.sessions.clone();
        let con = &mut lab.con;
        let (dump, ()) = lab.counter.measure(|| {
            let _: i64 = redis::cmd("QUEUE.RESUME")
                .arg(&sessions)
                .query(con)
                .expect("QUEUE.RESUME");
            wait_called(con, &sessions);
        });
        put(
            &mut rows,
            r_call,
            col,
            Cell {
                ir: dump.total as f64 / (2 * n) as f64,
                what: "timer: call, sign pass".into(),
                refused: 0,
                first_refusal: None,
                dump: dump.path,
                commands: 1,
                trips: 1,
                per: 2 * n,
            },
        );
        let (c, replies) = lab.measure(
            "QUEUE.ADMIT (claim)",
            stickets[..n]
                .iter()
                .map(|t| one(cmd(&["QUEUE.ADMIT", &side.sessions, t])))
                .collect(),
        );
        put(&mut rows, r_claim, col, c);
        let passes: Vec<String> = replies.iter().map(|g| field(&g[0], "pass")).collect();
        let (c, _) = lab.measure(
            "QUEUE.ADMIT (existing 1)",
            stickets[..n]
                .iter()
                .map(|t| one(cmd(&["QUEUE.ADMIT", &side.sessions, t])))
                .collect(),
        );
        put(&mut rows, r_claimed, col, c);
        let (c, _) = lab.measure(
            "QUEUE.VERIFY",
            passes
                .iter()
                .map(|p| one(cmd(&["QUEUE.VERIFY", &side.sessions, p])))
                .collect(),
        );
        put(&mut rows, r_verify, col, c);
        let hold = |i: usize, pass: &str| {
            one(cmd(&[
                "SEAT.HOLD",
                &side.sessions,
                &user_id(s[i]),
                &seats[i],
                "PASS",
                pass,
            ]))
        };
        let (c, _) = lab.measure(
            "SEAT.HOLD .. PASS",
            (0..n).map(|i| hold(i, &passes[i])).collect(),
        );
        put(&mut rows, r_hold, col, c);
        let (c, _) = lab.measure(
            "SEAT.RELEASE",
            (0..n)
                .map(|i| {
                    one(cmd(&[
                        "SEAT.RELEASE",
                        &side.sessions,
                        &user_id(s[i]),
                        &seats[i],
                    ]))
                })
                .collect(),
        );
        put(&mut rows, r_release, col, c);
        let (c, replies) = lab.measure(
            "QUEUE.RENEW",
            stickets[..n]
                .iter()
                .map(|t| one(cmd(&["QUEUE.RENEW", &side.sessions, t])))
                .collect(),
        );
        put(&mut rows, r_renew, col, c);
        let renewed: Vec<String> = replies.iter().map(|g| field(&g[0], "pass")).collect();
        lab.run(
            &(0..n).map(|i| hold(i, &renewed[i])).collect::<Vec<_>>(),
            false,
        );
        let (c, _) = lab.measure(
            "SEAT.CONFIRM",
            (0..n)
                .map(|i| {
                    one(cmd(&[
                        "SEAT.CONFIRM",
                        &side.sessions,
                        &user_id(s[i]),
                        &seats[i],
                    ]))
                })
                .collect(),
        );
        put(&mut rows, r_confirm, col, c);
        lab.run(
            &stickets[n..]
                .iter()
                .map(|t| one(cmd(&["QUEUE.ADMIT", &side.sessions, t])))
                .collect::<Vec<_>>(),
            false,
        );
        let (c, _) = lab.measure(
            "QUEUE.REVOKE",
            stickets[n..]
                .iter()
                .map(|t| one(cmd(&["QUEUE.REVOKE", &side.sessions, t])))
                .collect(),
        );
        put(&mut rows, r_revoke, col, c);
        let (c, _) = lab.measure(
            "SEAT.STATUS",
            seats
                .iter()
                .map(|st| one(cmd(&["SEAT.STATUS", &side.sessions, st])))
                .collect(),
        );
        put(&mut rows, r_seat_status, col, c);
        let (c, _) = lab.measure(
            "SEAT.INFO",
            (0..n)
                .map(|_| one(cmd(&["SEAT.INFO", &side.sessions])))
                .collect(),
        );
        put(&mut rows, r_seat_info, col, c);
        let (c, _) = lab.measure(
            "SEAT.ADD",
            (0..n)
                .map(|i| one(cmd(&["SEAT.ADD", &side.sessions, &format!("N-{i}")])))
                .collect(),
        );
        put(&mut rows, r_seat_add, col, c);
        let (c, _) = lab.measure(
            "PAUSE, RESUME alternately",
            (0..n)
                .map(|i| {
                    // the control event starts paused: RESUME first
                    let w = if i % 2 == 0 {
                        "QUEUE.RESUME"
                    } else {
                        "QUEUE.PAUSE"
                    };
                    one(cmd(&[w, &side.control]))
                })
                .collect(),
        );
        put(&mut rows, r_pause, col, c);
        let (c, _) = lab.measure(
            "CLOSE, REOPEN alternately",
            (0..n)
                .map(|i| {
                    let w = if i % 2 == 0 {
                        "QUEUE.CLOSE"
                    } else {
                        "QUEUE.REOPEN"
                    };
                    one(cmd(&[w, &side.control]))
                })
                .collect(),
        );
        put(&mut rows, r_close, col, c);
    }

    // ---- the seed's minimal Lua (benches/lua/*.lua, one EVALSHA each) ----
    progress("instructions: the seed's minimal Lua");
    let ev = "imin";
    let seats: Vec<String> = (0..n).map(|i| format!("M-{i}")).collect();
    seed::setup(&mut lab.con, ev, &seats);
    let scripts = lab.scripts.clone();
    let lua = |op: Op, u: usize, seat: &str| -> Vec<Cmd> {
        let s = Subject {
            user: u,
            ticket: "",
            seat,
            pass: "",
        };
        one(seed::cmd(ev, op, &scripts, &s))
    };
    let a = lab.users(n);
    let a2 = lab.users(n);
    let (c, _) = lab.measure(
        seed::script(Op::Enqueue).0,
        a.iter().map(|&u| lua(Op::Enqueue, u, "")).collect(),
    );
    put(&mut rows, r_enqueue, Col::Lua, c);
    lab.run(
        &a2.iter()
            .map(|&u| lua(Op::Enqueue, u, ""))
            .collect::<Vec<_>>(),
        false,
    );
    let (c, _) = lab.measure(
        "enqueue_atomic_streams.lua (DUPLICATE)",
        a.iter().map(|&u| lua(Op::Enqueue, u, "")).collect(),
    );
    put(&mut rows, r_again, Col::Lua, c);
    let order: Vec<usize> = (0..n)
        .map(|i| (splitmix64(i as u64) % n as u64) as usize)
        .collect();
    let (c, _) = lab.measure(
        seed::script(Op::Status).0,
        order.iter().map(|&i| lua(Op::Status, a[i], "")).collect(),
    );
    put(&mut rows, r_status, Col::Lua, c);
    let (c, _) = lab.measure(
        "ZRANK",
        order
            .iter()
            .map(|&i| one(cmd(&["ZRANK", &seed::waiting_key(ev), &user_id(a[i])])))
            .collect(),
    );
    put(&mut rows, r_status, Col::Bare, c.clone());
    put(&mut rows, r_status_user, Col::Bare, c.clone());
    put(&mut rows, r_range, Col::Bare, {
        let (c, _) = lab.measure(
            "ZRANGE 0 9",
            (0..n)
                .map(|_| one(cmd(&["ZRANGE", &seed::waiting_key(ev), "0", "9"])))
                .collect(),
        );
        c
    });
    let (c, _) = lab.measure(
        "admit_token_bucket.lua (NOT_READY)",
        a2.iter().map(|&u| lua(Op::Admit, u, "")).collect(),
    );
    put(&mut rows, r_refused, Col::Lua, c);
    let (c, _) = lab.measure(
        seed::script(Op::Admit).0,
        a.iter().map(|&u| lua(Op::Admit, u, "")).collect(),
    );
    put(&mut rows, r_claim, Col::Lua, c);
    let (c, _) = lab.measure(
        "admit_token_bucket.lua (pass kept)",
        a.iter().map(|&u| lua(Op::Admit, u, "")).collect(),
    );
    put(&mut rows, r_claimed, Col::Lua, c);
    let (c, _) = lab.measure(
        seed::script(Op::Hold).0,
        (0..n).map(|i| lua(Op::Hold, a[i], &seats[i])).collect(),
    );
    put(&mut rows, r_hold, Col::Lua, c);
    let (c, _) = lab.measure(
        seed::script(Op::Release).0,
        (0..n).map(|i| lua(Op::Release, a[i], &seats[i])).collect(),
    );
    put(&mut rows, r_release, Col::Lua, c);

    // ---- the seed's flows as their gateway runs them ----
    progress("instructions: the seed's gateway flows");
    let ev = "igw";
    let gw = lab.gw.clone();
    gateway::setup_seats(&mut lab.con, ev, &seats);
    lab.run(&[gateway::front_blockers(ev)], false);
    let a = lab.users(n);
    let a2 = lab.users(n);
    let (c, _) = lab.measure_flow(
        "join: 10 calls",
        a.iter()
            .map(|&u| gateway::join(&gw, ev, u, false))
            .collect(),
    );
    put(&mut rows, r_enqueue, Col::Flow, c);
    let joined2 = lab.run(
        &a2.iter()
            .map(|&u| gateway::join(&gw, ev, u, false).concat())
            .collect::<Vec<_>>(),
        false,
    );
    let entry_ids: Vec<String> = joined2
        .iter()
        .map(|g| match &g[0] {
            Value::Array(v) if v.len() == 2 => text(&v[1]),
            other => panic!("join script answered {other:?}"),
        })
        .collect();
    let (c, _) = lab.measure_flow(
        "join again: DUPLICATE, 1 call",
        a.iter().map(|&u| gateway::join(&gw, ev, u, true)).collect(),
    );
    put(&mut rows, r_again, Col::Flow, c);
    let (c, _) = lab.measure_flow(
        "status: 8 calls",
        order.iter().map(|&i| gateway::status(ev, a[i])).collect(),
    );
    put(&mut rows, r_status, Col::Flow, c);
    let (c, replies) = lab.measure_flow(
        "enter refused: 2 calls",
        a2.iter().map(|&u| gateway::enter(ev, u, false)).collect(),
    );
    // Refused by position (> 100): the handler answers 403 from the ZRANK.
    let past_100 = replies
        .iter()
        .filter(|g| matches!(g.get(1), Some(Value::Int(rank)) if *rank >= 100))
        .count();
    let mut c = c;
    c.refused = past_100;
    c.first_refusal = Some("position > 100".into());
    put(&mut rows, r_refused, Col::Flow, c);
    let (c, replies) = lab.measure_flow(
        "enter: 9 calls",
        a.iter().map(|&u| gateway::enter(ev, u, true)).collect(),
    );
    let not_11 = replies
        .iter()
        .filter(|g| !matches!(g.get(1), Some(Value::Int(10))))
        .count();
    assert_eq!(not_11, 0, "every measured enter stands at position 11");
    put(&mut rows, r_claim, Col::Flow, c);
    let (c, _) = lab.measure_flow(
        "hold script",
        (0..n)
            .map(|i| gateway::seat(&gw, ev, Op::Hold, a[i], &seats[i]))
            .collect(),
    );
    put(&mut rows, r_hold, Col::Flow, c);
    let (c, _) = lab.measure_flow(
        "release script",
        (0..n)
            .map(|i| gateway::seat(&gw, ev, Op::Release, a[i], &seats[i]))
            .collect(),
    );
    put(&mut rows, r_release, Col::Flow, c);
    let (c, _) = lab.measure_flow(
        "leave: 6 calls",
        (0..n)
            .map(|i| gateway::leave(ev, a2[i], &entry_ids[i]))
            .collect(),
    );
    put(&mut rows, r_leave, Col::Flow, c);
    let _ = floor_write;
    rows
}

fn k(ir: f64) -> String {
    if ir >= 100_000.0 {
        format!("{:.0}k", ir / 1000.0)
    } else {
        format!("{:.1}k", ir / 1000.0)
    }
}

/// The top `count` functions of a cell by self cost, in Ir per call.
fn top_functions(cell: &Cell, count: usize) -> Vec<(f64, FunctionCost)> {
    functions(&cell.dump, false)
        .into_iter()
        .take(count)
        .map(|f| (f.ir as f64 / cell.per as f64, f))
        .collect()
}

/// The object a function is in, with Redis' binary under its usual name (Debian's
/// redis-server is a link to redis-check-rdb).
fn object_name(object: &str) -> &str {
    if object == "redis-check-rdb" {
        "redis-server"
    } else {
        object
    }
}

pub fn section(o: &Options, f: &mut Findings) {
    let floor = build_floor_module();
    let mut modules = vec![floor];
    let cell_module = redis_cell_path();
    if let Some(cell) = &cell_module {
        modules.push(cell.clone());
    }
    progress("instructions: starting the server under callgrind");
    // Without active rehashing, a dict's rehash is done by the commands that touch it, always
    // the same ones; with it, serverCron does part of it when the clock says so and the
    // commands that find a rehash in progress pay a step and a second table's lookup: ~2% that
    // moved from run to run.
    let (server, counter) = Counter::start(o.kind, &modules, &["--activerehashing", "no"]);
    let mut con = server.connection();
    let version = server_version(&info(&mut con, "server"))
        .map_or(String::new(), |(name, v)| format!("{name} {v}"));
    // The reply buffer's size follows the client's recent peaks in serverCron, on the clock:
    // a reply then fits the buffer or spills into the reply list depending on when the cron
    // ran. Fixed here so that every run pays the same.
    let _: () = redis::cmd("DEBUG")
        .arg("REPLYBUFFER")
        .arg("RESIZING")
        .arg(0)
        .query(&mut con)
        .expect("DEBUG REPLYBUFFER RESIZING 0");
    let scripts = Scripts::load(&mut con);
    let gw = GatewayScripts::load(&mut con);
    let wire = Wire::connect(server.port);
    let mut lab = Lab {
        counter,
        _server: server,
        con,
        wire,
        scripts,
        gw,
        calls: o.instr_calls,
        depth: o.instr_depth,
        next_user: 0,
        redis_cell: cell_module.is_some(),
    };
    let started = Instant::now();
    let rows = measure_rows(&mut lab);
    // SEATQ_INSTR_TSV=<file>: every cell's exact Ir per call, to compare runs.
    if let Some(path) = std::env::var_os("SEATQ_INSTR_TSV") {
        let mut tsv = String::new();
        for row in &rows {
            for col in COLS {
                if let Some(c) = row.cells.get(&col) {
                    tsv.push_str(&format!("{}\t{col:?}\t{}\t{:.1}\n", row.name, c.what, c.ir));
                }
            }
        }
        std::fs::write(&path, tsv).expect("SEATQ_INSTR_TSV");
    }
    println!(
        "\n== Instructions per call (Ir, callgrind) on {version}: {} calls per cell, pipelined {} deep ==",
        thousands(lab.calls as f64),
        lab.depth
    );
    println!(
        "   Ir counted in the server only while it reads and runs requests, writes replies and runs module timers\n   \
         (valgrind --tool=callgrind --toggle-collect=readQueryFromClient|handleClientsWithPendingWrites..|moduleTimerHandler);\n   \
         per call = dump total / calls, including the request's share of reading, parsing and replying.\n   \
         seed flow = every Redis call of one request of their gateway (benches/versus_seed/gateway.rs), pipelined like\n   \
         the rest (their gateway sends them as separate round trips: add about PING's cost per extra call);\n   \
         seed Lua = benches/lua/*.lua by EVALSHA; floor module = crates/floor-module (FLOOR.WRITE / FLOOR.TOUCH / FLOOR.READ);\n   \
         {}",
        if lab.redis_cell {
            "redis-cell: CL.THROTTLE measured on this server."
        } else {
            "redis-cell not loaded (set SEATQ_REDIS_CELL=<libredis_cell.so>): figures of issue 14 used as reference."
        }
    );
    let cell_text = |row: &Row, col: Col| -> String {
        match row.cells.get(&col) {
            Some(c) => k(c.ir),
            None => "-".into(),
        }
    };
    let mut table = Vec::new();
    let mut tops = Vec::new();
    for row in &rows {
        let on = row.cells.get(&Col::On).map(|c| c.ir);
        let floor = row.cells.get(&Col::FloorModule).map(|c| c.ir);
        let lua = row.cells.get(&Col::Lua).map(|c| c.ir);
        let flow = row.cells.get(&Col::Flow).map(|c| c.ir);
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => ratio(a / b),
            _ => "-".into(),
        };
        let top = row
            .cells
            .get(&Col::On)
            .map(|c| {
                top_functions(c, 3)
                    .iter()
                    .map(|(ir, f)| format!("{} {}", short_name(&f.name), k(*ir)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.push(vec![
            row.name.to_string(),
            cell_text(row, Col::Flow),
            cell_text(row, Col::Lua),
            cell_text(row, Col::On),
            cell_text(row, Col::Off),
            cell_text(row, Col::FloorModule),
            format!(
                "{} {}",
                cell_text(row, Col::Bare),
                row.cells.get(&Col::Bare).map_or("", |c| c.what.as_str())
            ),
            r(on, floor),
            r(on, lua),
            r(on, flow),
        ]);
        if !top.is_empty() {
            tops.push(vec![row.name.to_string(), top]);
        }
    }
    print_table(
        "Ir per call (k = 1,000 instructions); ratios of seatq with the journal on",
        1,
        &[
            "command",
            "seed flow",
            "seed Lua",
            "seatq on",
            "seatq off",
            "floor module",
            "bare command",
            "on/floor",
            "on/Lua",
            "on/flow",
        ],
        &table,
    );
    print_table(
        "Top functions of seatq (journal on) by self cost, Ir per call",
        2,
        &["command", "functions"],
        &tops,
    );
    // Per request as sent: the gateway's round trips each cost a request's reading and
    // replying again (PING alone, minus its share in a pipeline, is that cost).
    let ir_of = |name: &str, col: Col| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.cells.get(&col))
            .map(|c| c.ir)
    };
    if let (Some(p1), Some(p16)) = (
        ir_of("reference: PING, no pipelining", Col::Bare),
        ir_of("reference: PING / FLOOR.NOOP", Col::Bare),
    ) {
        let trip = p1 - p16;
        let sent: Vec<Vec<String>> = rows
            .iter()
            .filter_map(|row| {
                let flow = row.cells.get(&Col::Flow)?;
                let on = row.cells.get(&Col::On)?;
                let (f, s) = (flow.ir + trip * flow.trips as f64, on.ir + trip);
                Some(vec![
                    row.name.to_string(),
                    flow.what.clone(),
                    flow.trips.to_string(),
                    k(f),
                    k(s),
                    ratio(s / f),
                ])
            })
            .collect();
        print_table(
            &format!(
                "Per request as sent, without pipelining: + {} Ir per round trip (PING alone {} - in a pipeline of {} {})",
                thousands(trip),
                thousands(p1),
                lab.depth,
                thousands(p16)
            ),
            2,
            &["command", "seed flow", "round trips", "seed flow", "seatq on", "seatq / seed"],
            &sent,
        );
    }
    let what: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|row| {
            COLS.iter().filter_map(move |col| {
                let c = row.cells.get(col)?;
                let unexpected = (c.refused > 0) != row.refusal_expected
                    && !matches!(col, Col::FloorModule | Col::Bare);
                if c.refused == 0 && !unexpected {
                    return None;
                }
                Some(vec![
                    row.name.to_string(),
                    format!("{col:?}"),
                    c.what.clone(),
                    c.commands.to_string(),
                    match &c.first_refusal {
                        Some(why) if c.refused > 0 => format!("{} ({why})", c.refused),
                        _ => c.refused.to_string(),
                    },
                    if unexpected { "UNEXPECTED" } else { "" }.to_string(),
                ])
            })
        })
        .collect();
    print_table(
        "Cells with refusals (expected ones are the rows' point; UNEXPECTED marks others); every other cell answered every call",
        3,
        &["command", "column", "runs", "commands", "refused", ""],
        &what,
    );
    for name in [
        "QUEUE.ENQUEUE, new user",
        "QUEUE.STATUS ticket (waiting)",
        "QUEUE.ADMIT, refused poll (NOT_READY)",
        "QUEUE.ADMIT, claim (admitted ticket)",
        "SEAT.HOLD user seat PASS pass",
        "server call: admit one ticket (timer)",
    ] {
        let Some(row) = rows.iter().find(|r| r.name == name) else {
            continue;
        };
        let Some(cell) = row.cells.get(&Col::On) else {
            continue;
        };
        let calls = cell.per;
        let self_cost: Vec<Vec<String>> = functions(&cell.dump, false)
            .into_iter()
            .take(15)
            .map(|f| {
                vec![
                    format!("{:.0}", f.ir as f64 / calls as f64),
                    format!("{:.1}%", 100.0 * f.ir as f64 / (cell.ir * calls as f64)),
                    short_name(&f.name),
                    object_name(&f.object).to_string(),
                ]
            })
            .collect();
        // Self cost by object: the module, the server, the allocator, libc.
        let mut by_object: Vec<(String, u64)> = Vec::new();
        for f in functions(&cell.dump, false) {
            let object = object_name(&f.object).to_string();
            match by_object.iter_mut().find(|(o, _)| *o == object) {
                Some(entry) => entry.1 += f.ir,
                None => by_object.push((object, f.ir)),
            }
        }
        by_object.sort_by_key(|o| std::cmp::Reverse(o.1));
        let objects = by_object
            .iter()
            .take(5)
            .map(|(o, ir)| {
                format!(
                    "{} {:.0} ({:.0}%)",
                    if o.is_empty() { "?" } else { o },
                    *ir as f64 / calls as f64,
                    100.0 * *ir as f64 / (cell.ir * calls as f64)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        print_table(
            &format!(
                "{name}, journal on: {} Ir per call; by object: {objects}; top functions by self cost",
                thousands(cell.ir)
            ),
            2,
            &["Ir/call", "share", "function", "object"],
            &self_cost,
        );
        let inclusive: Vec<Vec<String>> = functions(&cell.dump, true)
            .into_iter()
            .filter(|f| {
                (f.object.starts_with("libseatq") || f.object == "module (Rust)")
                    && f.name.starts_with("seatq::")
                    && !f.name.contains("dispatch")
            })
            .take(12)
            .map(|f| {
                vec![
                    format!("{:.0}", f.ir as f64 / calls as f64),
                    short_name(&f.name),
                ]
            })
            .collect();
        print_table(
            "   ... and seatq's functions by inclusive cost (what each costs with all it calls)",
            1,
            &["Ir/call", "function"],
            &inclusive,
        );
    }
    let scale = status_at_scale(&mut lab, &o.instr_waiting);
    f.instructions = Some(crate::targets::InstructionFindings::from_rows(
        rows.iter()
            .map(|r| {
                (
                    r.name,
                    r.class == Class::Write,
                    r.cells.get(&Col::On).map(|c| c.ir),
                    r.cells.get(&Col::FloorModule).map(|c| c.ir),
                    r.cells.get(&Col::Lua).map(|c| c.ir),
                    r.cells.get(&Col::Bare).map(|c| c.ir),
                )
            })
            .collect(),
        scale,
        lab.redis_cell,
    ));
    println!("\ninstructions: {:.0} s", started.elapsed().as_secs_f64());
}

/// QUEUE.STATUS Ir per call at each number of waiting users (journal on, tickets spread over
/// the line), with a bare ZRANK on a zset of the same size.
fn status_at_scale(lab: &mut Lab, levels: &[usize]) -> Vec<(usize, f64, f64)> {
    let key = "iscale:{on}";
    configure(&mut lab.con, key, true);
    let mut tickets: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut cells: Vec<Cell> = Vec::new();
    for &waiting in levels {
        progress(&format!(
            "instructions: STATUS at {} waiting",
            thousands(waiting as f64)
        ));
        while tickets.len() < waiting {
            let n = (waiting - tickets.len()).min(100_000);
            let users: Vec<usize> = (tickets.len()..tickets.len() + n).collect();
            let groups: Vec<Vec<Cmd>> = users
                .iter()
                .map(|&u| one(cmd(&["QUEUE.ENQUEUE", key, &user_id(u)])))
                .collect();
            let replies = lab.run(&groups, false);
            tickets.extend(replies.iter().map(|g| field(&g[0], "ticket")));
            let mut z = redis::cmd("ZADD");
            z.arg("iscale:zset");
            for &u in &users {
                z.arg(u).arg(user_id(u));
            }
            let _: i64 = z.query(&mut lab.con).expect("ZADD");
        }
        let picks: Vec<usize> = (0..lab.calls)
            .map(|i| (splitmix64(i as u64 ^ 0xabc) % waiting as u64) as usize)
            .collect();
        let (c, _) = lab.measure(
            "QUEUE.STATUS",
            picks
                .iter()
                .map(|&i| one(cmd(&["QUEUE.STATUS", key, &tickets[i]])))
                .collect(),
        );
        let (z, _) = lab.measure(
            "ZRANK",
            picks
                .iter()
                .map(|&i| one(cmd(&["ZRANK", "iscale:zset", &user_id(i)])))
                .collect(),
        );
        progress(&format!(
            "instructions: STATUS at {} waiting: {:.0} Ir per call (ZRANK {:.0})",
            thousands(waiting as f64),
            c.ir,
            z.ir
        ));
        out.push((waiting, c.ir, z.ir));
        cells.push(c);
    }
    let base = out.first().map_or(1.0, |l| l.1);
    let zbase = out.first().map_or(1.0, |l| l.2);
    let rows: Vec<Vec<String>> = out
        .iter()
        .map(|&(w, ir, z)| {
            vec![
                thousands(w as f64),
                thousands(ir),
                ratio(ir / base),
                thousands(z),
                ratio(z / zbase),
            ]
        })
        .collect();
    print_table(
        "QUEUE.STATUS Ir per call by number of waiting users (journal on; tickets spread over the line)",
        1,
        &["waiting", "QUEUE.STATUS", "x first", "ZRANK", "x first"],
        &rows,
    );
    // Where a level costs more than the first: the functions whose self cost grew most.
    let calls = lab.calls as f64;
    let per_call = |c: &Cell| -> HashMap<String, f64> {
        let mut m = HashMap::new();
        for f in functions(&c.dump, false) {
            *m.entry(format!(
                "{} ({})",
                short_name(&f.name),
                object_name(&f.object)
            ))
            .or_insert(0.0) += f.ir as f64 / calls;
        }
        m
    };
    if let Some(first) = cells.first() {
        let base_fns = per_call(first);
        for (level, c) in out.iter().zip(&cells).skip(1) {
            if c.ir <= 1.05 * first.ir {
                continue;
            }
            let fns = per_call(c);
            let mut grew: Vec<(f64, &String, f64)> = fns
                .iter()
                .map(|(name, &ir)| (ir - base_fns.get(name).copied().unwrap_or(0.0), name, ir))
                .collect();
            grew.sort_by(|a, b| b.0.total_cmp(&a.0));
            let rows: Vec<Vec<String>> = grew
                .iter()
                .take(10)
                .map(|(d, name, ir)| vec![name.to_string(), format!("{d:+.0}"), format!("{ir:.0}")])
                .collect();
            print_table(
                &format!(
                    "   STATUS at {} waiting costs {} more than at {}: the functions that grew",
                    thousands(level.0 as f64),
                    thousands(c.ir - first.ir),
                    thousands(out[0].0 as f64)
                ),
                1,
                &["function (object)", "Ir/call more", "Ir/call"],
                &rows,
            );
        }
    }
    out
}

/// The floor module (crates/floor-module), built next to seatq's library.
fn build_floor_module() -> PathBuf {
    progress("instructions: building crates/floor-module");
    build_workspace_library("seatq-floor", "libseatq_floor.so")
}

/// redis-cell's module, when `SEATQ_REDIS_CELL` names it.
fn redis_cell_path() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("SEATQ_REDIS_CELL")?);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "[versus_seed] SEATQ_REDIS_CELL={} does not exist: CL.THROTTLE not measured",
            path.display()
        );
        None
    }
}
