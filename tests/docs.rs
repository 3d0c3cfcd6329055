//! The documentation, checked against the module it documents, on real servers:
//!
//! - every registered command (`COMMAND LIST FILTERBY MODULE seatq`) has a page
//!   `docs/commands/<name>.md` with the sections a command page has, whose syntax line is the
//!   one COMMAND DOCS' arguments describe (rendered as below), which quotes COMMAND DOCS'
//!   summary and complexity and COMMAND INFO's flags, and which shows the command in a session;
//!   no page describes a command that is not registered;
//! - every `redis-cli` session in README.md and docs/ replays against a fresh server with the
//!   modules loaded and prints the replies shown;
//! - every relative link between the pages resolves (file and `#anchor`), and the README links
//!   every page under docs/;
//! - every error code of `src/error.rs`, every event setting, module config and `INFO seatq`
//!   field appears in the page that documents it.
//!
//! Syntax lines follow redis.io: `[x]` optional, `x [x ...]` one or more, `<a | b>` one of
//! (`[a | b]` when optional), a token before its value (`COUNT count`), a block's arguments in
//! sequence.
//!
//! Sessions are fenced blocks whose info string is `redis-cli`:
//!
//! ```text
//! > QUEUE.ENQUEUE sale alice     a command, as typed at the redis-cli prompt (its quoting)
//! 1# "ticket" => "0.<hex>"       what `redis-cli -3` prints for it, line by line
//! (1.5 s later)                  the session waits 1.5 s here (nothing is sent)
//! ```
//!
//! Reply lines compare exactly (trailing spaces aside), except for placeholders standing for
//! what differs from run to run:
//!
//! | placeholder | matches |
//! |---|---|
//! | `<ticket>` | a whole ticket, `<serial>.<16 hex digits>` |
//! | `<hex>` | the 16 hex digits of a ticket (its secret part) |
//! | `<pass>` | a pass: a JWT, three base64url parts joined by dots |
//! | `<ms>` | a server time in milliseconds (13 digits) |
//! | `<id>` | a stream entry ID, `<ms>-<seq>` |
//! | `<int>` | any integer (durations that depend on timing, sizes) |
//!
//! `<kind:name>` (e.g. `<pass:alice>`) names the value: its first appearance in a reply captures
//! it, a later one in a reply must be the same value, and in a command it is replaced by the
//! captured value (so `SEAT.HOLD sale alice A1 PASS <pass:alice>` sends alice's pass).
//!
//! The sessions run `redis-cli` (`SEATQ_REDIS_CLI`, else `redis-cli` on PATH: Debian's
//! `redis-tools`, which `redis-server` pulls in), once per command, against servers the testkit
//! starts (`SEATQ_SERVERS`). `SEATQ_DOCS_PAGE=queue.admit` replays only the pages whose path
//! contains that text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis::Value;
use seatq_testkit::*;

/// Links to files other changes write (the client packages, the Prometheus exporter's page):
/// they may be missing on this branch.
const WRITTEN_ELSEWHERE: &[&str] = &[
    "clients/python/README.md",
    "clients/node/README.md",
    "docs/monitoring.md",
];

/// The sections every command page has, in this order.
const COMMAND_SECTIONS: &[&str] = &[
    "Syntax",
    "Arguments",
    "Reply",
    "Errors",
    "Complexity",
    "Example",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every Markdown page under docs/, as paths relative to the repository.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path.strip_prefix(repo()).unwrap().to_path_buf());
            }
        }
    }
    let mut out = vec![PathBuf::from("README.md")];
    walk(&repo().join("docs"), &mut out);
    out
}

/// A fenced code block: its info string, first content line (1-based) and lines.
struct Block {
    info: String,
    line: usize,
    lines: Vec<String>,
}

/// The fenced blocks of a page, and its lines outside them (with their 1-based numbers).
fn parse_markdown(text: &str) -> (Vec<Block>, Vec<(usize, String)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    line: i + 2,
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => blocks.push(open.take().unwrap()),
            (Some(block), _) => block.lines.push(line.to_string()),
            (None, None) => prose.push((i + 1, line.to_string())),
        }
    }
    assert!(open.is_none(), "a fenced block is not closed");
    (blocks, prose)
}

