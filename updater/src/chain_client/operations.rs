//! The operations a user runs: transfers, blobs, events, chains, committees.

use std::collections::BTreeMap;

use quorum_core::{
    AccountPublicKey, Blob, BlobId, BlockHeight, ChainDescription, ChainId, ChainOrigin, Committee,
    ConfirmedBlockCertificate, ConsensusConfig, EncodedCommittee, Epoch, EventId, Operation,
    Storage, StreamId, Timestamp,
};

use super::{ChainClient, ChainClientError};

impl<S: Storage + 'static> ChainClient<S> {
    /// Sends tokens to another chain.
    pub async fn transfer(
        &self,
        recipient: ChainId,
        amount: u64,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::Transfer { recipient, amount }], Vec::new())
            .await
    }

    /// Commits a block that only consumes the messages waiting in the inbox.
    pub async fn receive_messages(&self) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(Vec::new(), Vec::new()).await
    }

    /// Publishes a data blob; returns its id and the certificate.
    pub async fn publish_blob(
        &self,
        content: Vec<u8>,
    ) -> Result<(BlobId, ConfirmedBlockCertificate), ChainClientError> {
        let blob = Blob::data(content);
        let id = blob.id();
        let certificate = self
            .execute_operations(vec![Operation::PublishBlob(id)], vec![blob])
            .await?;
        Ok((id, certificate))
    }

    /// Commits a block that reads a blob published earlier (the local node must know it: see
    /// [`ChainClient::synchronize_chain`] for the publisher's chain).
    pub async fn read_blob(
        &self,
        id: BlobId,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ReadBlob(id)], Vec::new())
            .await
    }

    /// Emits an event.
    pub async fn emit_event(
        &self,
        stream: StreamId,
        payload: Vec<u8>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::EmitEvent { stream, payload }], Vec::new())
            .await
    }

    /// Commits a block that reads an event emitted earlier.
    pub async fn read_event(
        &self,
        id: EventId,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ReadEvent(id)], Vec::new())
            .await
    }

    /// Opens a chain owned by `owner`; returns its id and the certificate of the opening block.
    pub async fn open_chain(
        &self,
        owner: AccountPublicKey,
        consensus: ConsensusConfig,
    ) -> Result<(ChainId, ConfirmedBlockCertificate), ChainClientError> {
        self.open_chain_with_owners(BTreeMap::from([(owner, 1)]), None, consensus)
            .await
    }

    /// Opens a chain owned by `owners` (each with its weight in single-leader rounds), with a
    /// `super_owner` who may propose in the fast round if given; returns its id and the
    /// certificate of the opening block.
    pub async fn open_chain_with_owners(
        &self,
        owners: BTreeMap<AccountPublicKey, u64>,
        super_owner: Option<AccountPublicKey>,
        consensus: ConsensusConfig,
    ) -> Result<(ChainId, ConfirmedBlockCertificate), ChainClientError> {
        let state = self.local.chain_state(self.chain_id).await?;
        let description = ChainDescription {
            origin: ChainOrigin::Child {
                parent: self.chain_id,
                height: state.next_height(),
                index: 0,
            },
            owners,
            super_owner,
            epoch: state.epoch(),
            timestamp: self.local.clock().now().max(state.timestamp()),
            consensus,
            balance: 0,
        };
        let chain_id = description.id();
        let certificate = self
            .execute_operations(vec![Operation::OpenChain(description)], Vec::new())
            .await?;
        Ok((chain_id, certificate))
    }

    /// On the admin chain: creates the next committee.
    pub async fn create_committee(
        &self,
        committee: Committee,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(
            vec![Operation::CreateCommittee(EncodedCommittee::new(
                &committee,
            ))],
            Vec::new(),
        )
        .await
    }

    /// Moves this chain to `epoch` (the admin chain must have announced it; the local node must
    /// have processed that announcement).
    pub async fn process_new_epoch(
        &self,
        epoch: Epoch,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ProcessNewEpoch(epoch)], Vec::new())
            .await
    }

    /// Closes the chain: its remaining balance goes to `beneficiary` (required unless the
    /// balance is zero, else the local node refuses with `NonZeroBalance`). Afterwards the
    /// chain accepts no operation; [`ChainClient::receive_messages`] then returns every
    /// credit that arrives to its sender.
    pub async fn close_chain(
        &self,
        beneficiary: Option<ChainId>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::CloseChain { beneficiary }], Vec::new())
            .await
    }

    /// Whether the chain is closed, on the local node.
    pub async fn is_closed(&self) -> Result<bool, ChainClientError> {
        Ok(self.local.chain_state(self.chain_id).await?.is_closed())
    }

    /// The chain's balance on the local node.
    pub async fn local_balance(&self) -> Result<u64, ChainClientError> {
        Ok(self.local.chain_state(self.chain_id).await?.balance())
    }

    /// The chain's next height on the local node.
    pub async fn local_next_height(&self) -> Result<BlockHeight, ChainClientError> {
        Ok(self.local.chain_state(self.chain_id).await?.next_height())
    }

    /// The current time on the local node's clock.
    pub fn now(&self) -> Timestamp {
        self.local.clock().now()
    }
}
