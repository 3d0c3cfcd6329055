//! Section 3: latency under an open-loop mixed workload, once through seatq and once through
//! the seed's scripts per round.

mod open_loop;

use crate::design::{Design, Kind, Op};
use crate::options::Options;
use crate::phase::{fill, rotation, Bench};
use crate::progress;
use crate::report::{median, print_table, refused, thousands};
use crate::server_stats::flushall;
use crate::targets::Findings;
use open_loop::{latency_seat, open_loop, LatencyPlan, LatencyRun, HOLDER};
use seatq_testkit::reply::{record_field, text};

use crate::seatq;

pub fn section(b: &mut Bench, o: &Options, f: &mut Findings) {
    flushall(&mut b.con);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-monitor-threshold")
        .arg(1)
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .query(&mut b.con)
        .expect("CONFIG SET latency-monitor-threshold, slowlog-log-slower-than");
    let designs = [
        Design::new("seatq, journal on", Kind::Seatq, "lat:{seatq}"),
        Design::new("seed Lua (EVALSHA)", Kind::Seed, "lat"),
    ];
    let admits_per_run = (o.rate * 0.1 * o.seconds) as usize;
    let status_from = o.rounds * admits_per_run;
    let prefilled = status_from + 100_000;
    let seats: Vec<String> = (0..o.rounds)
        .flat_map(|run| (0..o.connections).map(move |t| latency_seat(run, t)))
        .collect();
    let mut tickets = Vec::new();
    let mut passes = Vec::new();
    for d in &designs {
        progress(&format!(
            "latency: prefilling {} with {} users",
            d.label,
            thousands(prefilled as f64)
        ));
        d.setup(&mut b.con, &seats);
        if d.kind != Kind::Seatq {
            tickets.push(fill(b, d, 0..prefilled));
            passes.push(Vec::new());
            continue;
        }
        // seatq: the seat holders join first, then the line; the server calls exactly the
        // holders and the users the ADMIT connection will claim (CAPACITY), the others wait
        // (STATUS polls them, new joins queue behind them). The holders claim their passes.
        let holders = fill(b, d, HOLDER..HOLDER + o.connections);
        tickets.push(fill(b, d, 0..prefilled));
        let _: () = redis::cmd("QUEUE.CONFIG")
            .arg(&d.key)
            .arg("SET")
            .arg("CAPACITY")
            .arg(o.connections + status_from)
            .query(&mut b.con)
            .expect("QUEUE.CONFIG SET CAPACITY");
        seatq::call_all(&mut b.con, &d.key, (prefilled - status_from) as i64);
        passes.push(
            holders
                .iter()
                .map(|t| {
                    let v: redis::Value = redis::cmd("QUEUE.ADMIT")
                        .arg(&d.key)
                        .arg(t)
                        .query(&mut b.con)
                        .expect("QUEUE.ADMIT (holder)");
                    record_field(&v, "pass").map(text).expect("holder's pass")
                })
                .collect(),
        );
    }
    let mut runs: Vec<Vec<LatencyRun>> = vec![Vec::new(), Vec::new()];
    for round in 0..o.rounds {
        for k in rotation(designs.len(), round) {
            let d = &designs[k];
            progress(&format!(
                "latency: round {}/{}, {}",
                round + 1,
                o.rounds,
                d.label
            ));
            let plan = LatencyPlan {
                design: d,
                scripts: &b.scripts,
                tickets: &tickets[k],
                admit_from: round * admits_per_run,
                status_from,
                prefilled,
                new_users: 100_000_000 + round * 100_000_000,
                run: round,
                passes: &passes[k],
            };
            runs[k].push(open_loop(&mut b.con, b.server.port, o, &plan));
        }
    }
    println!(
        "\n== 3. Latency, open loop: {} requests/s offered for {} s over {} connections, {} rounds \
         (medians; the order alternates) ==\n   \
         20% ENQUEUE, 60% STATUS, 10% ADMIT (one connection, in line order; seatq: claims of tickets the server \
         called), 10% HOLD/RELEASE; {} users waiting beforehand.\n   \
         Latency counts from each request's scheduled send time (no coordinated omission); \
         send lag = how late requests left\n   \
         (their connection still waiting for a reply, or no CPU); CPU = % of one core during \
         the run (server: INFO cpu; client: this process);\n   \
         server stall max = the longest event of the server's latency monitor (ms, threshold \
         1 ms) and the command (SLOWLOG) or event;\n   \
         0 = none: the tail is then waiting (for CPU or behind other requests), not one slow \
         command.",
        thousands(o.rate),
        o.seconds,
        o.connections,
        o.rounds,
        thousands(prefilled as f64),
    );
    let med =
        |v: &[LatencyRun], get: &dyn Fn(&LatencyRun) -> f64| median(v.iter().map(get).collect());
    let rows: Vec<Vec<String>> = designs
        .iter()
        .zip(&runs)
        .map(|(d, r)| {
            vec![
                d.label.to_string(),
                thousands(med(r, &|x| x.achieved)),
                format!("{:.3}", med(r, &|x| x.pct[0])),
                format!("{:.3}", med(r, &|x| x.pct[1])),
                r.iter()
                    .map(|x| format!("{:.3}", x.pct[1]))
                    .collect::<Vec<_>>()
                    .join(" "),
                format!("{:.3}", med(r, &|x| x.pct[2])),
                format!("{:.3}", r.iter().map(|x| x.pct[3]).fold(0.0, f64::max)),
                format!("{:.3}", med(r, &|x| x.lag_p99)),
                format!("{:.0}%", med(r, &|x| x.server_cpu)),
                format!("{:.0}%", med(r, &|x| x.client_cpu)),
                r.iter()
                    .map(|x| &x.server_stall)
                    .max()
                    .filter(|s| s.0 > 0)
                    .map_or("0".into(), |s| format!("{} ({})", s.0, s.1)),
                refused(r.iter().map(|x| (x.failures, &x.first_failure))),
            ]
        })
        .collect();
    print_table(
        "Latency (ms)",
        1,
        &[
            "design",
            "achieved/s",
            "p50",
            "p99",
            "(each round)",
            "p99.9",
            "max (all rounds)",
            "send lag p99",
            "server CPU",
            "client CPU",
            "server stall max",
            "refused",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = Op::ALL
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut row = vec![op.name().to_string()];
            for r in &runs {
                row.push(format!("{:.3}", med(r, &|x| x.per_op[i].1)));
                row.push(format!("{:.3}", med(r, &|x| x.per_op[i].2)));
            }
            row
        })
        .collect();
    print_table(
        "Latency by request kind (ms)",
        1,
        &["request", "seatq p50", "seatq p99", "seed p50", "seed p99"],
        &rows,
    );
    f.latency = Some((
        o.rate,
        med(&runs[0], &|x| x.achieved),
        med(&runs[0], &|x| x.pct[1]),
        med(&runs[1], &|x| x.pct[1]),
    ));
    f.latency_by_op = Op::ALL
        .iter()
        .enumerate()
        .map(|(i, &op)| {
            (
                op,
                [
                    med(&runs[0], &|x| x.per_op[i].1),
                    med(&runs[0], &|x| x.per_op[i].2),
                    med(&runs[1], &|x| x.per_op[i].1),
                    med(&runs[1], &|x| x.per_op[i].2),
                ],
            )
        })
        .collect();
    flushall(&mut b.con);
}