// ---------------------------------------------------------------------------------------------
// Replies as field maps (RESP2 flat arrays or RESP3 maps)

fn fields(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Value::Array(items) => items
            .chunks_exact(2)
            .map(|p| (text(&p[0]), p[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn field<'a>(pairs: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        Value::Nil => Vec::new(),
        other => vec![text(other)],
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax from COMMAND DOCS

/// One argument as redis.io renders it.
fn render_arg(arg: &[(String, Value)]) -> String {
    let get = |name: &str| field(arg, name).map(text);
    let kind = get("type").expect("an argument has a type");
    let flags = field(arg, "flags").map(words).unwrap_or_default();
    let children = || -> Vec<String> {
        field(arg, "arguments")
            .map(items)
            .unwrap_or_default()
            .iter()
            .map(|child| render_arg(&fields(child)))
            .collect()
    };
    let mut out = match kind.as_str() {
        "block" => children().join(" "),
        "oneof" => children().join(" | "),
        "pure-token" => get("token").expect("a pure token has its token"),
        _ => get("name").expect("an argument has a name"),
    };
    // A token repeats only with `multiple_token`: `DATA field value [field value ...]`.
    let multiple = flags.iter().any(|f| f == "multiple");
    if multiple && !flags.iter().any(|f| f == "multiple_token") {
        out = format!("{out} [{out} ...]");
    }
    if let Some(token) = get("token").filter(|_| kind != "pure-token") {
        out = format!("{token} {out}");
    }
    if multiple && flags.iter().any(|f| f == "multiple_token") {
        out = format!("{out} [{out} ...]");
    }
    if flags.iter().any(|f| f == "optional") {
        format!("[{out}]")
    } else if kind == "oneof" {
        format!("<{out}>")
    } else {
        out
    }
}

struct CommandDoc {
    syntax: String,
    summary: String,
    complexity: String,
    flags: BTreeSet<String>,
}

fn command_docs(con: &mut redis::Connection) -> BTreeMap<String, CommandDoc> {
    let names: Vec<String> = items(&ok(
        con,
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "seatq"],
    ))
    .iter()
    .map(text)
    .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let docs = fields(&ok(con, &["COMMAND", "DOCS", &name]));
        let doc = fields(field(&docs, &name).expect("COMMAND DOCS answers for the command"));
        let args: Vec<String> = field(&doc, "arguments")
            .map(items)
            .unwrap_or_default()
            .iter()
            .map(|a| render_arg(&fields(a)))
            .collect();
        let syntax = std::iter::once(name.to_uppercase())
            .chain(args)
            .collect::<Vec<_>>()
            .join(" ");
        let info = items(&ok(con, &["COMMAND", "INFO", &name]));
        let flags = words(&items(&info[0])[2]).into_iter().collect();
        out.insert(
            name,
            CommandDoc {
                syntax,
                summary: text(field(&doc, "summary").expect("a summary")),
                complexity: text(field(&doc, "complexity").expect("a complexity")),
                flags,
            },
        );
    }
    out
}

#[test]
fn every_command_has_a_page_that_matches_command_docs() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let docs = command_docs(&mut server.connection());
        assert!(docs.len() >= 20, "registered commands: {:?}", docs.keys());
        let mut problems = Vec::new();
        for (name, doc) in &docs {
            let path = format!("docs/commands/{name}.md");
            let Ok(text) = std::fs::read_to_string(repo().join(&path)) else {
                problems.push(format!("{path} is missing"));
                continue;
            };
            let (blocks, prose) = parse_markdown(&text);
            let mut complain = |what: String| problems.push(format!("{path}: {what}"));
            let title = format!("# {}", name.to_uppercase());
            if prose.first().map(|(_, l)| l.as_str()) != Some(title.as_str()) {
                complain(format!("the page starts with `{title}`"));
            }
            let sections: Vec<&str> = prose
                .iter()
                .filter_map(|(_, l)| l.strip_prefix("## "))
                .collect();
            let ours: Vec<&str> = sections
                .iter()
                .copied()
                .filter(|s| COMMAND_SECTIONS.contains(s))
                .collect();
            if ours != COMMAND_SECTIONS {
                complain(format!(
                    "sections {sections:?}, expected {COMMAND_SECTIONS:?} in this order"
                ));
            }
            let syntax: Vec<&Block> = blocks.iter().filter(|b| b.info == "syntax").collect();
            match &syntax[..] {
                [block] if block.lines == [doc.syntax.clone()] => {}
                [block] => complain(format!(
                    "syntax `{}`, COMMAND DOCS says `{}`",
                    block.lines.join(" / "),
                    doc.syntax
                )),
                _ => complain(format!(
                    "needs one ```syntax block holding `{}`",
                    doc.syntax
                )),
            }
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for (what, quoted) in [("summary", &doc.summary), ("complexity", &doc.complexity)] {
                if !flat.contains(quoted.as_str()) {
                    complain(format!("does not quote COMMAND DOCS' {what}: {quoted}"));
                }
            }
            let flags_line = prose.iter().find_map(|(_, l)| l.strip_prefix("Flags: "));
            let shown: BTreeSet<String> = flags_line
                .unwrap_or("")
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(|w| w.trim_matches(|c| c == '`' || c == '.'))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            if shown != doc.flags {
                complain(format!(
                    "`Flags: ...` line shows {shown:?}, COMMAND INFO says {:?}",
                    doc.flags
                ));
            }
            let used = blocks.iter().filter(|b| b.info == "redis-cli").any(|b| {
                b.lines.iter().any(|l| {
                    l.strip_prefix("> ").is_some_and(|c| {
                        c.split_whitespace()
                            .next()
                            .is_some_and(|w| w.eq_ignore_ascii_case(name))
                    })
                })
            });
            if !used {
                complain("no redis-cli session runs the command".into());
            }
        }
        for page in std::fs::read_dir(repo().join("docs/commands")).unwrap() {
            let path = page.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem != "README" && !docs.contains_key(&stem) {
                problems.push(format!("{} names no registered command", path.display()));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    });
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ticket,
    Hex,
    Pass,
    Ms,
    Id,
    Int,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "ticket" => Kind::Ticket,
            "hex" => Kind::Hex,
            "pass" => Kind::Pass,
            "ms" => Kind::Ms,
            "id" => Kind::Id,
            "int" => Kind::Int,
            _ => return None,
        })
    }

    /// The length of the match at the start of `s`, if any (each grammar is deterministic).
    fn scan(self, s: &str) -> Option<usize> {
        let b = s.as_bytes();
        let run = |from: usize, ok: fn(u8) -> bool| {
            b[from.min(b.len())..]
                .iter()
                .take_while(|&&c| ok(c))
                .count()
        };
        let digit = |c: u8| c.is_ascii_digit();
        let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        let at = |i: usize, c: u8| b.get(i) == Some(&c);
        match self {
            Kind::Hex => (run(0, hex) >= 16).then_some(16),
            Kind::Ms => (run(0, digit) == 13).then_some(13),
            Kind::Int => {
                let sign = usize::from(at(0, b'-'));
                let n = run(sign, digit);
                (n > 0).then_some(sign + n)
            }
            Kind::Ticket => {
                let n = run(0, digit);
                (n > 0 && at(n, b'.') && run(n + 1, hex) == 16).then_some(n + 17)
            }
            Kind::Id => {
                let n = run(0, digit);
                let m = run(n + 1, digit);
                (n > 0 && at(n, b'-') && m > 0).then_some(n + 1 + m)
            }
            Kind::Pass => {
                let mut i = 0;
                for part in 0..3 {
                    if part > 0 {
                        if !at(i, b'.') {
                            return None;
                        }
                        i += 1;
                    }
                    let n = run(i, b64);
                    if n == 0 {
                        return None;
                    }
                    i += n;
                }
                Some(i)
            }
        }
    }
}

