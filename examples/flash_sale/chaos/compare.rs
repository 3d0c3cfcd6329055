//! Primary == replica: with writes paused on the primary (the module's timer waits too) and
//! the replica caught up to the same replication offset, DEBUG DIGEST of both databases,
//! DEBUG DIGEST-VALUE of the event and of its journal, the journals' lengths and last IDs.

use std::time::Duration;

use seatq_testkit::info::info_value;
use seatq_testkit::reply::text;

use super::Chaos;
use crate::reply::field_text;
use crate::sale::Sale;

/// What both servers said.
pub struct Comparison {
    /// (name, primary's, replica's)
    pub items: Vec<(&'static str, String, String)>,
}

impl Comparison {
    pub fn equal(&self) -> bool {
        self.items.iter().all(|(_, a, b)| a == b)
    }

    pub fn summary(&self) -> String {
        if self.equal() {
            "primary == replica (digests, journal)".to_string()
        } else {
            format!("primary != replica: {}", self.differences())
        }
    }

    fn differences(&self) -> String {
        self.items
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(name, a, b)| format!("{name} {a} vs {b}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn detail(&self) -> String {
        let get = |name: &str| {
            self.items
                .iter()
                .find(|(n, _, _)| *n == name)
                .map_or("?".to_string(), |(_, a, _)| a.clone())
        };
        if self.equal() {
            format!(
                "equal (DEBUG DIGEST {}, journal {} entries up to {})",
                &get("digest")[..12.min(get("digest").len())],
                get("journal length"),
                get("journal last id")
            )
        } else {
            format!("DIFFER: {}", self.differences())
        }
    }
}

pub fn digests(chaos: &Chaos, sale: &Sale) -> Result<Comparison, String> {
    let (p, r) = (chaos.primary, chaos.replica());
    let mut primary = chaos.con(p)?;
    let mut replica = chaos.con(r)?;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(10_000)
        .arg("WRITE")
        .query(&mut primary)
        .map_err(|e| format!("CLIENT PAUSE: {e}"))?;
    let result = (|| {
        let offset = |con: &mut redis::Connection| -> Result<String, String> {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(con)
                .map_err(|e| e.to_string())?;
            Ok(info_value(&info, "master_repl_offset").unwrap_or("").to_string())
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        loop {
            let (a, b) = (offset(&mut primary)?, offset(&mut replica)?);
            if a == b {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("replica at offset {b}, primary at {a}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut items = Vec::new();
        let mut both = |name: &'static str, args: &[&str]| -> Result<(), String> {
            let ask = |con: &mut redis::Connection| -> Result<redis::Value, String> {
                seatq_testkit::run(con, args).map_err(|e| format!("{}: {e}", args.join(" ")))
            };
            let (a, b) = (ask(&mut primary)?, ask(&mut replica)?);
            let show = |v: &redis::Value| match v {
                redis::Value::Array(items) => items.first().map(text).unwrap_or_default(),
                other => text(other),
            };
            let (a, b) = match name {
                "journal last id" => (
                    field_text(&a, "last-generated-id"),
                    field_text(&b, "last-generated-id"),
                ),
                _ => (show(&a), show(&b)),
            };
            items.push((name, a, b));
            Ok(())
        };
        both("digest", &["DEBUG", "DIGEST"])?;
        both("event digest", &["DEBUG", "DIGEST-VALUE", &sale.key])?;
        both("journal digest", &["DEBUG", "DIGEST-VALUE", &sale.journal])?;
        both("journal length", &["XLEN", &sale.journal])?;
        both("journal last id", &["XINFO", "STREAM", &sale.journal])?;
        both("keys", &["DBSIZE"])?;
        Ok(Comparison { items })
    })();
    let _: redis::RedisResult<()> = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut primary);
    result
}
