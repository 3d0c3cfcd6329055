//! Event settings: one table serves the per-event `QUEUE.CONFIG` fields, their module-level
//! defaults (`CONFIG SET seatq.<name>`) and their persistence IDs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::admission::pass::{parse_keys, PassKey};
use crate::error::SeatqError;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    Heartbeat,
    IdempotencyTtl,
    Journal,
    JournalMaxAge,
    Rate,
    HoldTtl,
    UserLimit,
    Burst,
    Capacity,
    PassTtl,
    RequirePass,
    ConfirmEndsSession,
    OpensAt,
    ClaimTtl,
    SessionMax,
    ClosesAt,
}

pub struct SettingSpec {
    pub setting: Setting,
    /// Name in QUEUE.CONFIG.
    pub field: &'static str,
    /// Module config name, without the `seatq.` prefix.
    pub module_config: &'static str,
    /// Stable ID in the RDB encoding; never reuse one.
    pub persist_id: u64,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    pub boolean: bool,
}

const DAY_MS: i64 = 86_400_000;
/// 2100-01-01, the latest OPENS-AT / CLOSES-AT.
const MAX_TIME_MS: i64 = 4_102_444_800_000;

pub const SETTINGS: [SettingSpec; 16] = [
    SettingSpec {
        setting: Setting::Heartbeat,
        field: "HEARTBEAT",
        module_config: "heartbeat-ms",
        persist_id: 1,
        default: 60_000,
        min: 1_000,
        max: DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::IdempotencyTtl,
        field: "IDEMPOTENCY-TTL",
        module_config: "idempotency-ttl-ms",
        persist_id: 2,
        default: 300_000,
        min: 1_000,
        max: 7 * DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::Journal,
        field: "JOURNAL",
        module_config: "journal",
        persist_id: 3,
        default: 1,
        min: 0,
        max: 1,
        boolean: true,
    },
    SettingSpec {
        setting: Setting::JournalMaxAge,
        field: "JOURNAL-MAXAGE",
        module_config: "journal-maxage-ms",
        persist_id: 4,
        default: DAY_MS,
        min: 0,
        max: 365 * DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::Rate,
        field: "RATE",
        module_config: "rate",
        persist_id: 5,
        default: 100,
        min: 1,
        // What the upkeep can call with room to spare within its time slices (BENCHMARKS.md).
        max: 20_000,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::HoldTtl,
        field: "HOLD-TTL",
        module_config: "hold-ttl-ms",
        persist_id: 6,
        default: 600_000,
        min: 1_000,
        max: DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::UserLimit,
        field: "USER-LIMIT",
        module_config: "user-limit",
        persist_id: 7,
        default: 0,
        min: 0,
        max: 100_000,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::Burst,
        field: "BURST",
        module_config: "burst",
        persist_id: 8,
        default: 10,
        min: 1,
        max: 1_000_000,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::Capacity,
        field: "CAPACITY",
        module_config: "capacity",
        persist_id: 9,
        default: 0,
        min: 0,
        max: 100_000_000,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::PassTtl,
        field: "PASS-TTL",
        module_config: "pass-ttl-ms",
        persist_id: 10,
        default: 900_000,
        min: 1_000,
        max: DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::RequirePass,
        field: "REQUIRE-PASS",
        module_config: "require-pass",
        persist_id: 11,
        default: 1,
        min: 0,
        max: 1,
        boolean: true,
    },
    SettingSpec {
        setting: Setting::ConfirmEndsSession,
        field: "CONFIRM-ENDS-SESSION",
        module_config: "confirm-ends-session",
        persist_id: 12,
        default: 1,
        min: 0,
        max: 1,
        boolean: true,
    },
    SettingSpec {
        setting: Setting::OpensAt,
        field: "OPENS-AT",
        module_config: "opens-at-ms",
        persist_id: 13,
        default: 0,
        min: 0,
        max: MAX_TIME_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::ClaimTtl,
        field: "CLAIM-TTL",
        module_config: "claim-ttl-ms",
        persist_id: 14,
        default: 30_000,
        min: 1_000,
        max: DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::SessionMax,
        field: "SESSION-MAX",
        module_config: "session-max-ms",
        persist_id: 15,
        default: 3_600_000,
        min: 1_000,
        max: 7 * DAY_MS,
        boolean: false,
    },
    SettingSpec {
        setting: Setting::ClosesAt,
        field: "CLOSES-AT",
        module_config: "closes-at-ms",
        persist_id: 16,
        default: 0,
        min: 0,
        max: MAX_TIME_MS,
        boolean: false,
    },
];

/// Module-wide defaults, registered as module configs at load.
pub static DEFAULTS: [AtomicI64; SETTINGS.len()] = [const { AtomicI64::new(0) }; SETTINGS.len()];

