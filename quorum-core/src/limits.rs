//! [`Limits`]: every bound of the protocol that all nodes of a committee must agree on, in one
//! documented value, and the bounds derived from it (the largest frame a transport must carry).
//!
//! A validator refuses what exceeds a bound with [`NodeError::LimitExceeded`] or
//! [`ExecutionError::TooLarge`], naming the bound with a [`Limit`]. Nodes that disagree on a
//! bound disagree on which blocks are valid or which answers fit a frame, so the value is the
//! committee's, not a node's: budgets that only protect one node's memory (how many blobs it
//! holds, how many connections it serves) are that node's own settings, beside it
//! (`WorkerConfig`, `ServerConfig`).
//!
//! [`NodeError::LimitExceeded`]: crate::NodeError::LimitExceeded
//! [`ExecutionError::TooLarge`]: crate::ExecutionError::TooLarge
//! [`Limit`]: crate::Limit

use serde::{Deserialize, Serialize};

/// The protocol's bounds, each with its unit and default ([`Limits::DEFAULT`]).
///
/// Who reads what: the pure execution rule ([`execute_block`](crate::execute_block))
/// takes the block bounds from its inputs, which the Worker fills from its configuration; the
/// Worker checks uploads, batches, queries and downloads against the same value; transports
/// size their frames with [`Limits::max_frame_length`]. Committees are checked where they are
/// built or decoded, with no `Limits` at hand, so their bound is fixed (see
/// [`max_committee_members`](Self::max_committee_members)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most operations one block may carry, in operations (default 1,000).
    pub max_operations_per_block: usize,
    /// Most incoming bundles one block may consume, in bundles (default 1,000). A client
    /// proposes at most this many; the rest wait for the next block.
    pub max_incoming_bundles_per_block: usize,
    /// Largest payload of one emitted event, in bytes (default 64 KiB).
    pub max_event_payload_bytes: usize,
    /// Most members of a committee, zero-weight ones included, in members (default 1,024).
    /// Decoding a member's key costs tens of microseconds, so this bounds what building one
    /// committee can cost (about 50 ms). Fixed: committees are checked whenever they are built
    /// or decoded (from a block, a file or storage, through serde), where no `Limits` is at
    /// hand, always against [`Limits::DEFAULT`]; [`Limits::validate`] refuses another value.
    pub max_committee_members: usize,
    /// Most certificate hashes one chain information query may ask for, in hashes (default
    /// 1,000); a longer range is answered up to this many.
    pub max_certificate_hashes_per_query: u64,
    /// Most items of one batch, in items (default 1,000): certificates handed over at once,
    /// heights of one download, blob ids of one `missing_blob_ids` question.
    pub max_certificates_per_batch: usize,
    /// Largest blob content accepted, in bytes (default 4 MiB).
    pub max_blob_bytes: usize,
    /// Bytes of certificates one download answer holds at most, in bytes (default 8 MiB); a
    /// download that reaches it stops there and the shorter answer says how far it got (at
    /// least one certificate is always returned, whatever its size).
    pub max_download_bytes: usize,
    /// Most entries of a chain's received log one chain information query is answered with,
    /// in entries (default 1,000; each entry is [`ReceivedEntry::ENCODED_BYTES`], 40 bytes, so
    /// a page holds at most 40,000 bytes of entries). A client reads a longer log page by page.
    ///
    /// [`ReceivedEntry::ENCODED_BYTES`]: crate::ReceivedEntry::ENCODED_BYTES
    pub max_received_log_entries_per_query: usize,
    /// Largest block, as its canonical (BCS) encoding, in bytes (default 2 MiB). Every field
    /// a block carries that no other entry bounds (a chain description's owners, an encoded
    /// committee, the messages of the bundles it consumes) is bounded by it; a proposal whose
    /// block is larger is refused before anything of it is executed or stored.
    pub max_block_bytes: usize,
    /// Longest name of an event stream, in bytes (default 256), emitted or read.
    pub max_stream_name_bytes: usize,
    /// Longest network address of a committee member, in bytes (default 256). Fixed, like
    /// [`max_committee_members`](Self::max_committee_members): committees are checked where
    /// no `Limits` is at hand.
    pub max_validator_address_bytes: usize,
}

