//! Opt-in memory checking (`./run valgrind`): servers run under memcheck, each writing its logs
//! into its own directory; when a server stops, what concerns the module goes to one report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::Server;

/// `SEATQ_VALGRIND=<report file>`: run servers under valgrind and append what it finds there.
pub(super) fn report_file() -> Option<PathBuf> {
    std::env::var_os("SEATQ_VALGRIND").map(PathBuf::from)
}

/// `binary` under memcheck, logging to `dir`/valgrind-<pid>.log.
pub(super) fn command(binary: &Path, dir: &Path) -> Command {
    let mut c = Command::new("valgrind");
    c.args([
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--num-callers=30",
    ])
    .arg(format!(
        "--log-file={}",
        dir.join("valgrind-%p.log").display()
    ))
    .arg(binary);
    c
}

impl Server {
    /// Under valgrind: a clean shutdown (SIGTERM) so memcheck writes its leak summary, then
    /// every definite leak whose stack passes through the module goes to the report file.
    pub(super) fn finish_valgrind(&mut self, report: &Path) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut findings = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("valgrind-") {
                continue;
            }
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let summary: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("definitely lost:") || l.contains("ERROR SUMMARY"))
                .collect();
            // Records are separated by lines that are only the "==pid==" prefix.
            let mut records: Vec<String> = vec![String::new()];
            for line in log.lines() {
                if line.trim_end().ends_with("==") && line.trim_start().starts_with("==") {
                    records.push(String::new());
                } else {
                    let last = records.last_mut().expect("one record");
                    last.push_str(line);
                    last.push('\n');
                }
            }
            let ours: Vec<&String> = records
                .iter()
                .filter(|r| {
                    r.contains("libseatq")
                        && (r.contains("definitely lost in")
                            || r.contains("Invalid ")
                            || r.contains("uninitialised"))
                })
                .collect();
            findings.push_str(&format!(
                "{} {}: {} problem(s) in the module; {}\n",
                self.kind.name(),
                name,
                ours.len(),
                summary.join(" | ")
            ));
            for record in ours {
                findings.push_str(record);
            }
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(report)
        {
            use std::io::Write;
            let _ = f.write_all(findings.as_bytes());
        }
    }
}
