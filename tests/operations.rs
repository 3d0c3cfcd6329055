//! What an operator touches: INFO seatq, module configuration, and the client example.

use std::collections::HashMap;
use std::time::Duration;

use redis::Connection;
use seatq_testkit::*;

/// INFO seatq as field -> value (dict fields keep their `k=v,...` text).
fn info(con: &mut Connection) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg("seatq").query(con).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn dict(info: &HashMap<String, String>, field: &str) -> HashMap<String, f64> {
    info.get(field)
        .unwrap_or_else(|| panic!("INFO seatq has no {field}: {info:?}"))
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

#[test]
fn info_seatq_reports_counters_histograms_and_gauges() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "RATE",
                "1000",
                "HEARTBEAT",
                "1000",
                "CAPACITY",
                "1",
                "REQUIRE-PASS",
                "off",
            ],
        );
        for i in 0..10 {
            ok(
                &mut con,
                &[
                    "QUEUE.ENQUEUE",
                    "ev",
                    &format!("u{i}"),
                    "IDEMPOTENCY",
                    &format!("k{i}"),
                ],
            );
        }
        for _ in 0..3 {
            err(&mut con, &["QUEUE.ENQUEUE", "ev", "x", "IDEMPOTENCY", "k1"]);
        }
        ok(&mut con, &["QUEUE.ADMIT", "ev", "USER", "u0"]);
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2", "A-3"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "u1", "A-1"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "u2", "A-2", "TTL", "1"]);
        err(&mut con, &["SEAT.HOLD", "ev", "u3", "A-1"]);
        ok(&mut con, &["QUEUE.PAUSE", "other"]);
        ok(&mut con, &["QUEUE.ENQUEUE", "other", "u"]);
        let i = info(&mut con);
        let n = |f: &str| i[f].parse::<i64>().unwrap();
        assert_eq!(
            (
                n("seatq_events"),
                n("seatq_tickets_waiting"),
                n("seatq_sessions"),
                n("seatq_holds")
            ),
            (2, 10, 1, 2)
        );
        let effects = dict(&i, "seatq_effects_total");
        assert_eq!(
            (
                effects["created"],
                effects["joined"],
                effects["admitted"],
                effects["claimed"],
                effects["held"]
            ),
            (2.0, 11.0, 1.0, 1.0, 2.0)
        );
        let errors = dict(&i, "seatq_errors_total");
        assert_eq!(
            (errors["DUPLICATE"], errors["SEAT_UNAVAILABLE"]),
            (3.0, 1.0)
        );
        let enqueue = dict(&i, "seatq_cmd_queue_enqueue");
        assert_eq!((enqueue["calls"], enqueue["failed"]), (14.0, 3.0));
        let buckets = dict(&i, "seatq_latency_queue_enqueue");
        assert_eq!(buckets["le_inf"], 14.0, "the +Inf bucket counts every call");
        let mut bounds: Vec<(f64, f64)> = buckets
            .iter()
            .filter(|(k, _)| *k != "le_inf")
            .map(|(k, v)| (k[3..].parse::<f64>().unwrap(), *v))
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            bounds.windows(2).all(|w| w[0].1 <= w[1].1),
            "cumulative: {bounds:?}"
        );
        assert!(n("seatq_journal_entries_total") >= 14);
        // The timer expires the 1-second hold and the lapsed tickets; gauges follow.
        let mut last = HashMap::new();
        let settled = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            last = info(&mut con);
            // Left waiting: only the ticket of "other", whose heartbeat is the default 60 s.
            dict(&last, "seatq_effects_total")["hold_expired"] == 1.0
                && last["seatq_holds"] == "1"
                && last["seatq_tickets_waiting"] == "1"
        });
        assert!(settled, "gauges after the timer ran: {last:?}");
        let last_n = |f: &str| last[f].parse::<i64>().unwrap();
        let runs = last_n("seatq_timer_runs_total");
        assert!(runs > 0);
        let run_buckets = dict(&last, "seatq_timer_runs_latency");
        assert_eq!(
            run_buckets["le_inf"], runs as f64,
            "every run in the +Inf bucket"
        );
        assert!(run_buckets["le_1000000"] <= run_buckets["le_inf"]);
        assert!(last_n("seatq_timer_runs_usec") > 0);
        // Gauges follow keys that leave and enter the keyspace.
        ok(&mut con, &["COPY", "ev", "ev2"]);
        assert_eq!(info(&mut con)["seatq_events"], "3");
        ok(&mut con, &["DEL", "ev", "ev2", "other"]);
        let i = info(&mut con);
        assert_eq!(
            (
                i["seatq_events"].as_str(),
                i["seatq_holds"].as_str(),
                i["seatq_sessions"].as_str()
            ),
            ("0", "0", "0")
        );
    });
}