enum Piece {
    Text(String),
    Hole(Kind, Option<String>),
}

/// Splits a line into literal text and placeholders (`<` that starts no placeholder is text).
fn pieces(line: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let hole = after.find('>').and_then(|close| {
            let inner = &after[..close];
            let (kind, name) = match inner.split_once(':') {
                Some((k, n)) if !n.is_empty() => (k, Some(n.to_string())),
                Some(_) => return None,
                None => (inner, None),
            };
            Kind::from_name(kind).map(|k| (Piece::Hole(k, name), close))
        });
        match hole {
            Some((piece, close)) => {
                text.push_str(&rest[..open]);
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(piece);
                rest = &after[close + 1..];
            }
            None => {
                text.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

/// Whether `actual` is what `expected` shows; fills `captured` with newly named values.
fn matches(expected: &str, actual: &str, captured: &mut HashMap<String, String>) -> bool {
    let mut rest = actual;
    let mut new = Vec::new();
    for piece in pieces(expected) {
        match piece {
            Piece::Text(t) => match rest.strip_prefix(t.as_str()) {
                Some(r) => rest = r,
                None => return false,
            },
            Piece::Hole(kind, name) => {
                let Some(n) = kind.scan(rest) else {
                    return false;
                };
                let value = &rest[..n];
                if let Some(name) = name {
                    let name = format!("{kind:?}:{name}");
                    match captured.get(&name) {
                        Some(known) if known != value => return false,
                        Some(_) => {}
                        None => new.push((name, value.to_string())),
                    }
                }
                rest = &rest[n..];
            }
        }
    }
    if !rest.is_empty() {
        return false;
    }
    captured.extend(new);
    true
}

/// A command line with `<kind:name>` replaced by the captured values.
fn substitute(command: &str, captured: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(command) {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Hole(kind, Some(name)) => match captured.get(&format!("{kind:?}:{name}")) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(format!(
                        "<{}:{name}> was not captured by an earlier reply",
                        format!("{kind:?}").to_lowercase()
                    ))
                }
            },
            Piece::Hole(kind, None) => {
                return Err(format!(
                    "an unnamed {kind:?} placeholder in a command cannot be sent"
                ))
            }
        }
    }
    Ok(out)
}

