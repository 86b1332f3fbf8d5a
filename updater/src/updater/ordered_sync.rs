//! Sending a remote many heights of several chains at once, in an order their cross-chain
//! messages allow (DESIGN §5.2.6).
//!
//! A block that consumes a bundle from another chain is refused until the remote has the
//! block that sent it (`MissingCrossChainUpdate`). Sent one chain at a time, a validator that
//! missed thousands of blocks of chains that pay each other would refuse nearly every batch
//! part-way, and each refusal would cost a recovery of the action's budget. Instead, each
//! chain is a *lane* (the remote's height, the target, the certificates read ahead), and the
//! lanes advance together: a run of one lane goes as far as its certificates' incoming bundles
//! are known to be at the remote, and is sent as one batch; a bundle from a chain without a
//! lane opens one (the remote's height is asked once). Only what the local history cannot
//! explain falls back to the planner, one certificate at a time.

use std::collections::{BTreeMap, VecDeque};

use tracing::debug;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery,
    NodeError, Storage, TransportErrorKind, Violation,
};

use super::{upload_batch_size, violation, ValidatorUpdater};
use crate::recovery_stats::RecoveryKind;

/// One chain being brought up to date at the remote.
#[derive(Debug)]
struct Lane {
    /// The remote's next height, as far as this sync knows.
    next: BlockHeight,
    /// Where the lane must reach (never beyond the local node's next height).
    target: BlockHeight,
    /// Certificates from `next` on, read from the local node and not yet taken by the remote.
    loaded: VecDeque<ConfirmedBlockCertificate>,
    /// The remote's last answer about this chain.
    info: Option<ChainInfoResponse>,
}

impl Lane {
    fn is_done(&self) -> bool {
        self.next >= self.target
    }

    /// The remote took `count` more certificates.
    fn advance(&mut self, count: usize) {
        self.next = BlockHeight(self.next.0.saturating_add(count as u64));
        let count = count.min(self.loaded.len());
        self.loaded.drain(..count);
    }
}

/// Lanes by chain.
type Lanes = BTreeMap<ChainId, Lane>;

