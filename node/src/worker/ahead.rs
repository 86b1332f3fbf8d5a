//! Certificates for blocks beyond a chain's next height. The block itself waits for its
//! predecessors, but the data blobs it publishes are certified already (a quorum executed
//! it), so the node takes them at once: a client then sends a validator that lacks a blob only
//! the block that published it, not the whole chain up to it (DESIGN §5.2.1, sparse heights).

use std::collections::BTreeSet;

use quorum_core::{
    Batch, BlobId, BlobState, BlobType, ConfirmedBlockCertificate, NodeError, Storage, Write,
};

use super::{Volatile, Worker};

impl<S: Storage + 'static> Worker<S> {
    /// Stores, with their blob states, the data blobs that `certificate` publishes, for a
    /// block beyond its chain's next height whose signatures were checked. The contents come
    /// from the blobs the node holds (pending for the chain, uploaded, or stored); when some
    /// are missing nothing is written and `BlobsNotFound` names them.
    pub(super) async fn take_published_blobs(
        &self,
        volatile: &mut Volatile,
        certificate: &ConfirmedBlockCertificate,
    ) -> Result<(), NodeError> {
        let block = certificate.value().block();
        let published: BTreeSet<BlobId> = block
            .published_blob_ids()
            .into_iter()
            .filter(|id| id.blob_type == BlobType::Data)
            .collect();
        let mut batch = Batch::new();
        let mut missing = Vec::new();
        let mut taken: Vec<BlobId> = Vec::new();
        for id in published {
            if self.store.read_blob_state(id).await?.is_some() {
                continue;
            }
            let held = volatile.held.get(block.chain_id, &id).cloned();
            let blob = match held {
                Some(blob) => Some(blob),
                None => self.store.read_blob(id).await?,
            };
            match blob {
                Some(blob) => {
                    let state = BlobState {
                        chain_id: block.chain_id,
                        height: block.height,
                    };
                    batch.push(Write::BlobState(id, state));
                    batch.push(Write::Blob(blob));
                    taken.push(id);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            return Err(NodeError::BlobsNotFound(missing));
        }
        if taken.is_empty() {
            return Ok(());
        }
        self.store.write_batch(batch).await?;
        // Stored now: the uploads are no longer needed (the chain's pending blobs stay, for
        // the proposals they came with).
        let used = taken.into_iter().collect();
        volatile.held.release_uploads(&used);
        Ok(())
    }
}