/// `seatq.pass-keys`: the keys passes are signed (first) and verified with. Never journaled,
/// replicated or persisted by seatq: each node gets them from its own configuration.
static PASS_KEYS: Mutex<Option<(String, Arc<Vec<PassKey>>)>> = Mutex::new(None);

pub fn pass_keys() -> Arc<Vec<PassKey>> {
    let guard = PASS_KEYS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map(|(_, keys)| keys.clone())
        .unwrap_or_default()
}

/// The configured text (CONFIG GET).
pub fn pass_keys_text() -> String {
    let guard = PASS_KEYS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map(|(text, _)| text.clone())
        .unwrap_or_default()
}

/// CONFIG SET / redis.conf: refused (nothing changes) unless every key is well-formed.
pub fn set_pass_keys(text: &str) -> Result<(), String> {
    let keys = parse_keys(text)?;
    *PASS_KEYS.lock().unwrap_or_else(|e| e.into_inner()) = Some((text.to_string(), Arc::new(keys)));
    Ok(())
}

impl Setting {
    pub fn spec(self) -> &'static SettingSpec {
        SETTINGS
            .iter()
            .find(|s| s.setting == self)
            .expect("every setting is in the table")
    }

    fn index(self) -> usize {
        SETTINGS
            .iter()
            .position(|s| s.setting == self)
            .expect("in table")
    }

    pub fn from_field(name: &[u8]) -> Option<Setting> {
        SETTINGS
            .iter()
            .find(|s| s.field.as_bytes().eq_ignore_ascii_case(name))
            .map(|s| s.setting)
    }

    pub fn from_persist_id(id: u64) -> Option<Setting> {
        SETTINGS
            .iter()
            .find(|s| s.persist_id == id)
            .map(|s| s.setting)
    }

    /// Parses a value given to QUEUE.CONFIG SET (booleans also take on/off).
    pub fn parse(self, value: &[u8]) -> Result<u64, SeatqError> {
        let spec = self.spec();
        let parsed = if spec.boolean && value.eq_ignore_ascii_case(b"on") {
            Some(1)
        } else if spec.boolean && value.eq_ignore_ascii_case(b"off") {
            Some(0)
        } else {
            crate::entry_id::parse_u64(value).and_then(|v| i64::try_from(v).ok())
        };
        match parsed {
            Some(v) if (spec.min..=spec.max).contains(&v) => Ok(v as u64),
            _ if spec.boolean => Err(SeatqError::Invalid(format!(
                "{} must be on or off",
                spec.field
            ))),
            _ => Err(SeatqError::Invalid(format!(
                "{} must be an integer from {} to {}",
                spec.field, spec.min, spec.max
            ))),
        }
    }
}

/// The settings of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventConfig {
    values: [u64; SETTINGS.len()],
}

impl EventConfig {
    /// A new event takes the module-wide defaults in force when it is created.
    pub fn from_defaults() -> Self {
        let mut values = [0u64; SETTINGS.len()];
        for (i, spec) in SETTINGS.iter().enumerate() {
            let v = DEFAULTS[i].load(Ordering::Relaxed);
            values[i] = if (spec.min..=spec.max).contains(&v) {
                v as u64
            } else {
                spec.default as u64
            };
        }
        Self { values }
    }

    pub fn get(&self, setting: Setting) -> u64 {
        self.values[setting.index()]
    }

    /// Sets a value already validated by `Setting::parse` (or loaded and clamped).
    pub fn set(&mut self, setting: Setting, value: u64) {
        let spec = setting.spec();
        self.values[setting.index()] = value.clamp(spec.min as u64, spec.max as u64);
    }

    pub fn heartbeat_ms(&self) -> u64 {
        self.get(Setting::Heartbeat)
    }

    pub fn journal_on(&self) -> bool {
        self.get(Setting::Journal) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, spec) in SETTINGS.iter().enumerate() {
            assert!(
                spec.min <= spec.default && spec.default <= spec.max,
                "{}",
                spec.field
            );
            assert_eq!(
                Setting::from_persist_id(spec.persist_id),
                Some(spec.setting)
            );
            assert_eq!(spec.setting.index(), i);
        }
    }

    #[test]
    fn parse_validates_ranges() {
        assert_eq!(Setting::Heartbeat.parse(b"30000").unwrap(), 30000);
        assert!(Setting::Heartbeat.parse(b"999").is_err());
        assert!(Setting::Heartbeat.parse(b"-5").is_err());
        assert!(Setting::Heartbeat.parse(b"1e9").is_err());
        assert_eq!(Setting::Journal.parse(b"OFF").unwrap(), 0);
        assert!(Setting::Journal.parse(b"2").is_err());
        assert_eq!(Setting::from_field(b"heartbeat"), Some(Setting::Heartbeat));
    }
}
