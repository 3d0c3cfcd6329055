//! Section 2: the line at scale, STATUS server time and memory per waiting user at 1,000 to
//! 1,000,000 waiting users.

use std::time::Instant;

use redis::Cmd;
use seatq_testkit::rng::splitmix64;

use crate::design::{user_id, Design, Kind, Op, Subject};
use crate::options::Options;
use crate::phase::{fill, run_phase, Bench};
use crate::progress;
use crate::report::{median, print_table, ratio, thousands};
use crate::seed;
use crate::server_stats::{flushall, memory_usage, used_memory};
use crate::targets::Findings;

/// The most users the seed's layout is filled with (about 5 KB each).
const SEED_MAX_USERS: usize = 2_000_000;

/// STATUS calls per timed phase of the scale section, and their pipeline depth.
const SCALE_CALLS: usize = 20_000;
const SCALE_DEPTH: usize = 100;

struct Level {
    waiting: usize,
    status_usec: Vec<f64>,
    floor_usec: f64,
    memory_per_user: f64,
    usage_per_user: f64,
    fill_secs: f64,
}

/// Fills `design`'s line level by level; at each level: memory per user, and STATUS server
/// time (median of `rounds` phases of SCALE_CALLS calls on users spread over the line).
fn scale_design(b: &mut Bench, design: &Design, levels: &[usize], rounds: usize) -> Vec<Level> {
    flushall(&mut b.con);
    design.setup(&mut b.con, &[]);
    let base_memory = used_memory(&mut b.con);
    let base_usage = memory_usage(&mut b.con, &design.key);
    let floor = Design::new("floor", Kind::Floor, &design.key);
    let mut tickets = Vec::new();
    let mut out = Vec::new();
    let mut joined = 0;
    let scripts = b.scripts.clone();
    for &waiting in levels {
        progress(&format!(
            "scale: {} to {}",
            design.label,
            thousands(waiting as f64)
        ));
        let t = Instant::now();
        tickets.extend(fill(b, design, joined..waiting));
        let fill_secs = t.elapsed().as_secs_f64();
        joined = waiting;
        let con = &mut b.con;
        let memory_per_user = (used_memory(con) - base_memory) as f64 / waiting as f64;
        let usage = if design.kind == Kind::Seatq {
            (memory_usage(con, &design.key) - base_usage) as f64
        } else {
            // One user's stream and dedupe key, times N, plus the whole waiting zset.
            let user = user_id(0);
            let one = memory_usage(con, &seed::stream_key(&design.key, &user))
                + memory_usage(con, &seed::dedupe_key(&user));
            (one as f64) * waiting as f64
                + memory_usage(con, &seed::waiting_key(&design.key)) as f64
        };
        let calls = |d: &Design| -> Vec<Cmd> {
            (0..SCALE_CALLS)
                .map(|c| {
                    let n = (splitmix64(c as u64) % waiting as u64) as usize;
                    let s = Subject {
                        user: n,
                        ticket: tickets.get(n).map(String::as_str).unwrap_or(""),
                        seat: "",
                        pass: "",
                    };
                    d.cmd(Op::Status, &scripts, &s)
                })
                .collect()
        };
        let mut status_usec = Vec::new();
        let mut floor_usec = Vec::new();
        for _ in 0..rounds {
            let cmds = calls(design);
            let (s, _) = run_phase(b, design.stat(Op::Status), SCALE_DEPTH, &cmds);
            assert_eq!(s.failures, 0, "STATUS refused: {:?}", s.first_failure);
            status_usec.push(s.usec);
            if design.kind == Kind::Seed {
                let cmds = calls(&floor);
                let (s, _) = run_phase(b, "zrank", SCALE_DEPTH, &cmds);
                floor_usec.push(s.usec);
            }
        }
        out.push(Level {
            waiting,
            status_usec,
            floor_usec: median(floor_usec),
            memory_per_user,
            usage_per_user: usage / waiting as f64,
            fill_secs,
        });
    }
    flushall(&mut b.con);
    out
}

