//! Primary == replica. With writes paused on the primary (the module's timer waits too) and the
//! replica caught up to the same replication offset: DEBUG DIGEST-VALUE of the event, the
//! journals' length, last ID and entries added, the key count, and at the end DEBUG DIGEST of
//! the whole database (slow: a stream's digest walks every entry, seconds for a million). The
//! journal's entries themselves are compared after the pause, up to the last ID both had: they
//! never change once written, so each comparison reads only the entries new since the last.

use std::time::{Duration, Instant};

use redis::{Connection, Value};
use seatq_testkit::info::info_value;
use seatq_testkit::journal::{entries, JournalEntry};
use seatq_testkit::reply::text;

use super::Chaos;
use crate::reply::field_text;
use crate::run::Shared;
use crate::sale::Sale;

/// Journal entries per XRANGE when comparing them.
const CHUNK: usize = 10_000;

/// What both servers said.
pub struct Comparison {
    /// (name, primary's, replica's)
    pub items: Vec<(&'static str, String, String)>,
    /// Journal entries compared one by one (since the last comparison), and the first that
    /// differed.
    pub entries_compared: u64,
    pub entry_mismatch: Option<String>,
}

impl Comparison {
    pub fn equal(&self) -> bool {
        self.items.iter().all(|(_, a, b)| a == b) && self.entry_mismatch.is_none()
    }

    pub fn summary(&self) -> String {
        if self.equal() {
            format!(
                "primary == replica (event digest, journal: {} new entries equal)",
                self.entries_compared
            )
        } else {
            format!("primary != replica: {}", self.differences())
        }
    }

    fn differences(&self) -> String {
        let mut d: Vec<String> = self
            .items
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(name, a, b)| format!("{name} {a} vs {b}"))
            .collect();
        d.extend(self.entry_mismatch.clone());
        d.join(", ")
    }

    pub fn detail(&self) -> String {
        let get = |name: &str| {
            self.items
                .iter()
                .find(|(n, _, _)| *n == name)
                .map_or("?".to_string(), |(_, a, _)| a.clone())
        };
        if self.equal() {
            let digest = get("DEBUG DIGEST");
            format!(
                "equal (DEBUG DIGEST {}, event digest {}, journal {} entries up to {})",
                &digest[..12.min(digest.len())],
                &get("event digest")[..12.min(get("event digest").len())],
                get("journal length"),
                get("journal last id")
            )
        } else {
            format!("DIFFER: {}", self.differences())
        }
    }
}

fn replication_offset(con: &mut Connection) -> Result<String, String> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(con)
        .map_err(|e| e.to_string())?;
    Ok(info_value(&info, "master_repl_offset")
        .unwrap_or("")
        .to_string())
}

