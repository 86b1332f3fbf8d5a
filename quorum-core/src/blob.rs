//! Blobs (DESIGN §4.1): immutable content identified by its hash, and where it was published.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::{BcsHashable, BlockHeight, ChainId, CryptoHash};

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BlobType {
    /// Opaque application data.
    Data,
    /// A BCS-encoded [`ChainDescription`](crate::ChainDescription).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_encodes_its_content_as_a_plain_byte_string() {
        let blob = Blob::data((0..1_000u32).map(|i| i as u8).collect());
        let plain = bcs::to_bytes(&(blob.blob_type, blob.content.clone())).unwrap();
        assert_eq!(bcs::to_bytes(&blob).unwrap(), plain);
    }
}
