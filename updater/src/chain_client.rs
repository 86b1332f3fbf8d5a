//! `ChainClient`: the full life cycle of blocks on one chain (DESIGN §5.5).

//!
//! * `error`: [`ChainClientError`].
//! * `validators`: [`ValidatorSet`], how to reach each validator.
//! * `propose`: making, proposing and finalizing blocks.
//! * `rounds`: catching up after a failed round, and round timeouts.
//! * `signatures`: which votes go into a certificate.
//! * `sync`: bringing the local node and the validators up to date.
//! * `received`: finding what other chains sent, from the validators' received logs.
//! * `operations`: transfers, blobs, events, chains and committees.

mod deadline;
mod error;
mod operations;
mod propose;
mod received;
mod rounds;
mod signatures;
mod skew;
mod sync;
mod validators;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use quorum_core::{
    AccountSecretKey, BlockHeight, ChainId, Committee, Epoch, LiteVote, Storage, ValidatorPublicKey,
};
use quorum_node::Worker;

pub use error::{ChainClientError, HeldLock};
pub use received::ReceivedLogSync;
pub use validators::ValidatorSet;

use crate::catch_up::CatchUp;
use crate::options::Options;
use crate::quorum::{communicate_with_quorum, QuorumError, QuorumTiming};
use crate::recovery_stats::RecoveryStats;
use crate::remote::RemoteNode;
use crate::updater::{CommunicateAction, SkewReport, ValidatorUpdater};

/// Drives blocks of one chain through the committee, bringing validators up to date on the way.
pub struct ChainClient<S> {
    chain_id: ChainId,
    owner: Option<AccountSecretKey>,
    local: Arc<Worker<S>>,
    validators: ValidatorSet,
    options: Arc<Options>,
    stats: Arc<RecoveryStats>,
    latencies: Arc<RwLock<Vec<QuorumTiming>>>,
    /// `options` for quorum calls: nothing left running after them (the catch-up workers
    /// deliver what slow validators missed).
    quorum_options: Arc<Options>,
    catch_up: Arc<CatchUp>,
    /// Where this client stopped reading each validator's received log of each chain
    /// (`received`), shared by the clients of one local node made with
    /// [`ChainClient::for_chain`].
    received_cursors: Arc<Mutex<HashMap<(ChainId, ValidatorPublicKey), u64>>>,
    /// For each chain, the next height at which the local node is known to hold what the
    /// validators reported, because this process reached that height by its own commit or by
    /// a sync: a new block is proposed in the fast round only there, so that a super owner
    /// whose wallet forgot its fast proposal never signs a second one (DESIGN §4.3).
    synced_heights: Arc<Mutex<HashMap<ChainId, BlockHeight>>>,
}

impl<S> Clone for ChainClient<S> {
    fn clone(&self) -> Self {
        ChainClient {
            chain_id: self.chain_id,
            owner: self.owner.clone(),
            local: self.local.clone(),
            validators: self.validators.clone(),
            options: self.options.clone(),
            stats: self.stats.clone(),
            latencies: self.latencies.clone(),
            quorum_options: self.quorum_options.clone(),
            catch_up: self.catch_up.clone(),
            received_cursors: self.received_cursors.clone(),
            synced_heights: self.synced_heights.clone(),
        }
    }
}

impl<S: Storage + 'static> ChainClient<S> {
    /// A client for `chain_id`, owned by `owner` (none: read only), over the local node `local`
    /// (a Worker without key) and the validators in `validators`.
    pub fn new(
        chain_id: ChainId,
        owner: Option<AccountSecretKey>,
        local: Arc<Worker<S>>,
        validators: ValidatorSet,
        options: Options,
    ) -> Self {
        let quorum_options = Options {
            background_catch_up: std::time::Duration::ZERO,
            ..options.clone()
        };
        ChainClient {
            chain_id,
            owner,
            local,
            validators,
            options: Arc::new(options),
            stats: Arc::new(RecoveryStats::default()),
            latencies: Arc::new(RwLock::new(Vec::new())),
            quorum_options: Arc::new(quorum_options),
            catch_up: Arc::new(CatchUp::default()),
            received_cursors: Arc::new(Mutex::new(HashMap::new())),
            synced_heights: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A client for another chain sharing this one's local node, validators, options and
    /// statistics.
    pub fn for_chain(&self, chain_id: ChainId, owner: Option<AccountSecretKey>) -> Self {
        ChainClient {
            chain_id,
            owner,
            ..self.clone()
        }
    }

    /// The chain.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The settings.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The local node.
    pub fn local(&self) -> &Arc<Worker<S>> {
        &self.local
    }

    /// Repairs performed so far, by kind.
    pub fn stats(&self) -> &Arc<RecoveryStats> {
        &self.stats
    }

    /// The background catch-up workers (one per validator).
    pub fn catch_up(&self) -> &Arc<CatchUp> {
        &self.catch_up
    }

    /// Timings of the quorum calls made so far.
    pub fn timings(&self) -> Vec<QuorumTiming> {
        self.latencies.read().map(|l| l.clone()).unwrap_or_default()
    }

    pub(crate) fn admin_chain(&self) -> ChainId {
        self.local.config().admin_chain
    }

    /// An updater that brings `remote` up to date from this client's local node, with its
    /// options and counting its repairs in [`ChainClient::stats`]: for work of one's own
    /// beside the client's (its proposals and syncs make their own).
    pub fn updater(&self, remote: RemoteNode) -> ValidatorUpdater<S> {
        ValidatorUpdater::new(
            remote,
            self.local.clone(),
            self.admin_chain(),
            self.options.clone(),
            self.stats.clone(),
        )
    }

    pub(crate) async fn committee_and_remotes(
        &self,
        epoch: Epoch,
    ) -> Result<(Arc<Committee>, Vec<RemoteNode>), ChainClientError> {
        let committee = self.local.committee(epoch).await?;
        let remotes = self.validators.remotes(&committee);
        if remotes.is_empty() {
            return Err(ChainClientError::NoValidators(epoch));
        }
        Ok((committee, remotes))
    }

    fn record(&self, timing: QuorumTiming) {
        if let Ok(mut latencies) = self.latencies.write() {
            latencies.push(timing);
        }
    }

    /// Queues, on their catch-up workers, the validators of `remotes` not in `answered`: they
    /// are to reach `target` on `chain_id`.
    fn catch_up_stragglers(
        &self,
        remotes: &[RemoteNode],
        answered: &[ValidatorPublicKey],
        chain_id: ChainId,
        target: quorum_core::BlockHeight,
    ) {
        for remote in remotes {
            if !answered.contains(&remote.public_key) {
                self.catch_up
                    .enqueue(self.updater(remote.clone()), chain_id, target);
            }
        }
    }

    /// Collects the votes of a quorum for `action`; a proposal reports the clock skew it
    /// observes to `skew`.
    async fn collect_votes(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        action: CommunicateAction,
        skew: Option<mpsc::UnboundedSender<SkewReport>>,
    ) -> Result<Vec<(ValidatorPublicKey, LiteVote)>, QuorumError> {
        let ((_, votes), timing) = communicate_with_quorum(
            remotes,
            committee,
            &self.quorum_options,
            |vote: &LiteVote| (vote.value_hash, vote.kind, vote.round),
            |remote| {
                let updater = match &skew {
                    Some(reports) => self.updater(remote).reporting_skew(reports.clone()),
                    None => self.updater(remote),
                };
                let action = action.clone();
                async move { updater.send_chain_update(action).await }
            },
        )
        .await?;
        self.record(timing);
        Ok(votes)
    }
}
