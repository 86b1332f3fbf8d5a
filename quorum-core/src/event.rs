//! Event streams and events (DESIGN §4.1).

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::ChainId;

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
pub(crate) const EPOCH_STREAM: &str = "epoch";

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

impl EventId {
    /// Whether this is an announcement of an epoch by `admin_chain` (on its system `epoch`
    /// stream; a user stream of the same name is another stream).
    pub fn is_epoch_announcement(&self, admin_chain: ChainId) -> bool {
        self.chain_id == admin_chain && self.stream == StreamId::epoch()
    }
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