/// Whether a batch was refused for its size: too many certificates, or a frame too large.
fn is_batch_too_large(error: &NodeError) -> bool {
    matches!(
        error,
        NodeError::LimitExceeded(_) | NodeError::Transport(TransportErrorKind::FrameTooLarge)
    )
}

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Sends the certificates of `chain_id` at heights `from..to` (the remote is at `from`),
    /// with those of the chains they receive messages from that the remote lacks, in batches;
    /// returns the remote's last answer about `chain_id`.
    pub(super) async fn send_heights(
        &self,
        chain_id: ChainId,
        from: BlockHeight,
        to: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<Option<ChainInfoResponse>, NodeError> {
        let mut lanes = Lanes::new();
        lanes.insert(
            chain_id,
            Lane {
                next: from,
                target: to,
                loaded: VecDeque::new(),
                info: None,
            },
        );
        self.send_lanes(&mut lanes, delivery, depth).await?;
        Ok(lanes.remove(&chain_id).and_then(|lane| lane.info))
    }

    /// Makes the remote's chains reach their `targets` (each capped at the local node's next
    /// height), sending every chain's missing certificates, and those of the chains they
    /// receive messages from, in an order the messages allow; returns the remote's last answer
    /// about each chain that had anything sent.
    pub async fn send_chains(
        &self,
        targets: BTreeMap<ChainId, BlockHeight>,
        delivery: CrossChainDelivery,
    ) -> Result<BTreeMap<ChainId, ChainInfoResponse>, NodeError> {
        let mut lanes = Lanes::new();
        for (chain_id, target) in targets {
            self.open_lane(&mut lanes, chain_id, target).await?;
        }
        self.send_lanes(&mut lanes, delivery, 0).await?;
        Ok(lanes
            .into_iter()
            .filter_map(|(chain_id, lane)| Some((chain_id, lane.info?)))
            .collect())
    }

    /// Brings the remote's chains up to `targets` (the background catch-up, DESIGN §5.6): the
    /// heights of all of them in an order their messages allow, then, for each chain brought
    /// to the local node's height, the evidence of our round.
    pub async fn catch_up(&self, targets: BTreeMap<ChainId, BlockHeight>) -> Result<(), NodeError> {
        let mut answers = self
            .send_chains(targets.clone(), CrossChainDelivery::NonBlocking)
            .await?;
        for (chain_id, target) in targets {
            if target >= self.local.chain_state(chain_id).await?.next_height() {
                self.sync_round(chain_id, answers.remove(&chain_id)).await;
            }
        }
        Ok(())
    }

    /// Adds a lane for `chain_id` reaching `target` (asking the remote its height), or raises
    /// the lane's target; whether anything changed.
    async fn open_lane(
        &self,
        lanes: &mut Lanes,
        chain_id: ChainId,
        target: BlockHeight,
    ) -> Result<bool, NodeError> {
        let local_next = self.local.chain_state(chain_id).await?.next_height();
        let target = target.min(local_next);
        if let Some(lane) = lanes.get_mut(&chain_id) {
            let raised = target > lane.target;
            lane.target = lane.target.max(target);
            return Ok(raised);
        }
        let next = self.remote_next_height(chain_id, 0).await?;
        lanes.insert(
            chain_id,
            Lane {
                next,
                target,
                loaded: VecDeque::new(),
                info: None,
            },
        );
        Ok(true)
    }

    /// Advances every lane to its target.
    async fn send_lanes(
        &self,
        lanes: &mut Lanes,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<(), NodeError> {
        let mut batch_size = upload_batch_size(&self.options, &self.local.config().limits);
        loop {
            let mut progressed = false;
            let mut wanted = BTreeMap::new();
            let chains: Vec<ChainId> = lanes.keys().copied().collect();
            for chain_id in chains {
                let run = self
                    .next_run(lanes, chain_id, batch_size, &mut wanted)
                    .await?;
                if run.is_empty() {
                    continue;
                }
                progressed = true;
                self.send_run(lanes, chain_id, run, &mut batch_size, delivery, depth)
                    .await?;
            }
            for (chain_id, target) in wanted {
                progressed |= self.open_lane(lanes, chain_id, target).await?;
            }
            let Some((&chain_id, lane)) = lanes.iter_mut().find(|(_, lane)| !lane.is_done()) else {
                return Ok(());
            };
            if !progressed {
                // Nothing is known to be sendable: the wait is not one the local history
                // explains. The first waiting certificate goes alone, and the planner repairs
                // what the remote says it lacks.
                let Some(head) = lane.loaded.front().cloned() else {
                    return Err(NodeError::NotFound);
                };
                debug!(validator = ?self.remote.public_key, ?chain_id, height = ?lane.next, "no lane can advance: sending one certificate");
                let response = self
                    .send_confirmed_certificate_at(&head, delivery, false, depth)
                    .await?;
                if let Some(lane) = lanes.get_mut(&chain_id) {
                    lane.info = Some(response);
                    lane.advance(1);
                }
            }
        }
    }

    /// The certificates of `chain_id`'s lane that may go now, in order, at most `limit`: up to
    /// the first whose incoming bundles the remote is not known to have (those chains and
    /// heights go into `wanted`).
    async fn next_run(
        &self,
        lanes: &mut Lanes,
        chain_id: ChainId,
        limit: usize,
        wanted: &mut BTreeMap<ChainId, BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        let Some(lane) = lanes.get_mut(&chain_id) else {
            return Ok(Vec::new());
        };
        let ahead = (lane.target.0.saturating_sub(lane.next.0) as usize).min(limit);
        if lane.loaded.len() < ahead {
            let from = lane.next.0 + lane.loaded.len() as u64;
            let heights: Vec<BlockHeight> = (from..lane.next.0 + ahead as u64)
                .map(BlockHeight)
                .collect();
            let read = self
                .local
                .storage()
                .read_certificates_by_heights(chain_id, &heights)
                .await?;
            for certificate in read {
                lane.loaded
                    .push_back(certificate.ok_or(NodeError::NotFound)?);
            }
        }
        let lanes = &*lanes;
        let Some(lane) = lanes.get(&chain_id) else {
            return Ok(Vec::new());
        };
        let mut run = Vec::new();
        'certificates: for certificate in lane.loaded.iter().take(ahead) {
            for bundle in &certificate.value().block().incoming_bundles {
                if bundle.origin == chain_id {
                    continue;
                }
                let there = lanes
                    .get(&bundle.origin)
                    .is_some_and(|origin| origin.next > bundle.height);
                if !there {
                    let needed = BlockHeight(bundle.height.0.saturating_add(1));
                    let entry = wanted.entry(bundle.origin).or_insert(needed);
                    *entry = (*entry).max(needed);
                    break 'certificates;
                }
            }
            run.push(certificate.clone());
        }
        Ok(run)
    }

    /// Sends one run as a batch; a batch refused for its size halves `batch_size` (the run is
    /// formed again, shorter); a batch the remote stops part-way has the certificate it stopped
    /// at repaired through the planner.
    async fn send_run(
        &self,
        lanes: &mut Lanes,
        chain_id: ChainId,
        run: Vec<ConfirmedBlockCertificate>,
        batch_size: &mut usize,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<(), NodeError> {
        let outcome = match self
            .call(|| {
                self.remote
                    .node
                    .handle_confirmed_certificates(run.clone(), delivery)
            })
            .await
        {
            Ok(outcome) => outcome,
            Err(error) if is_batch_too_large(&error) && *batch_size > 1 => {
                *batch_size /= 2;
                debug!(validator = ?self.remote.public_key, batch_size = *batch_size, "batch too large: halved");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        self.stats
            .add(RecoveryKind::CertificatesSent, outcome.processed as u64);
        if let Some(info) = &outcome.info {
            self.check_response(info, chain_id)?;
        }
        let processed = outcome.processed.min(run.len());
        let Some(lane) = lanes.get_mut(&chain_id) else {
            return Ok(());
        };
        if outcome.info.is_some() {
            lane.info = outcome.info;
        }
        lane.advance(processed);
        let Some(stuck) = run.get(processed) else {
            return Ok(());
        };
        if outcome.error.is_none() {
            // A batch that stops early must say why; otherwise this would never end.
            return Err(violation(Violation::RepeatedRecovery));
        }
        // Repair what stopped the batch through the single-certificate path, then go on.
        let response = self
            .send_confirmed_certificate_at(stuck, delivery, false, depth)
            .await?;
        lane.info = Some(response);
        lane.advance(1);
        Ok(())
    }
}
