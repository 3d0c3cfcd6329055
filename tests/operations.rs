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
fn info_seatq_reports_calls_errors_latency_and_gauges() {
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
        let head = text(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["head_ticket"]);
        ok(&mut con, &["QUEUE.ADMIT", "ev", &head]);
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2", "A-3"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "u1", "A-1"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "u2", "A-2", "TTL", "1"]);
        err(&mut con, &["SEAT.HOLD", "ev", "u3", "A-1"]);
        ok(&mut con, &["QUEUE.ENQUEUE", "other", "u"]);
        let i = info(&mut con);
        let n = |f: &str| i[f].parse::<i64>().unwrap();
        assert_eq!(
            (
                n("seatq_events"),
                n("seatq_tickets_waiting"),
                n("seatq_passes_active"),
                n("seatq_holds_active")
            ),
            (2, 10, 1, 2)
        );
        assert_eq!(
            (
                n("seatq_enqueue_duplicates_total"),
                n("seatq_passes_issued_total")
            ),
            (3, 1)
        );
        let enqueue = dict(&i, "seatq_cmd_queue_enqueue");
        assert_eq!((enqueue["calls"], enqueue["failed"]), (14.0, 3.0));
        assert!(
            enqueue["p50_usec"] > 0.0
                && enqueue["p50_usec"] <= enqueue["p95_usec"]
                && enqueue["p99_usec"] <= enqueue["max_usec"]
        );
        assert_eq!(dict(&i, "seatq_errors_DUPLICATE")["count"], 3.0);
        assert_eq!(dict(&i, "seatq_errors_SEAT_UNAVAILABLE")["count"], 1.0);
        assert!(n("seatq_journal_entries_total") >= 14);
        // The timer expires the 1-second hold and the lapsed tickets; gauges follow.
        let mut last = HashMap::new();
        let settled = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            last = info(&mut con);
            // Left waiting: only the ticket of "other", whose heartbeat is the default 60 s.
            last["seatq_holds_expired_total"] == "1"
                && last["seatq_holds_active"] == "1"
                && last["seatq_tickets_waiting"] == "1"
        });
        assert!(settled, "gauges after the timer ran: {last:?}");
        let i = info(&mut con);
        assert_eq!(
            i["seatq_tickets_expired_total"], "9",
            "ten joined, one was admitted"
        );
        assert!(i["seatq_timer_runs_total"].parse::<i64>().unwrap() > 5);
        // Gauges follow keys that leave and enter the keyspace.
        ok(&mut con, &["COPY", "ev", "ev2"]);
        assert_eq!(info(&mut con)["seatq_events"], "3");
        ok(&mut con, &["DEL", "ev", "ev2", "other"]);
        let i = info(&mut con);
        assert_eq!(
            (
                i["seatq_events"].as_str(),
                i["seatq_holds_active"].as_str(),
                i["seatq_passes_active"].as_str()
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
        // A bad module argument refuses to load, with a reason in the log.
        let mut failed = std::process::Command::new(kind.binary())
            .args(["--port", "0", "--save", "", "--loadmodule"])
            .arg(server::module_path())
            .args(["heartbeat-ms", "12"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = failed.wait().unwrap();
        assert!(
            !status.success(),
            "a server with an invalid module argument must not start"
        );
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
        assert_eq!(names.len(), 16, "{names:?}");
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

#[test]
fn the_exporter_collect_script_turns_info_seatq_into_numbers() {
    // docker/compose.yaml runs this script with redis_exporter's --script --lua-script-read-only.
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/redis-exporter/seatq-info.lua"
    ))
    .unwrap();
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(&mut con, &["QUEUE.ENQUEUE", "ev", "u", "IDEMPOTENCY", "k"]);
        err(&mut con, &["QUEUE.ENQUEUE", "ev", "v", "IDEMPOTENCY", "k"]);
        ok(&mut con, &["SEAT.ADD", "ev", "A-1"]);
        let values = items(&ok(&mut con, &["EVAL_RO", &script, "0"]));
        let metrics: HashMap<String, String> = values
            .chunks(2)
            .map(|p| (text(&p[0]), text(&p[1])))
            .collect();
        assert!(
            metrics.values().all(|v| v.parse::<f64>().is_ok()),
            "every value is a number: {metrics:?}"
        );
        assert_eq!(metrics["seatq_events"], "1");
        assert_eq!(metrics["seatq_tickets_waiting"], "1");
        assert_eq!(metrics["seatq_enqueue_duplicates_total"], "1");
        assert_eq!(
            (
                metrics["seatq_cmd_queue_enqueue_calls"].as_str(),
                metrics["seatq_cmd_queue_enqueue_failed"].as_str()
            ),
            ("2", "1")
        );
        assert!(metrics.contains_key("seatq_cmd_queue_enqueue_p99_usec"));
        assert_eq!(metrics["seatq_errors_DUPLICATE_count"], "1");
    });
}

#[test]
fn the_python_client_example_runs_the_whole_flow() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/flow.py");
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg("--url")
            .arg(format!("{}0", server.url()))
            .output()
            .expect("python3 runs examples/python/flow.py (./run test installs redis-py)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "flow.py failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.lines().last() == Some("flow ok"), "{stdout}");
        for shown in [
            "DUPLICATE",
            "PASS_REQUIRED",
            "PASS_INVALID",
            "SEAT_UNAVAILABLE",
            "LIMIT_EXCEEDED",
            "HOLD_EXPIRED",
            "SOLD_OUT",
            "NOT_OWNER",
            "TICKET_ENDED",
        ] {
            assert!(
                stdout.contains(shown),
                "the example handles {shown}:\n{stdout}"
            );
        }
    });
}