pub fn section(b: &mut Bench, o: &Options, f: &mut Findings) {
    let mut levels: Vec<usize> = [1_000, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|&n| n < o.memory_users)
        .collect();
    levels.push(o.memory_users);
    // seatq's line as the product measures it (QUEUE.ENQUEUE key user, journal off); the
    // same with an IDEMPOTENCY key per join (memory only, at the largest level), the record
    // that matches the seed's dedupe key; and the seed's layout from its own enqueue script.
    let seatq = Design::new("seatq", Kind::Seatq, "scale")
        .without_journal()
        .without_idempotency();
    let seatq_idem = Design::new("seatq + IDEMPOTENCY", Kind::Seatq, "scale").without_journal();
    let seatq_journal =
        Design::new("seatq, journal on", Kind::Seatq, "scale").without_idempotency();
    let seed = Design::new("seed layout", Kind::Seed, "scale");
    let ours = scale_design(b, &seatq, &levels, o.rounds);
    let with_idem = scale_design(b, &seatq_idem, &levels[levels.len() - 1..], 0);
    let with_journal = scale_design(b, &seatq_journal, &levels[levels.len() - 1..], 0);
    // The seed's layout takes ~5 KB per user: past 2,000,000 it would not fit this machine.
    let seed_levels: Vec<usize> = levels
        .iter()
        .copied()
        .filter(|&n| n <= SEED_MAX_USERS)
        .collect();
    let theirs = scale_design(b, &seed, &seed_levels, o.rounds);
    println!(
        "\n== 2. The line at scale: 36-character user IDs; STATUS = median of {} x {} calls \
         (pipelined by {}) on users spread over the line ==",
        o.rounds,
        thousands(SCALE_CALLS as f64),
        SCALE_DEPTH
    );
    let base = |l: &[Level]| median(l[0].status_usec.clone());
    let base_floor = theirs[0].floor_usec;
    let seed_at = |waiting: usize| theirs.iter().find(|l| l.waiting == waiting);
    let rows: Vec<Vec<String>> = ours
        .iter()
        .map(|a| {
            let ua = median(a.status_usec.clone());
            f.status.push((a.waiting, ua));
            let Some(b) = seed_at(a.waiting) else {
                let mut row = vec![
                    thousands(a.waiting as f64),
                    format!("{ua:.2}"),
                    ratio(ua / base(&ours)),
                    a.status_usec
                        .iter()
                        .map(|u| format!("{u:.2}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ];
                row.extend(["-", "-", "-", "-"].map(String::from));
                return row;
            };
            let ub = median(b.status_usec.clone());
            vec![
                thousands(a.waiting as f64),
                format!("{ua:.2}"),
                ratio(ua / base(&ours)),
                a.status_usec
                    .iter()
                    .map(|u| format!("{u:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                format!("{ub:.2}"),
                ratio(ub / base(&theirs)),
                format!("{:.2}", b.floor_usec),
                ratio(b.floor_usec / base_floor),
            ]
        })
        .collect();
    let vs = format!("x {}", thousands(levels[0] as f64));
    print_table(
        "STATUS server time (us/call) by number of waiting users",
        1,
        &[
            "waiting",
            "QUEUE.STATUS",
            &vs,
            "(each round)",
            "seed status_position.lua",
            &vs,
            "ZRANK",
            &vs,
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = ours
        .iter()
        .map(|a| {
            let idem = with_idem.iter().find(|l| l.waiting == a.waiting);
            let journal = with_journal.iter().find(|l| l.waiting == a.waiting);
            let b = seed_at(a.waiting);
            vec![
                thousands(a.waiting as f64),
                format!("{:.1}", a.memory_per_user),
                format!("{:.1}", a.usage_per_user),
                journal.map_or("-".into(), |l| format!("{:.1}", l.memory_per_user)),
                idem.map_or("-".into(), |l| format!("{:.1}", l.memory_per_user)),
                b.map_or("-".into(), |b| format!("{:.1}", b.memory_per_user)),
                b.map_or("-".into(), |b| format!("{:.1}", b.usage_per_user)),
                b.map_or("-".into(), |b| ratio(b.memory_per_user / a.memory_per_user)),
                match b {
                    Some(b) => format!("{:.1} / {:.1}", a.fill_secs, b.fill_secs),
                    None => format!("{:.1} / -", a.fill_secs),
                },
            ]
        })
        .collect();
    print_table(
        "Memory per waiting user (bytes): used_memory delta / N, and MEMORY USAGE / N.\n  \
         seatq: QUEUE.ENQUEUE key user, journal off (MEMORY USAGE of the event key); \
         journal on: the same with the event's journal (one entry per join); \
         + IDEMPOTENCY: each join also records an idempotency key, like the seed's dedupe key.\n  \
         seed: the keys of its enqueue script (MEMORY USAGE: one user's stream + dedupe key, \
         times N, plus the waiting zset)",
        1,
        &[
            "waiting",
            "seatq used_memory",
            "seatq MEMORY USAGE",
            "seatq journal on used_memory",
            "seatq + IDEMPOTENCY used_memory",
            "seed used_memory",
            "seed MEMORY USAGE",
            "seed / seatq",
            "fill s (seatq / seed)",
        ],
        &rows,
    );
    // The seed's figure is from its largest level (at most SEED_MAX_USERS).
    let (a, b) = (ours.last().expect("level"), theirs.last().expect("level"));
    f.memory = Some((a.waiting, a.memory_per_user, b.memory_per_user));
    f.memory_journal = with_journal.last().map(|l| (l.waiting, l.memory_per_user));
}
