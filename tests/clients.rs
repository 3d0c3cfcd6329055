//! The client packages under clients/ against real servers (Redis 7.0 and Valkey 9.1, as
//! SEATQ_SERVERS selects): the Python package's pytest suite (commands, waiting loop, passes
//! with PyJWT, cluster routing, sharded events, the exporter and, when a `prometheus` binary is
//! installed, the exporter scraped by Prometheus) and the Node example's tests (ioredis,
//! jsonwebtoken).
//!
//! For each server kind, a standalone server and a 3-primary cluster (a replica each) are
//! started with testkit, all with `seatq.pass-keys` set, and their URLs are handed to the tests
//! in environment variables (clients/python/tests/conftest.py lists them), with the path of
//! `seatq-coordinator` (the sharded events' tests create and run events with it; `cargo build
//! --release` builds it). A failing run fails with the test runner's output. Prerequisites
//! (`./run test` installs them): python3 with redis, pytest, PyJWT, prometheus_client; node and
//! npm (the Node example's packages are installed from its lockfile with `npm ci` when
//! missing). The Prometheus test is skipped without a `prometheus` binary unless
//! SEATQ_REQUIRE_PROMETHEUS=1 (.ci/run sets it; .ci/prometheus installs Debian's).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use seatq_testkit::cluster::Cluster;
use seatq_testkit::server::coordinator_path;
use seatq_testkit::*;

/// The keys the servers sign passes with (`kid:secret`, the first one signs) and the tests
/// verify them with.
const PASS_KEYS: &str = "ci-current:seatq-test-secret-0123456789abcdef0123 \
                         ci-previous:seatq-test-secret-previous-0123456789abcdef";

/// One client suite at a time: they start servers of their own and measure waits, and the
/// machines that run this have few cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Under `./run valgrind` the servers run many times slower than the clients' waits allow.
fn skipped_under_valgrind() -> bool {
    if std::env::var_os("SEATQ_VALGRIND").is_some() {
        eprintln!("clients: skipped under valgrind (the client tests time server answers)");
        return true;
    }
    false
}

/// A standalone server and a cluster of primaries with a replica each (the sharded events'
/// replica reads), all signing passes with PASS_KEYS.
struct Servers {
    standalone: Server,
    cluster: Cluster,
    /// The cluster's first nodes are its primaries, then come their replicas.
    primaries: usize,
}

impl Servers {
    fn start(kind: ServerKind) -> Servers {
        let keys = ["--seatq.pass-keys", PASS_KEYS];
        let standalone = Server::start(kind, &keys);
        let mut cluster = Cluster::start_with(kind, &keys);
        let primaries = cluster.nodes.len();
        for i in 0..primaries {
            cluster.add_replica(i, &keys);
        }
        Servers {
            standalone,
            cluster,
            primaries,
        }
    }

    /// What the test runners read (clients/python/tests/conftest.py, clients/node/test/helpers.js).
    fn env(&self) -> Vec<(&'static str, String)> {
        let cluster: Vec<String> = self.cluster.nodes[..self.primaries]
            .iter()
            .map(Server::url)
            .collect();
        vec![
            ("SEATQ_TEST_URL", self.standalone.url()),
            ("SEATQ_TEST_SERVER", self.standalone.kind.name().to_string()),
            ("SEATQ_TEST_CLUSTER_URLS", cluster.join(",")),
            ("SEATQ_TEST_PASS_KEYS", PASS_KEYS.to_string()),
            (
                "SEATQ_COORDINATOR",
                coordinator_path().to_string_lossy().into_owned(),
            ),
        ]
    }
}

fn output_of(what: &str, cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()))
}

