//! The starting point every node shares: the first committee and the genesis chains.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use quorum_core::{
    Batch, ChainDescription, ChainId, ChainState, Committee, Epoch, Storage, StorageError,
    Timestamp, Write,
};

/// The committee of epoch 0 and the chains that exist from the start. The first chain is the
/// admin chain, where later committees are created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The committee of epoch 0.
    pub committee: Committee,
    /// The genesis chains; the first is the admin chain.
    pub chains: Vec<ChainDescription>,
}

/// Why a genesis is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// No chains: there must be at least the admin chain.
    #[error("genesis has no chains (the first chain is the admin chain)")]
    NoChains,
    /// Writing the genesis state failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Genesis {
    /// The admin chain's id, if there is a chain at all.
    pub fn admin_chain(&self) -> Option<ChainId> {
        self.chains.first().map(ChainDescription::id)
    }

    /// Writes the genesis state to `storage`: the committee of epoch 0, each chain's description
    /// blob and its initial state. Chains already present are left as they are, so a restarted
    /// node keeps its progress.
    pub async fn initialize<S: Storage + ?Sized>(
        &self,
        storage: &S,
        now: Timestamp,
    ) -> Result<ChainId, GenesisError> {
        self.initialize_where(storage, now, |_| true).await
    }

    /// [`Genesis::initialize`] for the chains `owned` accepts only (their blobs and the
    /// committee as well): what one shard of a sharded validator writes (DESIGN §7.1), so
    /// that no process ever writes the state of a chain another one runs.
    pub async fn initialize_where<S: Storage + ?Sized>(
        &self,
        storage: &S,
        now: Timestamp,
        owned: impl Fn(ChainId) -> bool,
    ) -> Result<ChainId, GenesisError> {
        let admin = self.admin_chain().ok_or(GenesisError::NoChains)?;
        let mut batch = Batch::new();
        if storage.read_committee(Epoch(0)).await?.is_none() {
            batch.push(Write::Committee(Epoch(0), self.committee.clone()));
        }
        for description in &self.chains {
            let chain_id = description.id();
            batch.push(Write::Blob(description.to_blob()));
            if !owned(chain_id) {
                continue;
            }
            let existing = storage.read_chain_state(chain_id).await?;
            if existing.as_ref().is_some_and(ChainState::is_active) {
                continue;
            }
            let mut state = existing.unwrap_or_else(|| ChainState::inactive(chain_id));
            state.activate(description.clone(), now);
            batch.push(Write::ChainState(Arc::new(state)));
        }
        storage.write_batch(batch).await?;
        Ok(admin)
    }
}
