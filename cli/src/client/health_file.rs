//! The health records a `quorum client` keeps between commands (DESIGN §5.6): a short-lived
//! process learns little of the validators by itself, so each command starts from what the
//! previous ones learnt (who is suspect, for how much longer, how fast each one answers) and
//! leaves what it learnt for the next.
//!
//! The file is TOML beside the client's database (`client-health.toml` by default), written
//! atomically (a temporary file in the same directory, synced, then renamed over the old one),
//! so a crash or a concurrent command never leaves half a file. It is a cache: a missing,
//! unreadable or corrupt file means a fresh start, never a failed command.
//!
//! ```toml
//! format = 1
//! saved_at_unix_micros = 1764689803488456
//!
//! [[validators]]
//! key = "dd04a43882ed1dbd3a18fb3338cf6f143cad544ea1d288324f55bb5303efda20"
//!
//! [validators.health]
//! suspect = true
//! cooldown_left_micros = 812000
//! # …
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use quorum_core::ValidatorPublicKey;
use quorum_updater::SavedHealth;

/// Version of the file's layout; a file of another version is ignored (fresh start).
pub const HEALTH_FILE_FORMAT: u32 = 1;
/// What is appended to the database's file stem to name the health file.
pub const HEALTH_FILE_SUFFIX: &str = "-health.toml";
/// Largest number TOML can hold (its integers are signed 64-bit); larger values are clamped.
const TOML_MAX_INTEGER: u64 = i64::MAX as u64;

/// Why the health file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HealthFileError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a health file (corrupt, or edited by hand).
    #[error("{path} is not a health file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's report.
        source: Box<toml::de::Error>,
    },
    /// The file is of another layout version.
    #[error("{path} has format {found}, this program reads format {HEALTH_FILE_FORMAT}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The records could not be rendered as TOML.
    #[error("cannot encode the health records: {0}")]
    Encode(#[from] toml::ser::Error),
    /// The file (or its temporary copy) could not be written or renamed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The file's content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthFile {
    format: u32,
    /// Wall-clock time of the save, in microseconds since the Unix epoch.
    saved_at_unix_micros: u64,
    #[serde(default)]
    validators: Vec<Entry>,
}

/// One validator's record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(with = "crate::keys::hex_public_key")]
    key: ValidatorPublicKey,
    health: SavedHealth,
}

/// Health records read back, with how long ago they were saved.
#[derive(Debug)]
pub struct LoadedHealth {
    /// The records, by validator.
    pub records: Vec<(ValidatorPublicKey, SavedHealth)>,
    /// Wall-clock time since they were saved (zero if the clock went back since).
    pub elapsed: Duration,
}

/// The health file of the client whose database is `database`: beside it, named after it
/// (`client.redb` → `client-health.toml`).
pub fn path_beside(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map_or_else(|| "client".into(), |stem| stem.to_string_lossy());
    database.with_file_name(format!("{stem}{HEALTH_FILE_SUFFIX}"))
}

fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
        .min(TOML_MAX_INTEGER)
}

/// Reads the records at `path` as of `now`; `Ok(None)` when there is no file yet.
pub fn load(path: &Path, now: SystemTime) -> Result<Option<LoadedHealth>, HealthFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HealthFileError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let file: HealthFile = toml::from_str(&text).map_err(|source| HealthFileError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    if file.format != HEALTH_FILE_FORMAT {
        return Err(HealthFileError::Format {
            path: path.to_owned(),
            found: file.format,
        });
    }
    let elapsed = Duration::from_micros(unix_micros(now).saturating_sub(file.saved_at_unix_micros));
    Ok(Some(LoadedHealth {
        records: file
            .validators
            .into_iter()
            .map(|entry| (entry.key, entry.health))
            .collect(),
        elapsed,
    }))
}

/// `saved` with every number TOML cannot hold clamped to the largest it can.
fn storable(mut saved: SavedHealth) -> SavedHealth {
    let clamp = |value: &mut u64| *value = (*value).min(TOML_MAX_INTEGER);
    clamp(&mut saved.cooldown_left_micros);
    clamp(&mut saved.cooldown_micros);
    for value in saved
        .next_cooldown_micros
        .iter_mut()
        .chain(saved.latency_micros.iter_mut())
        .chain(saved.samples_micros.iter_mut())
    {
        clamp(value);
    }
    saved
}

/// Writes `records`, saved at `now`, to `path` atomically: a temporary file in the same
/// directory, synced to disk, then renamed over `path`.
pub fn save(
    path: &Path,
    records: Vec<(ValidatorPublicKey, SavedHealth)>,
    now: SystemTime,
) -> Result<(), HealthFileError> {
    let file = HealthFile {
        format: HEALTH_FILE_FORMAT,
        saved_at_unix_micros: unix_micros(now),
        validators: records
            .into_iter()
            .map(|(key, health)| Entry {
                key,
                health: storable(health),
            })
            .collect(),
    };
    let text = toml::to_string(&file)?;
    let name = path
        .file_name()
        .map_or_else(|| "health".into(), |name| name.to_string_lossy());
    // One temporary name per process, so concurrent commands never write the same one.
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written =
        write_synced(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        HealthFileError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(byte: u8) -> ValidatorPublicKey {
        ValidatorPublicKey::from_bytes([byte; 32])
    }

    fn suspect() -> SavedHealth {
        SavedHealth {
            suspect: true,
            cooldown_left_micros: 2_000_000,
            cooldown_micros: 4_000_000,
            next_cooldown_micros: Some(8_000_000),
            consecutive_failures: 5,
            latency_micros: None,
            success: 0.25,
            samples_micros: vec![900, 1_100, u64::MAX],
            violations: 2,
        }
    }

    #[test]
    fn round_trip_with_the_time_since_the_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_beside(&dir.path().join("client.redb"));
        assert_eq!(path, dir.path().join("client-health.toml"));
        let saved_at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let records = vec![(key(1), SavedHealth::default()), (key(2), suspect())];
        save(&path, records.clone(), saved_at).unwrap();
        let loaded = load(&path, saved_at + Duration::from_millis(1_500))
            .unwrap()
            .unwrap();
        assert_eq!(loaded.elapsed, Duration::from_millis(1_500));
        let mut expected = records;
        expected[1].1.samples_micros[2] = TOML_MAX_INTEGER;
        assert_eq!(loaded.records, expected);
        // A clock that went back counts as no time at all.
        let loaded = load(&path, saved_at - Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(loaded.elapsed, Duration::ZERO);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("client-health.toml")]);
    }

    #[test]
    fn missing_corrupt_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client-health.toml");
        assert!(load(&path, SystemTime::now()).unwrap().is_none());
        for (text, needle) in [
            (
                "format = 1\nsaved_at_unix_micros = \"x\"\n",
                "not a health file",
            ),
            ("\u{0}\u{1}garbage", "not a health file"),
            ("format = 9\nsaved_at_unix_micros = 1\n", "format 9"),
            (
                "format = 1\nsaved_at_unix_micros = 1\n[[validators]]\nkey = \"zz\"\n",
                "not a health file",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = load(&path, SystemTime::now()).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }
}
