//! The ACL roles docs/security.md advises, on every supported server, with AOF and a replica:
//! the application can run the sale and nothing else, the read-only role can read, the
//! operator can configure, nobody can send SEATQ.APPLY, and replication and AOF reload keep
//! working with the default user switched off.

use std::time::Duration;

use redis::Connection;
use seatq_testkit::*;

/// Rules by command name: they work on every server (Redis 7.0 has no module ACL categories).
const APP: &str = "+queue.enqueue +queue.status +queue.admit +queue.leave +queue.renew +queue.revoke +queue.verify +queue.len +queue.info +seat.hold +seat.release +seat.confirm +seat.status +seat.info";
const READ_ONLY: &str = "+queue.len +queue.range +queue.info +queue.verify +seat.status +seat.info";
const OPERATOR_EXTRA: &str = "+queue.range +queue.config +queue.pause +queue.resume +queue.close +queue.reopen +queue.dequeue +seat.add";

/// Rules by category (Redis 7.2+, Valkey 8+).
const APP_BY_CATEGORY: &str = "+@seatq -@admin";
const READ_ONLY_BY_CATEGORY: &str = "+@seatq -@write";
const OPERATOR_BY_CATEGORY: &str = "+@seatq -seatq.apply";

fn acl_file(dir: &std::path::Path, categories: bool) -> std::path::PathBuf {
    let (app, read, operator) = if categories {
        (
            APP_BY_CATEGORY.to_string(),
            READ_ONLY_BY_CATEGORY.to_string(),
            OPERATOR_BY_CATEGORY.to_string(),
        )
    } else {
        (
            APP.to_string(),
            READ_ONLY.to_string(),
            format!("{APP} {OPERATOR_EXTRA}"),
        )
    };
    let path = dir.join(format!(
        "users-{}.acl",
        if categories { "categories" } else { "names" }
    ));
    std::fs::write(
        &path,
        format!(
            "user default off\n\
             user admin on >admin-pw ~* &* +@all\n\
             user repl on >repl-pw +psync +replconf +ping\n\
             user app on >app-pw ~* {app} +ping\n\
             user reader on >read-pw ~* {read} +ping\n\
             user operator on >op-pw ~* {operator} +ping\n"
        ),
    )
    .unwrap();
    path
}