/// Panics with the runner's output unless it succeeded; shows its last lines either way.
fn check(what: &str, out: Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!("{what} failed ({}):\n{stdout}\n{stderr}", out.status);
    }
    let tail: Vec<&str> = stdout.lines().rev().take(12).collect();
    if !tail.is_empty() {
        eprintln!(
            "{what}:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn python_client_and_exporter() {
    if skipped_under_valgrind() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let python = repo().join("clients/python");
    let missing = Command::new("python3")
        .args(["-c", "import redis, pytest, jwt, prometheus_client"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true);
    assert!(
        !missing,
        "python3 with redis, pytest, PyJWT and prometheus_client is needed: ./run test installs \
         them, or: python3 -m pip install redis pytest PyJWT prometheus_client"
    );
    // More pytest arguments, e.g. SEATQ_PYTEST_ARGS="-k prometheus" (.ci/prometheus).
    let pytest_args = std::env::var("SEATQ_PYTEST_ARGS").unwrap_or_default();
    for_each_server(|kind| {
        let servers = Servers::start(kind);
        let out = output_of(
            "pytest",
            Command::new("python3")
                .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
                .arg(python.join("tests"))
                .args(pytest_args.split_whitespace())
                .current_dir(&python)
                .env("PYTHONPATH", python.join("src"))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .envs(servers.env()),
        );
        check(&format!("pytest clients/python on {}", kind.name()), out);
    });
}

/// `npm ci` (the lockfile's exact packages) when node_modules is missing or older than it.
fn node_modules(dir: &Path) {
    let installed = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_some() && modified(&installed) >= modified(&lock) {
        return;
    }
    let out = output_of(
        "npm ci",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
    );
    check("npm ci (clients/node)", out);
}

#[test]
fn node_example() {
    if skipped_under_valgrind() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        have("node", "--version") && have("npm", "--version"),
        "node and npm are needed for clients/node: ./run test installs them, or: \
         sudo apt-get install nodejs npm"
    );
    let dir = repo().join("clients/node");
    node_modules(&dir);
    let mut tests: Vec<PathBuf> = std::fs::read_dir(dir.join("test"))
        .expect("clients/node/test")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.js"))
        .collect();
    tests.sort();
    for_each_server(|kind| {
        let servers = Servers::start(kind);
        let out = output_of(
            "node --test",
            Command::new("node")
                .arg("--test")
                .args(&tests)
                .current_dir(&dir)
                .envs(servers.env()),
        );
        check(&format!("node --test clients/node on {}", kind.name()), out);
    });
}

/// `pip install ./clients/python` installs the package and the `seatq-exporter` command (into a
/// scratch directory; the source tree is copied first so the build leaves nothing in it).
#[test]
fn python_package_installs() {
    if skipped_under_valgrind() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = std::env::temp_dir().join(format!("seatq-pip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let source = scratch.join("src");
    let target = scratch.join("site");
    std::fs::create_dir_all(&source).expect("scratch dir");
    let python = repo().join("clients/python");
    for item in ["pyproject.toml", "README.md", "src"] {
        let out = output_of(
            "cp",
            Command::new("cp")
                .arg("-r")
                .arg(python.join(item))
                .arg(&source),
        );
        check(&format!("copy clients/python/{item}"), out);
    }
    let out = output_of(
        "pip install",
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&target)
            .arg(&source),
    );
    check("pip install ./clients/python", out);
    let help = output_of(
        "seatq-exporter --help",
        Command::new("python3")
            .arg(target.join("bin/seatq-exporter"))
            .arg("--help")
            .env("PYTHONPATH", &target),
    );
    let text = String::from_utf8_lossy(&help.stdout).to_string();
    check("seatq-exporter --help", help);
    assert!(
        text.contains("--redis-url") && text.contains("--top"),
        "{text}"
    );
    let imported = output_of(
        "import seatq",
        Command::new("python3")
            .args([
                "-c",
                "import seatq, seatq.asyncio, seatq.passes, seatq.exporter; print(seatq.__file__)",
            ])
            .env("PYTHONPATH", &target)
            .current_dir(&scratch),
    );
    let file = String::from_utf8_lossy(&imported.stdout).to_string();
    check("import the installed package", imported);
    assert!(file.starts_with(&*target.to_string_lossy()), "{file}");
    let _ = std::fs::remove_dir_all(&scratch);
}