#[test]
fn every_module_config_is_settable_at_load_and_at_run_time_and_validated() {
    let configs = [
        ("heartbeat-ms", "HEARTBEAT", "5000", "999"),
        ("idempotency-ttl-ms", "IDEMPOTENCY-TTL", "2000", "0"),
        ("journal", "JOURNAL", "0", "2"),
        ("journal-maxage-ms", "JOURNAL-MAXAGE", "60000", "-1"),
        ("rate", "RATE", "7", "0"),
        ("hold-ttl-ms", "HOLD-TTL", "30000", "86400001"),
        ("user-limit", "USER-LIMIT", "4", "-4"),
        ("burst", "BURST", "3", "0"),
        ("capacity", "CAPACITY", "100", "x"),
        ("pass-ttl-ms", "PASS-TTL", "120000", "10"),
        ("require-pass", "REQUIRE-PASS", "1", "5"),
        ("confirm-ends-session", "CONFIRM-ENDS-SESSION", "0", "7"),
        ("opens-at-ms", "OPENS-AT", "1700000000000", "-3"),
        ("claim-ttl-ms", "CLAIM-TTL", "5000", "999"),
        ("session-max-ms", "SESSION-MAX", "7200000", "0"),
        (
            "closes-at-ms",
            "CLOSES-AT",
            "4100000000000",
            "4102444800001",
        ),
        ("timer-interval-ms", "", "50", "5"),
    ];
    for_each_server(|kind| {
        // Module arguments set the defaults at load time.
        let server = Server::start(kind, &["heartbeat-ms", "5000", "seatq.rate", "7"]);
        let mut con = server.connection();
        let get = |con: &mut Connection, name: &str| {
            text(&items(&ok(con, &["CONFIG", "GET", &format!("seatq.{name}")]))[1])
        };
        assert_eq!(
            (get(&mut con, "heartbeat-ms"), get(&mut con, "rate")),
            ("5000".to_string(), "7".to_string())
        );
        for (name, field, good, bad) in configs {
            let key = format!("seatq.{name}");
            ok(&mut con, &["CONFIG", "SET", &key, good]);
            assert_eq!(get(&mut con, name), good, "{key}");
            assert!(
                run(&mut con, &["CONFIG", "SET", &key, bad]).is_err(),
                "{key} accepted {bad}"
            );
            assert_eq!(get(&mut con, name), good, "{key} unchanged by a bad value");
            if !field.is_empty() {
                // A new event takes the default; QUEUE.CONFIG shows it.
                let event = format!("ev-{name}");
                ok(&mut con, &["QUEUE.ENQUEUE", &event, "someone"]);
                let got = int(
                    &record(&ok(&mut con, &["QUEUE.CONFIG", &event, "GET", field]))
                        [&field.to_ascii_lowercase()],
                );
                assert_eq!(got.to_string(), good, "{field} of a new event");
            }
        }
        // Pass keys: validated on every set, never shown in a bad value's error.
        let keys = "k2:0123456789abcdef0123456789abcdef k1:fedcba9876543210fedcba9876543210";
        ok(&mut con, &["CONFIG", "SET", "seatq.pass-keys", keys]);
        assert_eq!(get(&mut con, "pass-keys"), keys);
        for bad in [
            "short:abc",
            "nocolon",
            "event:0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                run(&mut con, &["CONFIG", "SET", "seatq.pass-keys", bad]).is_err(),
                "{bad}"
            );
        }
        assert_eq!(get(&mut con, "pass-keys"), keys);
        // A bad module argument refuses to load, with a reason in the log.
        for (module_args, reason) in [
            (
                &["heartbeat-ms", "12"][..],
                "seatq.heartbeat-ms must be an integer from",
            ),
            (
                &["timer-interval-ms", "5"],
                "seatq.timer-interval-ms must be",
            ),
            (&["colour", "5"], "unknown seatq module argument 'colour'"),
            (
                &["pass-keys", "k1:0123456789abcdef0123456789abcdef"],
                "not as a module argument",
            ),
        ] {
            // A unix socket only: `--port 0` alone makes the server exit before it loads
            // modules.
            let socket =
                std::env::temp_dir().join(format!("seatq-args-{}.sock", std::process::id()));
            let failed = std::process::Command::new(kind.binary())
                .args(["--port", "0", "--save", "", "--unixsocket"])
                .arg(&socket)
                .arg("--loadmodule")
                .arg(server::module_path())
                .args(module_args)
                .output()
                .unwrap();
            assert!(!failed.status.success(), "{module_args:?} must not start");
            let log = String::from_utf8_lossy(&failed.stdout);
            assert!(log.contains(reason), "{module_args:?}: {log}");
        }
    });
}

#[test]
fn module_arguments_set_the_defaults() {
    for_each_server(|kind| {
        // The harness's arguments follow `--loadmodule <path>`: words before the next `--`
        // option are the module's arguments.
        let server = Server::start(kind, &["seatq.rate", "7", "timer-interval-ms", "50"]);
        let mut con = server.connection();
        let get =
            |con: &mut Connection, name: &str| text(&items(&ok(con, &["CONFIG", "GET", name]))[1]);
        assert_eq!(get(&mut con, "seatq.rate"), "7");
        assert_eq!(get(&mut con, "seatq.timer-interval-ms"), "50");
    });
}

#[test]
fn command_docs_and_key_specs_describe_every_command() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let mut names: Vec<String> = items(&ok(
            &mut con,
            &["COMMAND", "LIST", "FILTERBY", "MODULE", "seatq"],
        ))
        .iter()
        .map(text)
        .collect();
        names.sort();
        assert_eq!(names.len(), 26, "{names:?}");
        for name in &names {
            let docs = record(&items(&ok(&mut con, &["COMMAND", "DOCS", name]))[1]);
            for field in ["summary", "since", "complexity", "arguments"] {
                assert!(
                    docs.contains_key(field),
                    "{name} docs lack {field}: {docs:?}"
                );
            }
            assert!(!text(&docs["summary"]).is_empty());
            let info = items(&items(&ok(&mut con, &["COMMAND", "INFO", name]))[0]);
            assert_eq!(
                (int(&info[3]), int(&info[4]), int(&info[5])),
                (1, 1, 1),
                "{name}: first, last key and step"
            );
            let specs = format!("{:?}", info[8]);
            assert!(
                specs.contains("begin_search")
                    && specs.contains("index")
                    && specs.contains("find_keys"),
                "{name} key specs: {specs}"
            );
        }
    });
}
