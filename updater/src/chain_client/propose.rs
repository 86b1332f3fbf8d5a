//! Making, proposing and finalizing blocks, and broadcasting their certificates (DESIGN §5.5).

use tokio::sync::mpsc;
use tracing::{debug, warn};

use quorum_core::{
    leader, AccountSecretKey, Blob, Block, BlockHeight, BlockProposal, BlockValue, Certificate,
    ChainDescription, ChainId, ChainState, Committee, ConfirmedBlock, ConfirmedBlockCertificate,
    CrossChainDelivery, Hashed, IncomingBundle, Operation, Round, Storage, ValidatedBlock,
    ValidatedBlockCertificate,
};

use super::skew::clock_ahead;
use crate::quorum::{communicate_with_quorum, QuorumError};
use crate::remote::RemoteNode;
use crate::updater::{CommunicateAction, SkewReport};

use super::error::HeldLock;
use super::signatures::quorum_signatures;
use super::{ChainClient, ChainClientError};

impl<S: Storage + 'static> ChainClient<S> {
    /// The block this chain would commit next with `operations`: on top of the local state,
    /// consuming the bundles waiting in the local inbox, at most the committee's
    /// [`Limits::max_incoming_bundles_per_block`](quorum_core::Limits::max_incoming_bundles_per_block)
    /// of them, as the local node has them (the rest wait for the next block).
    pub async fn make_block(&self, operations: Vec<Operation>) -> Result<Block, ChainClientError> {
        let owner = self.owner.as_ref().ok_or(ChainClientError::NotOwner)?;
        let state = self.local.chain_state(self.chain_id).await?;
        state.description()?;
        // At most what execution takes in one block; the rest wait for the next block.
        let incoming_bundles: Vec<IncomingBundle> = state
            .inboxes()
            .iter()
            .flat_map(|(origin, inbox)| {
                inbox
                    .bundles()
                    .iter()
                    .map(move |(height, messages)| IncomingBundle {
                        origin: *origin,
                        height: *height,
                        messages: messages.clone(),
                    })
            })
            .take(self.local.config().limits.max_incoming_bundles_per_block)
            .collect();
        let now = self.local.clock().now();
        Ok(Block {
            chain_id: self.chain_id,
            epoch: state.epoch(),
            height: state.next_height(),
            timestamp: now.max(state.timestamp()),
            previous_block_hash: state.tip_hash(),
            authenticated_owner: owner.public(),
            incoming_bundles,
            operations,
        })
    }

    /// Commits a block with `operations` (and the contents of the blobs it publishes), going
    /// through rounds as needed. Returns its confirmed certificate.
    pub async fn execute_operations(
        &self,
        operations: Vec<Operation>,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let (mut rounds, mut waited) = (0, 0);
        // The blocks this call proposed: once one of them is committed (re-proposed as a
        // locked block, or learned by a sync after an error) the operations are done, and
        // must not be proposed again in a new block.
        let mut proposed: Vec<Block> = Vec::new();
        loop {
            rounds += 1;
            if rounds > self.options.max_rounds_per_block {
                return Err(ChainClientError::TooManyRounds {
                    rounds: self.options.max_rounds_per_block,
                    lock: self.held_lock().await?,
                });
            }
            if let Some(certificate) = self.committed_one_of(&proposed).await? {
                return Ok(certificate);
            }
            let mut block = self.make_block(operations.clone()).await?;
            // A fast-round vote binds: before a first fast proposal at a height this process
            // did not reach itself, learn the fast proposal validators may hold, so that a
            // super owner whose wallet forgot it proposes it again rather than a second one.
            let before = self.local.chain_state(self.chain_id).await?;
            if before.manager().current_round().is_fast()
                && !self.is_synced_at(self.chain_id, block.height)
            {
                if let Err(error) = self.synchronize_chain(self.chain_id).await {
                    warn!(%error, "could not synchronize before a fast-round proposal");
                }
                block = self.make_block(operations.clone()).await?;
            }
            let state = self.local.chain_state(self.chain_id).await?;
            // A block validated by a quorum at this height must be re-proposed before ours.
            let locked = state
                .manager()
                .locking_certificate()
                .as_ref()
                .filter(|certificate| certificate.value().block().height == block.height)
                .map(|certificate| (**certificate).clone());
            let round = state.manager().current_round();
            let owner = self.owner.as_ref().ok_or(ChainClientError::NotOwner)?;
            if !may_propose(
                state.description()?,
                self.chain_id,
                block.height,
                round,
                owner,
            ) {
                // A round waited out is not one this call tried its block in.
                rounds -= 1;
                waited += 1;
                if waited > self.options.max_waited_rounds {
                    return Err(ChainClientError::TooManyRounds {
                        rounds: rounds + waited,
                        lock: self.held_lock().await?,
                    });
                }
                self.wait_out_round(block.height, round).await?;
                continue;
            }
            // Validated in this very round: it is finalized, not proposed again.
            if let Some(certificate) = locked.as_ref().filter(|c| c.round() >= round) {
                match self.finish_validated(certificate.clone()).await {
                    Ok(confirmed) => {
                        if proposed.contains(confirmed.value().block()) {
                            return Ok(confirmed);
                        }
                    }
                    Err(error) => self.recover_round(round, error).await?,
                }
                continue;
            }
            let (proposal, value, own) = self
                .choose_proposal(&state, block, locked, round, owner, &mut proposed, &blobs)
                .await?;
            // A block this call did not make (a re-proposal of a lock, an earlier call's
            // block) goes with the blobs it publishes as the local node holds them.
            let block_blobs = if own {
                blobs.clone()
            } else {
                self.local.published_blobs(proposal.block()).await?
            };
            match self.propose(proposal, value, block_blobs).await {
                Ok(certificate) => {
                    let next = certificate.value().block().height.try_next();
                    if let Some(next) = next {
                        self.note_synced(self.chain_id, next);
                    }
                    if own || proposed.contains(certificate.value().block()) {
                        return Ok(certificate);
                    }
                }
                Err(error) => self.recover_round(round, error).await?,
            }
        }
    }

    /// Waits out `round`, in which this owner may not propose the block at `height`: learns
    /// the validators' round first (they may be past it already), then times it out if the
    /// chain is still there.
    async fn wait_out_round(
        &self,
        height: BlockHeight,
        round: Round,
    ) -> Result<(), ChainClientError> {
        self.synchronize_from_validators().await?;
        let now = self.local.chain_state(self.chain_id).await?;
        if now.next_height() == height && now.manager().current_round() == round {
            debug!(
                ?round,
                "not allowed to propose in this round: timing it out"
            );
            self.time_out_or_catch_up(round).await?;
        }
        Ok(())
    }

    /// What to propose in `round` instead of, or as, `block`: the block `locked` holds the
    /// chain with (a validated certificate at this height, from an earlier round), else a
    /// block the super owner proposed in the fast round (validators that voted for it there
    /// vote for no other block), else a block this owner proposed earlier at this height,
    /// else `block` itself, executed and recorded in `proposed`. With the proposal come its
    /// value and whether this call made its block.
    #[allow(clippy::too_many_arguments)] // the state of one step of `execute_operations`
    async fn choose_proposal(
        &self,
        state: &ChainState,
        block: Block,
        locked: Option<ValidatedBlockCertificate>,
        round: Round,
        owner: &AccountSecretKey,
        proposed: &mut Vec<Block>,
        blobs: &[Blob],
    ) -> Result<(BlockProposal, BlockValue, bool), ChainClientError> {
        let fast = match &locked {
            Some(_) => None,
            None => self.fast_retry(state, &block, round, owner).await,
        };
        let earlier = match (&locked, &fast) {
            (None, None) => self.earlier_block(state, &block, owner).await,
            _ => None,
        };
        Ok(match (locked, fast, earlier) {
            (Some(certificate), _, _) if *certificate.value().block() != block => {
                let value = certificate.value().inner().0.clone();
                (
                    BlockProposal::new_retry(round, certificate, owner),
                    value,
                    false,
                )
            }
            (_, Some((retry, value)), _) => {
                let own = proposed.contains(retry.block());
                (retry, value, own)
            }
            (_, _, Some((earlier, value))) => {
                let own = proposed.contains(&earlier);
                (BlockProposal::new(earlier, round, owner), value, own)
            }
            _ => {
                let value = self.local.stage_block_execution(&block, blobs).await?;
                proposed.push(block.clone());
                (BlockProposal::new(block, round, owner), value, true)
            }
        })
    }

    /// The block other than `block` that this owner proposed at this height (by this call,
    /// or by an earlier one that stopped before it was committed, as the local node recorded
    /// it), with its outcome: it is proposed again before any other. In the fast round the
    /// validators that voted for it vote for no other block, so a new block could never
    /// gather a quorum; in other rounds its votes so far still count. `None` when there is
    /// none, or when it no longer executes (then a new block is proposed, and the refusal
    /// logged).
    async fn earlier_block(
        &self,
        state: &ChainState,
        block: &Block,
        owner: &AccountSecretKey,
    ) -> Option<(Block, BlockValue)> {
        // Its own latest proposal, or its fast proposal learned from the validators.
        let manager = state.manager();
        let earlier = manager
            .proposed()
            .into_iter()
            .chain(manager.fast_proposal())
            .filter(|proposal| proposal.owner() == owner.public())
            .map(BlockProposal::block)
            .find(|earlier| earlier.height == block.height && *earlier != block)?
            .clone();
        match self.local.stage_block_execution(&earlier, &[]).await {
            Ok(value) => Some((earlier, value)),
            Err(error) => {
                warn!(%error, height = ?earlier.height, "an earlier proposal no longer executes");
                None
            }
        }
    }

    /// A re-proposal in `round` (not the fast round) of the block the super owner proposed
    /// in the fast round at this height, as the local node keeps it, justified by the super
    /// owner's fast-round signature, with its outcome. `None` when there is none, when it is
    /// `block`, or when it no longer executes (logged).
    async fn fast_retry(
        &self,
        state: &ChainState,
        block: &Block,
        round: Round,
        owner: &AccountSecretKey,
    ) -> Option<(BlockProposal, BlockValue)> {
        if round.is_fast() {
            return None;
        }
        let fast = state
            .manager()
            .fast_proposal()
            .filter(|fast| fast.block().height == block.height && fast.block() != block)?;
        let retry = BlockProposal::new_fast_retry(round, fast, owner)?;
        match self.local.stage_block_execution(retry.block(), &[]).await {
            Ok(value) => Some((retry, value)),
            Err(error) => {
                warn!(%error, height = ?block.height, "the fast-round block no longer executes");
                None
            }
        }
    }

    /// The validated block that holds this chain at its next height, as the local node knows
    /// it.
    async fn held_lock(&self) -> Result<Option<HeldLock>, ChainClientError> {
        let state = self.local.chain_state(self.chain_id).await?;
        Ok(state
            .manager()
            .locking_certificate()
            .as_ref()
            .filter(|certificate| certificate.value().block().height == state.next_height())
            .map(|certificate| HeldLock {
                block: certificate.hash(),
                owner: certificate.value().block().authenticated_owner,
                round: certificate.round(),
                validators: certificate
                    .signatures()
                    .iter()
                    .map(|(key, _)| *key)
                    .collect(),
            }))
    }

    /// The certificate of one of `proposed`, if the local node has committed it.
    async fn committed_one_of(
        &self,
        proposed: &[Block],
    ) -> Result<Option<ConfirmedBlockCertificate>, ChainClientError> {
        let mut heights: Vec<BlockHeight> = proposed.iter().map(|block| block.height).collect();
        heights.dedup();
        let certificates = self
            .local
            .storage()
            .read_certificates_by_heights(self.chain_id, &heights)
            .await
            .map_err(quorum_core::NodeError::from)?;
        Ok(certificates
            .into_iter()
            .flatten()
            .find(|certificate| proposed.contains(certificate.value().block())))
    }

    /// Runs one proposal through a quorum, to a confirmed certificate processed locally and
    /// broadcast.
    pub(super) async fn propose(
        &self,
        proposal: BlockProposal,
        value: BlockValue,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let epoch = proposal.block().epoch;
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        let round = proposal.round();
        let (skew_sender, mut skew_receiver) = mpsc::unbounded_channel::<SkewReport>();
        // The local node needs the blobs the block publishes to execute it once confirmed.
        for blob in &blobs {
            self.local
                .hold_own_pending_blob(self.chain_id, blob.clone())
                .await?;
        }
        // The local node records the proposal before it is sent: as evidence of our round for
        // lagging validators, and so that a later call proposes the same block again
        // (`earlier_block`). In the fast round, where a vote binds, nothing is sent unrecorded.
        let recorded = self.local.handle_own_block_proposal(proposal.clone()).await;
        if round.is_fast() {
            recorded?;
        }
        let action = CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal.clone()),
            blobs: blobs.clone(),
        };
        let result = self
            .collect_votes(&committee, &remotes, action, Some(skew_sender))
            .await;
        let mut reports = Vec::new();
        while let Ok(report) = skew_receiver.try_recv() {
            reports.push(report);
        }
        let votes = match result {
            Ok(votes) => votes,
            Err(error) => return Err(self.explain_failure(error, &committee, reports)),
        };
        let signatures = quorum_signatures(&committee, &votes);
        let confirmed = if round.is_fast() {
            let value = Hashed::new(ConfirmedBlock(value));
            if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
                return Err(ChainClientError::UnexpectedValue);
            }
            // Each vote was checked as it arrived: only the signers and their weight are left.
            let certificate = Certificate::new(value, round, signatures);
            certificate.check_signers(&committee)?;
            certificate
        } else {
            let value = Hashed::new(ValidatedBlock(value));
            if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
                return Err(ChainClientError::UnexpectedValue);
            }
            let validated: ValidatedBlockCertificate = Certificate::new(value, round, signatures);
            validated.check_signers(&committee)?;
            let _ = self
                .local
                .handle_assembled_validated_certificate(validated.clone())
                .await;
            self.finalize(&committee, &remotes, validated, blobs)
                .await?
        };
        self.commit_and_broadcast(&committee, &remotes, confirmed)
            .await
    }

    /// Finalizes a validated block this client did not assemble (another owner's, learned
    /// from the validators), with the blobs it publishes as the local node holds them: the
    /// confirmed certificate is processed locally and broadcast.
    async fn finish_validated(
        &self,
        validated: ValidatedBlockCertificate,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let block = validated.value().block();
        let (committee, remotes) = self.committee_and_remotes(block.epoch).await?;
        let blobs = self.local.published_blobs(block).await?;
        let confirmed = self
            .finalize(&committee, &remotes, validated, blobs)
            .await?;
        self.commit_and_broadcast(&committee, &remotes, confirmed)
            .await
    }

    /// Has the local node process `confirmed` (assembled from checked votes) and makes sure a
    /// quorum of validators has it.
    async fn commit_and_broadcast(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        confirmed: ConfirmedBlockCertificate,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.local
            .handle_assembled_confirmed_certificate(confirmed.clone())
            .await?;
        self.broadcast(committee, remotes, &confirmed).await;
        Ok(confirmed)
    }

    /// Second phase: turns a validated certificate into a confirmed one.
    pub(super) async fn finalize(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        validated: ValidatedBlockCertificate,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let round = validated.round();
        let value = Hashed::new(validated.value().to_confirmed());
        let action = CommunicateAction::FinalizeBlock {
            certificate: Box::new(validated),
            blobs,
            delivery: CrossChainDelivery::NonBlocking,
        };
        let votes = self.collect_votes(committee, remotes, action, None).await?;
        if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
            return Err(ChainClientError::UnexpectedValue);
        }
        let signatures = quorum_signatures(committee, &votes);
        // Each vote was checked as it arrived: only the signers and their weight are left.
        let certificate = Certificate::new(value, round, signatures);
        certificate.check_signers(committee)?;
        Ok(certificate)
    }

    /// Makes sure a quorum has the confirmed certificate; the others keep being updated in the
    /// background within the catch-up budget.
    pub(super) async fn broadcast(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        certificate: &ConfirmedBlockCertificate,
    ) {
        let block = certificate.value().block();
        let (chain_id, target) = (
            block.chain_id,
            block.height.try_next().unwrap_or(block.height),
        );
        // Sending chain information up to the block sends the certificate itself first (lite
        // when the validator voted) and, to a validator that lags, everything it misses.
        let result = communicate_with_quorum(
            remotes,
            committee,
            &self.quorum_options,
            |_: &()| (),
            |remote| {
                let updater = self.updater(remote);
                async move {
                    updater
                        .send_chain_information(
                            chain_id,
                            target,
                            CrossChainDelivery::NonBlocking,
                            0,
                        )
                        .await
                }
            },
        )
        .await;
        let answered = match result {
            Ok(((_, answers), timing)) => {
                self.record(timing);
                answers.into_iter().map(|(key, ())| key).collect()
            }
            Err(error) => {
                warn!(%error, "a quorum did not take the confirmed certificate");
                Vec::new()
            }
        };
        self.catch_up_stragglers(remotes, &answered, chain_id, target);
    }

    pub(super) fn explain_failure(
        &self,
        error: QuorumError,
        committee: &Committee,
        reports: Vec<SkewReport>,
    ) -> ChainClientError {
        let grace = self.local.config().timestamp_grace;
        match clock_ahead(committee, &reports, grace) {
            Some(skew_micros) => ChainClientError::ClockAhead {
                skew_micros,
                error: Box::new(error),
            },
            None => ChainClientError::Quorum(error),
        }
    }
}

/// Whether `owner` may propose the block at `height` in `round`: in a single-leader round only
/// the leader and the super owner propose, in the fast round only the super owner; another
/// owner waits for the round's timeout and tries the next round (DESIGN §4.3, §5.4.1).
fn may_propose(
    description: &ChainDescription,
    chain_id: ChainId,
    height: BlockHeight,
    round: Round,
    owner: &AccountSecretKey,
) -> bool {
    description.super_owner == Some(owner.public())
        || match round {
            Round::SingleLeader(_) => {
                leader(description, chain_id, height, round) == Some(owner.public())
            }
            Round::Fast => false,
            Round::MultiLeader(_) => true,
        }
}
