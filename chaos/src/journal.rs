//! [`Journal`]: the operations a client saw acknowledged, on disk before the client counts
//! them.
//!
//! One JSON object per line. [`Journal::append`] writes the line and syncs the file's data
//! before it returns, so an acknowledgement the client went on from survives the client's
//! crash. [`Journal::read`] takes every complete line; a last line without its newline (the
//! client died while writing it) was never counted, and is skipped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use quorum_core::{BlockHeight, ChainId, CryptoHash};

/// One acknowledged operation: a block committed on a chain, as its certificate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The client that saw it.
    pub client: usize,
    /// The chain.
    #[serde(with = "hex_chain")]
    pub chain: ChainId,
    /// The block's height.
    pub height: BlockHeight,
    /// The certified value's hash.
    #[serde(with = "hex_hash")]
    pub hash: CryptoHash,
}

/// A journal that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened, written or synced.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A complete line is not an acknowledgement.
    #[error("journal {path}, line {line}: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
}

/// An append-only journal file: one JSON object per line. [`Journal::append`] syncs the line
/// to disk before it returns; [`Journal::read`] skips a torn last line, which was never
/// counted.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens `path` for appending, creating it if missing (a restarted client goes on with its
    /// journal).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Journal {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends `acknowledgement` and syncs it to disk; blocks for the sync.
    pub fn append(&mut self, acknowledgement: &Acknowledgement) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        // Serializing a struct of integers and strings cannot fail.
        let mut line = serde_json::to_vec(acknowledgement).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Every acknowledgement of the journal at `path`, in the order written; a torn last line
    /// is skipped. A missing file is an empty journal.
    pub fn read(path: &Path) -> Result<Vec<Acknowledgement>, JournalError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(JournalError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        complete
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                serde_json::from_str(line).map_err(|source| JournalError::Malformed {
                    path: path.to_owned(),
                    line: index + 1,
                    source,
                })
            })
            .collect()
    }
}

/// A hash as 64 hex digits.
mod hex_hash {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use quorum_core::CryptoHash;

    pub(super) fn serialize<S: Serializer>(
        hash: &CryptoHash,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash.0))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<CryptoHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(D::Error::custom)?;
        Ok(CryptoHash(bytes))
    }
}

/// A chain id as the 64 hex digits of its hash.
mod hex_chain {
    use serde::{Deserializer, Serializer};

    use quorum_core::ChainId;

    pub(super) fn serialize<S: Serializer>(
        chain: &ChainId,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::hex_hash::serialize(&chain.0, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ChainId, D::Error> {
        super::hex_hash::deserialize(deserializer).map(ChainId)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn acknowledgement(height: u64) -> Acknowledgement {
        Acknowledgement {
            client: 2,
            chain: ChainId(CryptoHash([7; 32])),
            height: BlockHeight(height),
            hash: CryptoHash([height as u8; 32]),
        }
    }

    #[test]
    fn appended_lines_read_back_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        assert!(Journal::read(&path).unwrap().is_empty());
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&acknowledgement(1)).unwrap();
        journal.append(&acknowledgement(2)).unwrap();
        drop(journal);
        // A restarted client appends to the same journal.
        Journal::open(&path)
            .unwrap()
            .append(&acknowledgement(3))
            .unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"client":2,"chain":"07"#).unwrap();
        let read = Journal::read(&path).unwrap();
        assert_eq!(
            read,
            vec![acknowledgement(1), acknowledgement(2), acknowledgement(3)]
        );
    }

    #[test]
    fn a_malformed_complete_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&acknowledgement(1)).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"client\":\"x\"}\n").unwrap();
        match Journal::read(&path) {
            Err(JournalError::Malformed { line: 2, .. }) => {}
            other => panic!("expected a malformed line 2, got {other:?}"),
        }
    }
}
