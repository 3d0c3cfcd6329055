//! A server under `valgrind --tool=callgrind`, counting instructions (Ir) only while it serves
//! clients: collection is toggled on inside the functions that read, parse and run requests,
//! write replies and run module timers, so idle time, `serverCron` and the machine's load count
//! nothing. Instrumentation is switched on (`callgrind_control -i on`) only around a
//! measurement, so setting up (filling lines) runs at near native speed; each measurement is
//! zeroed before (`-z`) and dumped after (`-d`), and its total read from the dump.
//!
//! Used by the benchmark's instruction counts and the sharded-cluster test's CPU comparison
//! (`SEATQ_SHARDED_CPU=instructions`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{Server, ServerKind};

/// The functions inside which instructions count, per server: reading and running requests,
/// writing replies, module timers (seatq's upkeep).
fn counted_functions(kind: ServerKind) -> &'static [&'static str] {
    match kind {
        ServerKind::Redis => &[
            "readQueryFromClient",
            "handleClientsWithPendingWritesUsingThreads",
            "moduleTimerHandler",
        ],
        ServerKind::Valkey => &[
            "readQueryFromClient",
            "handleClientsWithPendingWrites",
            "moduleTimerHandler",
        ],
    }
}

/// A fresh directory for one server's dumps.
pub fn dump_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "seatq-callgrind-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("callgrind dir");
    dir
}

/// The command line a `kind` server runs under to be counted, its dumps going to `dir`
/// (a [`dump_dir`]).
pub fn prefix(kind: ServerKind, dir: &Path) -> Vec<String> {
    let mut prefix = bare_prefix(dir);
    for f in counted_functions(kind) {
        prefix.push(format!("--toggle-collect={f}"));
    }
    prefix
}

/// callgrind with nothing instrumented or collected until told (`callgrind_control`, or
/// options the caller adds), dumps going to `dir`.
pub fn bare_prefix(dir: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", dir.join("cg.out").display()),
        "--instr-atstart=no".into(),
        "--collect-atstart=no".into(),
        "--dump-instr=no".into(),
        "--compress-strings=no".into(),
        format!("--log-file={}", dir.join("valgrind.log").display()),
    ]
}

/// `callgrind_control <option>` on the server `pid` (`--instr=on`, `-z`, `-d`, ...).
pub fn control(pid: u32, option: &str) {
    let out = Command::new("callgrind_control")
        .arg(option)
        .arg(pid.to_string())
        .output()
        .expect("callgrind_control (Debian package valgrind)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("OK"),
        "callgrind_control {option} {pid}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Counter {
    pid: u32,
    out: PathBuf,
    dumps: usize,
}

/// One measurement's dump: its file (for callgrind_annotate) and total Ir.
pub struct Dump {
    pub path: PathBuf,
    pub total: u64,
}

impl Counter {
    /// Starts a standalone server under callgrind with seatq and `modules` loaded.
    pub fn start(kind: ServerKind, modules: &[PathBuf], extra: &[&str]) -> (Server, Counter) {
        let dir = dump_dir();
        let prefix = prefix(kind, &dir);
        let mut args: Vec<String> = Vec::new();
        for m in modules {
            args.push("--loadmodule".into());
            args.push(m.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let prefix_ref: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start_under(kind, &prefix_ref, &args_ref);
        let counter = Counter::of(&server, &dir);
        (server, counter)
    }

    /// The counter of `server`, started under [`prefix`]`(kind, dir)`.
    pub fn of(server: &Server, dir: &Path) -> Counter {
        Counter {
            pid: server.pid().expect("server pid"),
            out: dir.join("cg.out"),
            dumps: 0,
        }
    }

    fn control(&self, option: &str) {
        control(self.pid, option);
    }

    /// Starts counting from zero.
    pub fn begin(&mut self) {
        self.control("--instr=on");
        self.control("-z");
    }

    /// Stops counting; what was counted since [`Counter::begin`].
    pub fn end(&mut self) -> Dump {
        self.control("-d");
        self.control("--instr=off");
        self.dumps += 1;
        let path = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        let total = total_of(&path);
        Dump { path, total }
    }

    /// Counts the instructions the server runs while `work` runs (the work's requests must
    /// have all been answered when it returns).
    pub fn measure<T>(&mut self, work: impl FnOnce() -> T) -> (Dump, T) {
        self.begin();
        let result = work();
        (self.end(), result)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if let Some(dir) = self.out.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The `totals:` line of a callgrind dump.
fn total_of(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("callgrind dump {}: {e}", path.display()));
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", path.display()))
}

/// One function's cost in a dump: Ir, the function's name and the object it is in.
#[derive(Clone, Debug)]
pub struct FunctionCost {
    pub ir: u64,
    pub name: String,
    pub object: String,
}

/// The functions of a dump by cost, from `callgrind_annotate` (self cost, or inclusive). The
/// annotator lists a function once per source file its code came from (inlining): self costs
/// are summed by function, inclusive costs take the largest entry (the entries overlap). Functions with debug information show no object: those from Rust
/// sources are the module's.
pub fn functions(path: &Path, inclusive: bool) -> Vec<FunctionCost> {
    let out = Command::new("callgrind_annotate")
        .arg(format!(
            "--inclusive={}",
            if inclusive { "yes" } else { "no" }
        ))
        .arg("--threshold=100")
        .arg("--auto=no")
        .arg(path)
        .output()
        .expect("callgrind_annotate");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut costs: Vec<FunctionCost> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text.lines() {
        // "  500,478 (10.94%)  file:function [object]"
        let line = line.trim_start();
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(ir) = number.replace(',', "").parse::<u64>() else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('(') else {
            continue;
        };
        let Some((_, rest)) = rest.split_once(')') else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with("PROGRAM TOTALS") || rest.is_empty() || rest.starts_with("=>") {
            continue;
        }
        let (func, object) = match rest.rfind(" [") {
            Some(at) if rest.ends_with(']') => (&rest[..at], &rest[at + 2..rest.len() - 1]),
            _ => (rest, ""),
        };
        let (file, name) = func.split_once(':').unwrap_or(("", func));
        let object = if !object.is_empty() {
            object.rsplit('/').next().unwrap_or(object).to_string()
        } else if file.ends_with(".rs") {
            "module (Rust)".to_string()
        } else {
            String::new()
        };
        match index.get(name) {
            Some(&i) if inclusive => costs[i].ir = costs[i].ir.max(ir),
            Some(&i) => costs[i].ir += ir,
            None => {
                index.insert(name.to_string(), costs.len());
                costs.push(FunctionCost {
                    ir,
                    name: name.to_string(),
                    object,
                });
            }
        }
    }
    costs.sort_by_key(|c| std::cmp::Reverse(c.ir));
    costs
}