fn login(server: &Server, user: &str, password: &str) -> Connection {
    let url = format!("redis://{user}:{password}@127.0.0.1:{}/", server.port);
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn denied(con: &mut Connection, args: &[&str]) {
    let e = err(con, args);
    assert!(e.starts_with("NOPERM"), "{args:?}: {e}");
}

fn check_roles(primary: &mut Server, replica: &Server) {
    let mut app = login(primary, "app", "app-pw");
    let mut reader = login(primary, "reader", "read-pw");
    let mut operator = login(primary, "operator", "op-pw");
    // The operator sets the sale up.
    ok(
        &mut operator,
        &["QUEUE.CONFIG", "ev", "SET", "RATE", "1000"],
    );
    ok(&mut operator, &["SEAT.ADD", "ev", "A-1", "A-2"]);
    // The application runs it.
    let (ticket, _) = enqueue(&mut app, "ev", "alice");
    let pass = text(&record(&ok(&mut app, &["QUEUE.ADMIT", "ev", "USER", "alice"]))["pass"]);
    ok(
        &mut app,
        &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &pass],
    );
    ok(&mut app, &["SEAT.CONFIRM", "ev", "alice", "A-1"]);
    // The purchase ended alice's session; her ticket still tells her so.
    let status = record(&ok(&mut app, &["QUEUE.STATUS", "ev", &ticket]));
    assert_eq!(text(&status["state"]), "completed");
    for args in [
        &["QUEUE.CONFIG", "ev", "SET", "RATE", "1"][..],
        &["QUEUE.PAUSE", "ev"],
        &["QUEUE.CLOSE", "ev"],
        &["SEAT.ADD", "ev", "QTY", "100"],
        &["QUEUE.DEQUEUE", "ev"],
        &["SEATQ.APPLY", "ev", "PAUSED", "99999999999999-0"],
        &["CONFIG", "SET", "seatq.rate", "1"],
    ] {
        denied(&mut app, args);
    }
    // The read-only role reads.
    ok(&mut reader, &["QUEUE.LEN", "ev"]);
    ok(&mut reader, &["QUEUE.INFO", "ev"]);
    ok(&mut reader, &["QUEUE.RANGE", "ev", "0", "10"]);
    ok(&mut reader, &["SEAT.INFO", "ev"]);
    ok(&mut reader, &["SEAT.STATUS", "ev", "A-1"]);
    assert_eq!(
        text(&record(&ok(&mut reader, &["QUEUE.VERIFY", "ev", &pass]))["state"]),
        "revoked",
        "the purchase ended the session"
    );
    for args in [
        &["QUEUE.ENQUEUE", "ev", "bob"][..],
        &["SEAT.HOLD", "ev", "bob", "A-2"],
        &["QUEUE.PAUSE", "ev"],
    ] {
        denied(&mut reader, args);
    }
    // The operator pauses and resumes; nobody sends SEATQ.APPLY.
    assert_eq!(int(&ok(&mut operator, &["QUEUE.PAUSE", "ev"])), 1);
    assert_eq!(int(&ok(&mut operator, &["QUEUE.RESUME", "ev"])), 1);
    denied(
        &mut operator,
        &["SEATQ.APPLY", "ev", "PAUSED", "99999999999999-0"],
    );
    // The replica (authenticated as `repl`) follows; the AOF reloads, with the default user off.
    let mut admin = login(primary, "admin", "admin-pw");
    assert_eq!(int(&ok(&mut admin, &["WAIT", "1", "5000"])), 1);
    let digest = text(&ok(&mut admin, &["DEBUG", "DIGEST"]));
    let mut radmin = login(replica, "admin", "admin-pw");
    wait_until(Duration::from_secs(5), || {
        text(&ok(&mut radmin, &["DEBUG", "DIGEST"])) == digest
    });
    primary.restart();
    let mut admin = login(primary, "admin", "admin-pw");
    assert_eq!(
        text(&ok(&mut admin, &["DEBUG", "DIGEST"])),
        digest,
        "the AOF reloads with these users"
    );
    let seats = record(&ok(&mut admin, &["SEAT.INFO", "ev"]));
    assert_eq!(int(&seats["seats_sold"]), 1);
}

fn run_roles(kind: ServerKind, categories: bool) {
    let dir = std::env::temp_dir().join(format!(
        "seatq-acl-{}-{}-{categories}",
        kind.name(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = acl_file(&dir, categories);
    let file = file.to_str().unwrap();
    let mut primary = Server::start_with_login(
        kind,
        &[
            "--aclfile",
            file,
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
        "admin",
        "admin-pw",
    );
    let replica = primary.start_replica(&[
        "--aclfile",
        file,
        "--masteruser",
        "repl",
        "--masterauth",
        "repl-pw",
    ]);
    check_roles(&mut primary, &replica);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn roles_by_command_name_work_everywhere() {
    for_each_server(|kind| run_roles(kind, false));
}

#[test]
fn roles_by_category_where_the_server_has_module_categories() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let supported = run(&mut con, &["ACL", "CAT", "seatq"]).is_ok();
        if !supported {
            // Redis 7.0: no module categories; the rules by name are the documented way there.
            assert_eq!(kind, ServerKind::Redis);
            return;
        }
        let in_category = |con: &mut Connection, category: &str| -> Vec<String> {
            let mut names: Vec<String> = items(&ok(con, &["ACL", "CAT", category]))
                .iter()
                .map(text)
                .filter(|n| n.contains('.'))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            in_category(&mut con, "seatq").len(),
            23,
            "every seatq command"
        );
        assert_eq!(
            in_category(&mut con, "admin"),
            [
                "queue.close",
                "queue.config",
                "queue.dequeue",
                "queue.pause",
                "queue.reopen",
                "queue.resume",
                "seat.add",
                "seatq.apply"
            ]
        );
        assert!(in_category(&mut con, "dangerous").contains(&"seatq.apply".to_string()));
        assert!(
            in_category(&mut con, "read").contains(&"queue.len".to_string()),
            "a +@read role can run QUEUE.LEN"
        );
        drop(con);
        drop(server);
        run_roles(kind, true);
    });
}
