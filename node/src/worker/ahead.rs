//! Certificates for blocks beyond a chain's next height. The block itself waits for its
//! predecessors, but what it publishes is certified already (a quorum executed it), so the
//! node takes it at once:
//!
//! * the data blobs it publishes: a client then sends a validator that lacks a blob only the
//!   block that published it, not the whole chain up to it (DESIGN §5.2.1, sparse heights);
//! * the chains it opens: a validator learns a new chain from the block that published its
//!   description alone, not from its parent's whole history up to that block (a departure
//!   from DESIGN §5.2.6, see `docs/design.md`). The parent's block still applies in its turn;
//!   opening an active chain again changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use quorum_core::{
    Batch, BlobId, BlobState, BlobType, ConfirmedBlockCertificate, NodeError, Operation, Storage,
    Write,
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

    /// Activates the chains that `certificate`'s block opens and this node does not know yet,
    /// each with its description blob, for a block beyond its chain's next height whose
    /// signatures were checked.
    pub(super) async fn open_chains_ahead(
        &self,
        certificate: &ConfirmedBlockCertificate,
    ) -> Result<(), NodeError> {
        let block = certificate.value().block();
        let mut batch = Batch::new();
        let now = self.clock.now();
        for operation in &block.operations {
            let Operation::OpenChain(child) = operation else {
                continue;
            };
            let mut state = self.owned_chain_state(child.id()).await?;
            if state.is_active() {
                continue;
            }
            let blob = child.to_blob();
            if self.store.read_blob_state(blob.id()).await?.is_none() {
                let published = BlobState {
                    chain_id: block.chain_id,
                    height: block.height,
                };
                batch.push(Write::BlobState(blob.id(), published));
            }
            batch.push(Write::Blob(blob));
            state.activate(child.clone(), now);
            batch.push(Write::ChainState(Arc::new(state)));
        }
        if !batch.is_empty() {
            self.store.write_batch(batch).await?;
        }
        Ok(())
    }
}
