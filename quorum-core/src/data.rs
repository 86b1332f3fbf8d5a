//! The protocol's basic data (DESIGN §4.1): heights, time, chains, blobs and events.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::committee::Epoch;
use crate::crypto::AccountPublicKey;
use crate::hash::{BcsHashable, CryptoHash};

/// The height of a block in its chain; the first block has height 0.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct BlockHeight(pub u64);

impl BlockHeight {
    /// The next height, or `None` at the end of the range.
    pub fn try_next(self) -> Option<BlockHeight> {
        self.0.checked_add(1).map(BlockHeight)
    }
}

impl fmt::Display for BlockHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "height {}", self.0)
    }
}

/// A point in time, in microseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

/// A duration, in microseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct TimeDelta(pub u64);

impl TimeDelta {
    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        TimeDelta(millis.saturating_mul(1_000))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        TimeDelta(secs.saturating_mul(1_000_000))
    }

    /// The duration in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
}

impl Timestamp {
    /// `self + delta`, saturating at the end of time.
    pub fn saturating_add(self, delta: TimeDelta) -> Timestamp {
        Timestamp(self.0.saturating_add(delta.0))
    }

    /// `self − earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> TimeDelta {
        TimeDelta(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// The identity of a chain: the hash of its [`ChainDescription`], which is also the hash of the
/// description's blob.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChainId(pub CryptoHash);

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain:{:?}", self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a chain comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainOrigin {
    /// Created at genesis, with its index among the genesis chains.
    Genesis(u32),
    /// Opened by a block of another chain.
    Child {
        /// The chain whose block opened this one.
        parent: ChainId,
        /// The height of that block.
        height: BlockHeight,
        /// The index of the opening operation within that block.
        index: u32,
    },
}

/// How a chain runs consensus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsensusConfig {
    /// Number of multi-leader rounds before single-leader rounds begin.
    pub multi_leader_rounds: u32,
    /// How long the fast round lasts before validators may vote to time it out.
    pub fast_round_duration: TimeDelta,
    /// Timeout of the first non-fast round.
    pub base_timeout: TimeDelta,
    /// How much longer each later round's timeout is.
    pub timeout_increment: TimeDelta,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            multi_leader_rounds: 2,
            fast_round_duration: TimeDelta::from_secs(5),
            base_timeout: TimeDelta::from_secs(10),
            timeout_increment: TimeDelta::from_secs(1),
        }
    }
}

/// Everything that defines a chain; its hash is the [`ChainId`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainDescription {
    /// Where the chain comes from.
    pub origin: ChainOrigin,
    /// The owners that may propose blocks, with their weights (used to pick leaders).
    pub owners: BTreeMap<AccountPublicKey, u64>,
    /// The owner allowed to propose in the fast round; `None` means the chain has no fast round.
    pub super_owner: Option<AccountPublicKey>,
    /// The epoch the chain starts in.
    pub epoch: Epoch,
    /// When the chain was created.
    pub timestamp: Timestamp,
    /// The chain's consensus settings.
    pub consensus: ConsensusConfig,
    /// The chain's starting balance (only genesis chains may start with one).
    pub balance: u64,
}

impl ChainDescription {
    /// The description's blob.
    pub fn to_blob(&self) -> Blob {
        // Encoding a description cannot fail: it holds integers, keys, maps and options.
        let content = crate::encoding::to_bytes(self).unwrap_or_default();
        Blob::new(BlobType::ChainDescription, content)
    }

    /// The chain's identity: the hash of its description blob.
    pub fn id(&self) -> ChainId {
        ChainId(self.to_blob().id().hash)
    }
}

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BlobType {
    /// Opaque application data.
    Data,
    /// A BCS-encoded [`ChainDescription`].
    ChainDescription,
    /// A BCS-encoded committee.
    Committee,
}

/// The identity of a blob: the hash of its type and content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId {
    /// Hash of the blob.
    pub hash: CryptoHash,
    /// The blob's type.
    pub blob_type: BlobType,
}

/// Immutable content, identified by its hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blob {
    /// What the blob holds.
    pub blob_type: BlobType,
    /// The bytes (serialised as one byte string: the same BCS, encoded in one piece).
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
}

impl BcsHashable for Blob {
    const DOMAIN: &'static str = "Blob";
}

impl Blob {
    /// A blob of `blob_type` holding `content`.
    pub fn new(blob_type: BlobType, content: Vec<u8>) -> Self {
        Blob { blob_type, content }
    }

    /// A data blob.
    pub fn data(content: Vec<u8>) -> Self {
        Blob::new(BlobType::Data, content)
    }

    /// The blob's identity.
    pub fn id(&self) -> BlobId {
        BlobId {
            hash: CryptoHash::new(self),
            blob_type: self.blob_type,
        }
    }
}

/// Where a blob was first published: the chain and height of the block that published it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobState {
    /// The publishing chain.
    pub chain_id: ChainId,
    /// The publishing block's height.
    pub height: BlockHeight,
}

/// Who may emit on a stream: the protocol itself, or the chain's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StreamNamespace {
    /// Emitted by the protocol only (e.g. the admin chain's epoch announcements); no
    /// `EmitEvent` operation can write to it.
    System,
    /// Emitted by `EmitEvent` operations.
    User,
}

/// An event stream of a chain: its namespace and name. A user stream named like a system
/// stream is another stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    /// System or user.
    pub namespace: StreamNamespace,
    /// The name within the namespace.
    pub name: String,
}

impl StreamId {
    /// A user stream called `name`.
    pub fn user(name: impl Into<String>) -> Self {
        StreamId {
            namespace: StreamNamespace::User,
            name: name.into(),
        }
    }

    /// The admin chain's system stream announcing new epochs (index = epoch number, payload =
    /// the committee's blob id).
    pub fn epoch() -> Self {
        StreamId {
            namespace: StreamNamespace::System,
            name: String::from(EPOCH_STREAM),
        }
    }

    /// Whether only the protocol may emit on this stream.
    pub fn is_system(&self) -> bool {
        self.namespace == StreamNamespace::System
    }
}

/// Name of the system stream on which the admin chain announces epochs.
pub const EPOCH_STREAM: &str = "epoch";

/// The identity of an event: chain, stream and index within the stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId {
    /// The chain that emitted it.
    pub chain_id: ChainId,
    /// The stream.
    pub stream: StreamId,
    /// The index within the stream.
    pub index: u32,
}

/// An emitted event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// The event's identity.
    pub id: EventId,
    /// Its payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}