enum Step {
    Command {
        line: usize,
        command: String,
        expected: Vec<String>,
    },
    Wait(Duration),
}

fn wait_line(line: &str) -> Option<Duration> {
    let secs = line.strip_prefix('(')?.strip_suffix(" s later)")?;
    secs.parse::<f64>().ok().map(Duration::from_secs_f64)
}

fn steps(block: &Block) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, raw) in block.lines.iter().enumerate() {
        let line = raw.trim_end();
        if let Some(command) = line.strip_prefix("> ") {
            steps.push(Step::Command {
                line: block.line + i,
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(wait) = wait_line(line) {
            steps.push(Step::Wait(wait));
        } else {
            match steps.last_mut() {
                Some(Step::Command { expected, .. }) => expected.push(line.to_string()),
                _ => {
                    return Err(format!(
                        "line {}: a reply line before any `> command`",
                        block.line + i
                    ))
                }
            }
        }
    }
    for step in &steps {
        if let Step::Command { line, expected, .. } = step {
            if expected.is_empty() {
                return Err(format!("line {line}: the command shows no reply"));
            }
        }
    }
    Ok(steps)
}

fn redis_cli() -> PathBuf {
    std::env::var_os("SEATQ_REDIS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-cli"))
}

/// What `redis-cli -3` prints for a command typed at its prompt.
fn cli(port: u16, command: &str) -> Vec<String> {
    let mut child = Command::new(redis_cli())
        .args(["-3", "--no-raw", "-h", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (Debian: apt-get install redis-tools; or set SEATQ_REDIS_CLI)",
                redis_cli().display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{command}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Replays one session on a fresh server; Err describes the first difference.
fn replay(kind: ServerKind, steps: &[Step]) -> Result<(), String> {
    let server = Server::start(kind, &[]);
    let mut captured = HashMap::new();
    for step in steps {
        let (line, command, expected) = match step {
            Step::Wait(d) => {
                std::thread::sleep(*d);
                continue;
            }
            Step::Command {
                line,
                command,
                expected,
            } => (line, command, expected),
        };
        let sent = substitute(command, &captured).map_err(|e| format!("line {line}: {e}"))?;
        let actual = cli(server.port, &sent);
        let same = expected.len() == actual.len()
            && expected
                .iter()
                .zip(&actual)
                .all(|(e, a)| matches(e, a, &mut captured));
        if !same {
            return Err(format!(
                "line {line}: > {command}\n--- shown:\n{}\n--- {} printed:\n{}",
                expected.join("\n"),
                kind.name(),
                actual.join("\n")
            ));
        }
    }
    Ok(())
}

#[test]
fn placeholders_match_what_they_stand_for() {
    let mut captured = HashMap::new();
    assert!(matches(
        r#"1# "ticket" => "0.<hex>""#,
        r#"1# "ticket" => "0.5b1a7bad0e7f732a""#,
        &mut captured
    ));
    assert!(!matches(
        r#""0.<hex>""#,
        r#""0.5b1a7bad0e7f732""#,
        &mut captured
    ));
    assert!(matches(
        "(error) DUPLICATE <ticket:a>",
        "(error) DUPLICATE 12.00ff00ff00ff00ff",
        &mut captured
    ));
    assert!(!matches("<ticket:a>", "13.00ff00ff00ff00ff", &mut captured));
    assert!(matches("<ticket:a>", "12.00ff00ff00ff00ff", &mut captured));
    assert!(matches(
        "x <ms> <id> <int>",
        "x 1796170547759 1-0 -1",
        &mut captured
    ));
    assert!(!matches("<ms>", "17961705477", &mut captured));
    assert!(matches("\"<pass:p>\"", "\"a-_.b.c\"", &mut captured));
    assert_eq!(
        substitute("SEAT.HOLD e u A1 PASS <pass:p>", &captured).unwrap(),
        "SEAT.HOLD e u A1 PASS a-_.b.c"
    );
    assert!(substitute("QUEUE.STATUS e <ticket:b>", &captured).is_err());
    assert!(matches("<a | b> <x:y>", "<a | b> <x:y>", &mut captured));
    assert!(
        matches("<ticket:p>", "1.00ff00ff00ff00ff", &mut captured),
        "kinds apart"
    );
    assert_eq!(
        wait_line("(1.5 s later)"),
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn documented_sessions_replay() {
    let only = std::env::var("SEATQ_DOCS_PAGE").ok();
    let mut sessions = Vec::new();
    let mut problems = Vec::new();
    for page in pages() {
        if only
            .as_deref()
            .is_some_and(|o| !page.to_string_lossy().contains(o))
        {
            continue;
        }
        let (blocks, _) = parse_markdown(&read(&repo().join(&page)));
        for block in blocks.iter().filter(|b| b.info == "redis-cli") {
            match steps(block) {
                Ok(steps) => sessions.push((page.clone(), steps)),
                Err(e) => problems.push(format!("{}: {e}", page.display())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        only.is_some() || sessions.len() >= 30,
        "only {} sessions found",
        sessions.len()
    );
    for_each_server(|kind| {
        let failures: Vec<String> = sessions
            .iter()
            .filter_map(|(page, steps)| {
                replay(kind, steps)
                    .err()
                    .map(|e| format!("{}:{e}", page.display()))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} sessions differ on {}:\n\n{}",
            failures.len(),
            sessions.len(),
            kind.name(),
            failures.join("\n\n")
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Links

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let (_, prose) = parse_markdown(text);
    let mut seen: HashMap<String, usize> = HashMap::new();
    prose
        .iter()
        .filter_map(|(_, l)| {
            let t = l.trim_start_matches('#');
            (t.len() < l.len() && t.starts_with(' ')).then(|| slug(t))
        })
        .map(|s| {
            let n = seen.entry(s.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                s
            } else {
                format!("{s}-{}", *n - 1)
            }
        })
        .collect()
}

/// Relative link targets in a page's prose (inline code spans skipped).
fn links(prose: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose {
        let mut outside = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                outside.push_str(part);
            }
        }
        let mut rest = outside.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = &after[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((*n, target.to_string()));
            }
            rest = &after[end..];
        }
    }
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn links_resolve_and_the_readme_links_every_page() {
    let mut problems = Vec::new();
    let mut from_readme = BTreeSet::new();
    for page in pages() {
        let text = read(&repo().join(&page));
        let (_, prose) = parse_markdown(&text);
        for (line, target) in links(&prose) {
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                normalize(&page.parent().unwrap().join(file))
            };
            if page == Path::new("README.md") {
                from_readme.insert(path.clone());
            }
            let where_ = format!("{}:{line}: {target}", page.display());
            let full = repo().join(&path);
            if !full.exists() {
                if !WRITTEN_ELSEWHERE.contains(&path.to_string_lossy().as_ref()) {
                    problems.push(format!("{where_}: no such file"));
                }
                continue;
            }
            if !anchor.is_empty()
                && path.extension().is_some_and(|e| e == "md")
                && !anchors(&read(&full)).contains(anchor)
            {
                problems.push(format!("{where_}: no such heading"));
            }
        }
    }
    for page in pages().iter().filter(|p| p.starts_with("docs")) {
        if !from_readme.contains(page) {
            problems.push(format!("README.md does not link {}", page.display()));
        }
    }
    for pending in WRITTEN_ELSEWHERE {
        if !from_readme.contains(Path::new(pending)) {
            problems.push(format!("README.md does not link {pending}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Names the pages must mention

/// Every `"CODE"` an error renders as, read from `SeatqError::code` in src/error.rs.
fn error_codes() -> BTreeSet<String> {
    let source = read(&repo().join("src/error.rs"));
    let body = source
        .split("pub fn code(")
        .nth(1)
        .and_then(|s| s.split("pub fn message(").next())
        .expect("SeatqError::code in src/error.rs");
    body.lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The names a page does not show as a code span of their own or starting one (`` `CODE` ``,
/// `` `CODE <detail>` ``).
fn missing(page: &str, names: impl IntoIterator<Item = String>) -> Vec<String> {
    let text = read(&repo().join(page));
    names
        .into_iter()
        .filter(|n| !text.contains(&format!("`{n}`")) && !text.contains(&format!("`{n} ")))
        .map(|n| format!("{page} does not mention `{n}`"))
        .collect()
}

#[test]
fn every_error_code_setting_config_and_info_field_is_documented() {
    let codes = error_codes();
    assert!(codes.len() >= 15, "codes read from src/error.rs: {codes:?}");
    let mut problems = missing("docs/errors.md", codes);
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let settings: Vec<String> = fields(&ok(&mut con, &["QUEUE.CONFIG", "e", "GET"]))
            .into_iter()
            .map(|(k, _)| k.to_uppercase())
            .collect();
        assert!(settings.len() >= 16, "{settings:?}");
        let configs: Vec<String> = fields(&ok(&mut con, &["CONFIG", "GET", "seatq.*"]))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // A little of everything, so that INFO seatq lists every kind of field.
        for args in [
            &["QUEUE.ENQUEUE", "e", "u"][..],
            &["QUEUE.STATUS", "e", "nope"],
        ] {
            let _ = run(&mut con, args);
        }
        let info: String = redis::cmd("INFO").arg("seatq").query(&mut con).unwrap();
        let info_fields: BTreeSet<String> = info
            .lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .map(|k| {
                // Per-command fields are documented once, as `seatq_cmd_<command>`.
                for family in ["seatq_cmd_", "seatq_latency_"] {
                    if k.starts_with(family) {
                        return format!("{family}<command>");
                    }
                }
                k.to_string()
            })
            .collect();
        problems.extend(missing("docs/operations.md", settings));
        problems.extend(missing("docs/operations.md", configs));
        problems.extend(missing("docs/operations.md", info_fields));
    });
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
