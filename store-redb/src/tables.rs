//! The database's tables and how their keys are formed: every [`TableDefinition`] lives here.
//!
//! Structured values are BCS-encoded (decoded with `bcs` on the way out, checked against
//! their key where the key is derived from the value). Blob contents and event payloads are
//! opaque bytes and are stored as they are.

use quorum_core::{
    BlobId, BlobType, BlockHeight, ChainId, CryptoHash, EventId, OutboxEntry, StreamNamespace,
};
use redb::TableDefinition;

/// The version of the layout below, stored in [`META`] under [`SCHEMA_VERSION_KEY`]. Bump it
/// on any incompatible change of a table's key or value encoding.
///
/// Version 2: chain states count their received log and say whether they are closed, and the
/// [`RECEIVED_LOGS`] table holds the entries.
///
/// Version 3: a chain's consensus state keeps the super owner's fast-round proposal, and a
/// stored proposal may carry a fast-round signature.
pub(crate) const SCHEMA_VERSION: u64 = 3;

/// Key of a 32-byte hash or chain id.
pub(crate) type HashKey = &'static [u8; 32];
/// Key of a chain's certificate: (chain id, height).
pub(crate) type HeightKey = (HashKey, u64);
/// Key of a blob: (hash, [`blob_type_tag`]).
pub(crate) type BlobKey = (HashKey, u8);
/// Key of an event: (chain id, stream name, index).
pub(crate) type EventKey = (HashKey, u8, &'static str, u32);
/// A value of raw (or BCS-encoded) bytes.
pub(crate) type Bytes = &'static [u8];

/// The [`META`] key holding the schema version.
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Table names (also used in error messages).
pub(crate) mod names {
    /// See [`super::META`].
    pub(crate) const META: &str = "meta";
    /// See [`super::CERTIFICATES`].
    pub(crate) const CERTIFICATES: &str = "certificates";
    /// See [`super::CERTIFICATE_HASHES`].
    pub(crate) const CERTIFICATE_HASHES: &str = "certificate_hashes";
    /// See [`super::BLOBS`].
    pub(crate) const BLOBS: &str = "blobs";
    /// See [`super::BLOB_STATES`].
    pub(crate) const BLOB_STATES: &str = "blob_states";
    /// See [`super::EVENTS`].
    pub(crate) const EVENTS: &str = "events";
    /// See [`super::CHAIN_STATES`].
    pub(crate) const CHAIN_STATES: &str = "chain_states";
    /// See [`super::COMMITTEES`].
    pub(crate) const COMMITTEES: &str = "committees";
    /// See [`super::RECEIVED_LOGS`].
    pub(crate) const RECEIVED_LOGS: &str = "received_logs";
    /// See [`super::OUTBOX`].
    pub(crate) const OUTBOX: &str = "outbox";
}

/// Facts about the database itself: name → value.
pub(crate) const META: TableDefinition<'static, &str, u64> = TableDefinition::new(names::META);

/// Confirmed certificates: value hash → BCS of the `ConfirmedBlockCertificate`.
pub(crate) const CERTIFICATES: TableDefinition<'static, HashKey, Bytes> =
    TableDefinition::new(names::CERTIFICATES);

/// The height index of certificates: (chain id, height) → value hash.
pub(crate) const CERTIFICATE_HASHES: TableDefinition<'static, HeightKey, HashKey> =
    TableDefinition::new(names::CERTIFICATE_HASHES);

/// Blob contents: (hash, type tag) → the raw content.
pub(crate) const BLOBS: TableDefinition<'static, BlobKey, Bytes> =
    TableDefinition::new(names::BLOBS);

/// Where blobs were published: (hash, type tag) → BCS of the `BlobState`.
pub(crate) const BLOB_STATES: TableDefinition<'static, BlobKey, Bytes> =
    TableDefinition::new(names::BLOB_STATES);

/// Event payloads: (chain id, stream name, index) → the raw payload.
pub(crate) const EVENTS: TableDefinition<'static, EventKey, Bytes> =
    TableDefinition::new(names::EVENTS);

/// Chain states: chain id → BCS of the `ChainState`.
pub(crate) const CHAIN_STATES: TableDefinition<'static, HashKey, Bytes> =
    TableDefinition::new(names::CHAIN_STATES);

/// Committees: epoch → BCS of the `Committee`.
pub(crate) const COMMITTEES: TableDefinition<'static, u32, Bytes> =
    TableDefinition::new(names::COMMITTEES);

/// Chains' received logs (DESIGN §4.2.1): (chain id, index) → (origin chain id, origin
/// height).
pub(crate) const RECEIVED_LOGS: TableDefinition<'static, HeightKey, HeightKey> =
    TableDefinition::new(names::RECEIVED_LOGS);

/// Key of an outbox entry: (lane, recipient chain id, certificate hash).
pub(crate) type OutboxKey = (u32, HashKey, HashKey);

/// The validator's outbox between shards (DESIGN §7.1): (lane, recipient, certificate) → ().
/// Added in place (a table more, no encoding changed): older files simply gain it.
pub(crate) const OUTBOX: TableDefinition<'static, OutboxKey, ()> =
    TableDefinition::new(names::OUTBOX);

/// The key of an outbox entry.
pub(crate) fn outbox_key(entry: &OutboxEntry) -> (u32, &[u8; 32], &[u8; 32]) {
    (
        entry.lane,
        entry.recipient.0.as_bytes(),
        entry.certificate.as_bytes(),
    )
}

/// The key of a hash.
pub(crate) fn hash_key(hash: &CryptoHash) -> &[u8; 32] {
    hash.as_bytes()
}

/// The key of a chain's certificate at `height`.
pub(crate) fn height_key(chain_id: &ChainId, height: BlockHeight) -> (&[u8; 32], u64) {
    (chain_id.0.as_bytes(), height.0)
}

/// The stable one-byte tag of a blob type in keys (independent of serde's variant order).
pub(crate) fn blob_type_tag(blob_type: BlobType) -> u8 {
    match blob_type {
        BlobType::Data => 0,
        BlobType::ChainDescription => 1,
        BlobType::Committee => 2,
    }
}

/// The key of a blob (and of its state).
pub(crate) fn blob_key(id: &BlobId) -> (&[u8; 32], u8) {
    (id.hash.as_bytes(), blob_type_tag(id.blob_type))
}

/// The stored tag of a stream namespace (part of the event key).
pub(crate) fn namespace_tag(namespace: StreamNamespace) -> u8 {
    match namespace {
        StreamNamespace::System => 0,
        StreamNamespace::User => 1,
    }
}

/// The key of an event: chain, stream namespace, stream name, index.
pub(crate) fn event_key(id: &EventId) -> (&[u8; 32], u8, &str, u32) {
    (
        id.chain_id.0.as_bytes(),
        namespace_tag(id.stream.namespace),
        id.stream.name.as_str(),
        id.index,
    )
}