/// A [`Limits`] value that is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A bound is zero: nothing could ever pass it.
    #[error("{field} must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A bound that is fixed by the protocol was given another value.
    #[error("{field} is fixed at {fixed}, got {value}")]
    Fixed {
        /// The field.
        field: &'static str,
        /// The only accepted value.
        fixed: usize,
        /// The value given.
        value: usize,
    },
    /// A message the limits allow does not fit the frame they derive.
    #[error(
        "{what} of up to {bytes} bytes does not fit the largest frame of {max_frame_length} bytes"
    )]
    ExceedsFrame {
        /// The message.
        what: &'static str,
        /// Its largest size, envelope included, in bytes.
        bytes: usize,
        /// [`Limits::max_frame_length`].
        max_frame_length: usize,
    },
    /// The largest frame does not fit a `usize`.
    #[error("the largest frame overflows")]
    Overflow,
}

/// Encoded size of a certificate hash, in bytes.
const HASH_BYTES: usize = 32;
/// Encoded size of a blob id (a hash and a one-byte type), in bytes.
const BLOB_ID_BYTES: usize = HASH_BYTES + 1;

impl Limits {
    /// The protocol's bounds.
    pub const DEFAULT: Limits = Limits {
        max_operations_per_block: 1_000,
        max_incoming_bundles_per_block: 1_000,
        max_event_payload_bytes: 64 * 1024,
        max_committee_members: 1_024,
        max_certificate_hashes_per_query: 1_000,
        max_certificates_per_batch: 1_000,
        max_blob_bytes: 4 << 20,
        max_download_bytes: 8 << 20,
        max_received_log_entries_per_query: 1_000,
        max_block_bytes: 2 << 20,
        max_stream_name_bytes: 256,
        max_validator_address_bytes: 256,
    };

    /// Bytes a message adds, at most, around the payload the limits bound (a blob's content,
    /// a download's certificates, a list of ids): the transport's envelope (an 8-byte request
    /// id), the request or response variant and `Result` tags (one byte each), length
    /// prefixes (up to five bytes each) and the fixed fields beside the payload (a 32-byte
    /// chain id, a one-byte blob type). 64 bytes.
    pub const MESSAGE_OVERHEAD: usize = 64;

    /// How many times the largest byte budget ([`max_blob_bytes`](Self::max_blob_bytes) or
    /// [`max_download_bytes`](Self::max_download_bytes)) a frame holds: two (see
    /// [`max_frame_length`](Self::max_frame_length)).
    pub const FRAME_HEADROOM: usize = 2;

    /// The larger of the two byte budgets: a blob's content or a download answer's
    /// certificates, in bytes.
    pub const fn max_payload_bytes(&self) -> usize {
        if self.max_download_bytes > self.max_blob_bytes {
            self.max_download_bytes
        } else {
            self.max_blob_bytes
        }
    }

    /// The largest message these limits bound, in bytes, envelope included: a download answer
    /// or a blob upload, pending blob or blob download, i.e. [`max_payload_bytes`] plus
    /// [`MESSAGE_OVERHEAD`] (8 MiB + 64 bytes with the defaults).
    ///
    /// [`max_payload_bytes`]: Self::max_payload_bytes
    /// [`MESSAGE_OVERHEAD`]: Self::MESSAGE_OVERHEAD
    pub const fn max_bounded_message_bytes(&self) -> usize {
        self.max_payload_bytes()
            .saturating_add(Self::MESSAGE_OVERHEAD)
    }

    /// The largest frame body a transport must send and accept, in bytes: [`FRAME_HEADROOM`]
    /// (2) times [`max_payload_bytes`] — 16 MiB with the defaults.
    ///
    /// The first half carries the payload of the largest message the limits bound (a full
    /// download answer, a largest blob); the second covers that message's
    /// [`MESSAGE_OVERHEAD`] and is the headroom of the messages the limits do not bound in
    /// bytes: blocks, in proposals and certificates (and a download answer of one certificate,
    /// sent whatever the download budget), which only the frame bounds. Saturates at
    /// `usize::MAX` ([`validate`](Self::validate) refuses that).
    ///
    /// [`FRAME_HEADROOM`]: Self::FRAME_HEADROOM
    /// [`max_payload_bytes`]: Self::max_payload_bytes
    /// [`MESSAGE_OVERHEAD`]: Self::MESSAGE_OVERHEAD
    pub const fn max_frame_length(&self) -> usize {
        self.max_payload_bytes()
            .saturating_mul(Self::FRAME_HEADROOM)
    }