/// Compares primary and replica; `full` adds DEBUG DIGEST of everything (at the end).
pub fn digests(
    chaos: &mut Chaos,
    sale: &Sale,
    shared: Option<&Shared>,
    full: bool,
) -> Result<Comparison, String> {
    let (p, r) = (chaos.primary, chaos.replica());
    let mut primary = chaos.con(p)?;
    let mut replica = chaos.con(r)?;
    // Long enough for a replica that has just resynced to stream the backlog on a loaded machine
    // (half of it at most goes to catching up); the pause ends as soon as the reading is done.
    let pause = Duration::from_secs(if full { 300 } else { 40 });
    let compare_paused = |primary: &mut Connection, replica: &mut Connection| {
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis() as u64)
            .arg("WRITE")
            .query(primary)
            .map_err(|e| format!("CLIENT PAUSE: {e}"))?;
        let paused = Instant::now();
        let result = (|| {
            loop {
                let (a, b) = (replication_offset(primary)?, replication_offset(replica)?);
                if a == b {
                    break;
                }
                if paused.elapsed() > pause / 2 {
                    return Err(format!(
                        "replica at replication offset {b}, primary at {a}, after {:?}",
                        paused.elapsed()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut items = Vec::new();
            let mut both = |name: &'static str, args: &[&str]| -> Result<(), String> {
                let ask = |con: &mut Connection| -> Result<Value, String> {
                    seatq_testkit::run(con, args).map_err(|e| format!("{}: {e}", args.join(" ")))
                };
                let (a, b) = (ask(primary)?, ask(replica)?);
                let show = |v: &Value, name: &str| match (v, name) {
                    (_, "journal last id") => field_text(v, "last-generated-id"),
                    (_, "journal entries added") => field_text(v, "entries-added"),
                    (Value::Array(items), _) => items.first().map(text).unwrap_or_default(),
                    (other, _) => text(other),
                };
                items.push((name, show(&a, name), show(&b, name)));
                Ok(())
            };
            both("event digest", &["DEBUG", "DIGEST-VALUE", &sale.key])?;
            both("journal length", &["XLEN", &sale.journal])?;
            both("journal last id", &["XINFO", "STREAM", &sale.journal])?;
            both("journal entries added", &["XINFO", "STREAM", &sale.journal])?;
            both("keys", &["DBSIZE"])?;
            if full {
                both("DEBUG DIGEST", &["DEBUG", "DIGEST"])?;
            }
            if paused.elapsed() + Duration::from_millis(500) >= pause {
                return Err(format!(
                    "the comparison took {:?}, longer than the pause",
                    paused.elapsed()
                ));
            }
            Ok(items)
        })();
        let _: redis::RedisResult<()> = redis::cmd("CLIENT").arg("UNPAUSE").query(primary);
        result
    };
    let items = match shared {
        Some(shared) => shared.outage(|| compare_paused(&mut primary, &mut replica))?,
        None => compare_paused(&mut primary, &mut replica)?,
    };
    let last_id = items
        .iter()
        .find(|(n, _, _)| *n == "journal last id")
        .map(|(_, a, b)| (a.clone(), b.clone()));
    let mut comparison = Comparison {
        items,
        entries_compared: 0,
        entry_mismatch: None,
    };
    // The entries both journals had, compared one by one since the last time.
    if let Some((a, b)) = last_id {
        if a == b && !a.is_empty() {
            let (n, mismatch) = compare_entries(
                &mut primary,
                &mut replica,
                &sale.journal,
                &chaos.journal_checked,
                &a,
            )?;
            comparison.entries_compared = n;
            comparison.entry_mismatch = mismatch;
            if comparison.entry_mismatch.is_none() {
                chaos.journal_checked = Some(a);
            }
        }
    }
    Ok(comparison)
}

fn xrange(
    con: &mut Connection,
    key: &str,
    start: &str,
    end: &str,
) -> Result<Vec<JournalEntry>, String> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(start)
        .arg(end)
        .arg("COUNT")
        .arg(CHUNK)
        .query(con)
        .map_err(|e| format!("XRANGE: {e}"))?;
    Ok(entries(&reply))
}

/// Compares the entries after `from` (exclusive; None: from the first) up to `to` on both.
fn compare_entries(
    primary: &mut Connection,
    replica: &mut Connection,
    key: &str,
    from: &Option<String>,
    to: &str,
) -> Result<(u64, Option<String>), String> {
    let mut start = match from {
        Some(id) => format!("({id}"),
        None => "-".to_string(),
    };
    let mut compared = 0;
    loop {
        let a = xrange(primary, key, &start, to)?;
        let b = xrange(replica, key, &start, to)?;
        for (x, y) in a.iter().zip(&b) {
            if x != y {
                return Ok((
                    compared,
                    Some(format!(
                        "journal entry {} on the primary is {:?}, on the replica {} {:?}",
                        x.0, x.1, y.0, y.1
                    )),
                ));
            }
            compared += 1;
        }
        if a.len() != b.len() {
            return Ok((
                compared,
                Some(format!(
                    "journal entries after {start}: {} on the primary, {} on the replica",
                    a.len(),
                    b.len()
                )),
            ));
        }
        match a.last() {
            Some((id, _)) if a.len() == CHUNK => start = format!("({id}"),
            _ => return Ok((compared, None)),
        }
    }
}
