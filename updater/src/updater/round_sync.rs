//! Round sync: once a remote is at our height, the evidence that moves it to our round and
//! makes it vote (DESIGN §5.2.6). Best effort: refusals are only logged.

use tracing::debug;

use quorum_core::{ChainId, ChainInfoQuery, ChainInfoResponse, Storage};

use super::ValidatorUpdater;

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Round sync, once the remote is at our height (DESIGN §5.2.6). Best effort: failures are
    /// only logged.
    ///
    /// * If the remote is in an earlier round: the locking validated certificate when its round
    ///   is ahead of the remote's (it moves the remote to that round and locks it, the strongest
    ///   evidence), then the timeout certificate if the remote is still behind (it moves the
    ///   remote past that round).
    /// * If the remote is in our round but has not voted in it: our proposal of that round, so
    ///   it holds the value (lite certificates then work) and votes.
    ///
    /// DESIGN lists the proposal first; but a proposal of a later round is refused with
    /// `WrongRound` by a remote in an earlier one, so it only helps once the rounds match.
    pub(super) async fn sync_round(
        &self,
        chain_id: ChainId,
        remote_info: Option<ChainInfoResponse>,
    ) {
        let Ok(local) = self.local.chain_state(chain_id).await else {
            return;
        };
        let mut remote = match remote_info {
            Some(info) => info,
            None => match self.query(chain_id).await {
                Some(info) => info,
                None => return,
            },
        };
        if remote.info.next_block_height != local.next_height() {
            return;
        }
        let manager = &local.manager();
        if let Some(certificate) = &manager.locking_certificate() {
            if certificate.round() > remote.info.manager.current_round {
                let sent = self
                    .call(|| {
                        self.remote
                            .node
                            .handle_validated_certificate((**certificate).clone())
                    })
                    .await;
                match sent {
                    Ok(response) => remote = response,
                    Err(error) => {
                        debug!(validator = ?self.remote.public_key, %error, "round sync: locking block refused")
                    }
                }
            }
        }
        if let Some(certificate) = &manager.timeout_certificate() {
            if certificate.round() >= remote.info.manager.current_round {
                let sent = self
                    .call(|| {
                        self.remote
                            .node
                            .handle_timeout_certificate((**certificate).clone())
                    })
                    .await;
                match sent {
                    Ok(response) => remote = response,
                    Err(error) => {
                        debug!(validator = ?self.remote.public_key, %error, "round sync: timeout certificate refused")
                    }
                }
            }
        }
        if let Some(proposal) = &manager.proposed() {
            let same_round = proposal.round() == remote.info.manager.current_round;
            // No vote in this round: none at all, or one left from an earlier round.
            let voted_here = remote
                .info
                .manager
                .pending
                .as_ref()
                .is_some_and(|vote| vote.round >= proposal.round());
            if same_round && !voted_here {
                let sent = self
                    .call(|| self.remote.node.handle_block_proposal((**proposal).clone()))
                    .await;
                if let Err(error) = sent {
                    debug!(validator = ?self.remote.public_key, %error, "round sync: proposal refused");
                }
            }
        }
    }

    async fn query(&self, chain_id: ChainId) -> Option<ChainInfoResponse> {
        let query = ChainInfoQuery::new(chain_id);
        match self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await
        {
            Ok(info) if info.info.chain_id == chain_id => Some(info),
            Ok(_) => None,
            Err(error) => {
                debug!(%error, "round sync: query failed");
                None
            }
        }
    }
}