    /// Checks that the bounds are consistent: none is zero, the fixed ones have their value,
    /// and every message they bound fits the frame they derive.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let counts = [
            ("max_operations_per_block", self.max_operations_per_block),
            (
                "max_incoming_bundles_per_block",
                self.max_incoming_bundles_per_block,
            ),
            ("max_event_payload_bytes", self.max_event_payload_bytes),
            ("max_committee_members", self.max_committee_members),
            (
                "max_certificates_per_batch",
                self.max_certificates_per_batch,
            ),
            ("max_blob_bytes", self.max_blob_bytes),
            ("max_download_bytes", self.max_download_bytes),
            (
                "max_received_log_entries_per_query",
                self.max_received_log_entries_per_query,
            ),
            ("max_block_bytes", self.max_block_bytes),
            ("max_stream_name_bytes", self.max_stream_name_bytes),
        ];
        for (field, value) in counts {
            if value == 0 {
                return Err(LimitsError::Zero { field });
            }
        }
        if self.max_certificate_hashes_per_query == 0 {
            return Err(LimitsError::Zero {
                field: "max_certificate_hashes_per_query",
            });
        }
        let fixed = [
            (
                "max_committee_members",
                Limits::DEFAULT.max_committee_members,
                self.max_committee_members,
            ),
            (
                "max_validator_address_bytes",
                Limits::DEFAULT.max_validator_address_bytes,
                self.max_validator_address_bytes,
            ),
        ];
        for (field, fixed, value) in fixed {
            if value != fixed {
                return Err(LimitsError::Fixed {
                    field,
                    fixed,
                    value,
                });
            }
        }
        let max_frame_length = self
            .max_payload_bytes()
            .checked_mul(Self::FRAME_HEADROOM)
            .ok_or(LimitsError::Overflow)?;
        let hashes = usize::try_from(self.max_certificate_hashes_per_query).unwrap_or(usize::MAX);
        let messages = [
            (
                "a largest blob or download answer",
                Some(self.max_payload_bytes()),
            ),
            (
                "an answer with the most certificate hashes",
                hashes.checked_mul(HASH_BYTES),
            ),
            (
                "a batch of the most blob ids",
                self.max_certificates_per_batch.checked_mul(BLOB_ID_BYTES),
            ),
            (
                "a page of the received log",
                self.max_received_log_entries_per_query
                    .checked_mul(crate::ReceivedEntry::ENCODED_BYTES),
            ),
            (
                "a largest event payload",
                Some(self.max_event_payload_bytes),
            ),
            ("a largest block", Some(self.max_block_bytes)),
        ];
        for (what, payload) in messages {
            let bytes = payload
                .and_then(|payload| payload.checked_add(Self::MESSAGE_OVERHEAD))
                .unwrap_or(usize::MAX);
            if bytes > max_frame_length {
                return Err(LimitsError::ExceedsFrame {
                    what,
                    bytes,
                    max_frame_length,
                });
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_give_a_16_mib_frame() {
        assert_eq!(Limits::default(), Limits::DEFAULT);
        assert_eq!(Limits::DEFAULT.validate(), Ok(()));
        assert_eq!(Limits::DEFAULT.max_frame_length(), 16 << 20);
        assert_eq!(
            Limits::DEFAULT.max_bounded_message_bytes(),
            (8 << 20) + Limits::MESSAGE_OVERHEAD
        );
    }

    #[test]
    fn the_frame_follows_the_largest_budget() {
        let limits = Limits {
            max_blob_bytes: 32 << 20,
            ..Limits::DEFAULT
        };
        assert_eq!(limits.max_frame_length(), 64 << 20);
        assert!(limits.max_bounded_message_bytes() <= limits.max_frame_length());
        assert_eq!(limits.validate(), Ok(()));
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let zero = Limits {
            max_operations_per_block: 0,
            ..Limits::DEFAULT
        };
        assert_eq!(
            zero.validate(),
            Err(LimitsError::Zero {
                field: "max_operations_per_block"
            })
        );
        let committee = Limits {
            max_committee_members: 2_048,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            committee.validate(),
            Err(LimitsError::Fixed { value: 2_048, .. })
        ));
        // Hashes that no frame of these limits can carry.
        let hashes = Limits {
            max_certificate_hashes_per_query: 1 << 20,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            hashes.validate(),
            Err(LimitsError::ExceedsFrame { .. })
        ));
        // Budgets so small that the overhead of a message is more than the headroom.
        let tiny = Limits {
            max_blob_bytes: 16,
            max_download_bytes: 16,
            max_event_payload_bytes: 1,
            max_certificates_per_batch: 1,
            max_certificate_hashes_per_query: 1,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            tiny.validate(),
            Err(LimitsError::ExceedsFrame { .. })
        ));
        let huge = Limits {
            max_download_bytes: usize::MAX,
            ..Limits::DEFAULT
        };
        assert_eq!(huge.max_frame_length(), usize::MAX);
        assert_eq!(huge.validate(), Err(LimitsError::Overflow));
    }
}
