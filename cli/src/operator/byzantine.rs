//! A Byzantine behaviour mode for testing only (`quorum validator --testing-byzantine`, used by
//! `quorum chaos --byzantine`): the validator serves its Worker through [`Byzantine`], which
//! lies on one request in three of the kinds it tampers with, cycling through three lies:
//!
//! * an equivocating vote: it answers a proposal with a vote, signed with its own key, for a
//!   value nobody proposed (its Worker has also voted for the real one: two signed values in
//!   one round);
//! * a false `BlobsNotFound`: it claims a blob nobody published is missing, to a proposal or
//!   a validated certificate;
//! * a wrong-round claim: it refuses a proposal claiming to be five rounds further than it is.
//!
//! Every other request is answered honestly. It is a [`Carrier`]: every request goes through
//! the one [`dispatch`] onto the Worker, so there is no method to forget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use quorum_core::protocol::{dispatch, Carrier, Request, Response};
use quorum_core::{
    BlobId, BlobType, ChainId, ChainInfoResponse, CryptoHash, LiteVote, NodeError, Round,
    Subscription, ValidatorNode, ValidatorSecretKey,
};

/// One request in this many (of the kinds tampered with) gets a lie.
const LIE_EVERY: u64 = 3;
/// How many rounds further than it is a wrong-round claim says the validator is.
const CLAIMED_ROUNDS_AHEAD: u32 = 5;

/// A validator that lies (see the [module documentation](self)).
pub struct Byzantine {
    inner: Arc<dyn ValidatorNode>,
    key: ValidatorSecretKey,
    tampered: AtomicU64,
}

impl Byzantine {
    /// `inner` (the validator's Worker) served with lies, signed with `key` (its own).
    pub fn new(inner: Arc<dyn ValidatorNode>, key: ValidatorSecretKey) -> Self {
        Byzantine {
            inner,
            key,
            tampered: AtomicU64::new(0),
        }
    }

    /// Which lie the next request of a tampered kind gets, if any: 0, 1 or 2 in turn, one
    /// request in [`LIE_EVERY`].
    fn next_lie(&self) -> Option<u64> {
        let count = self.tampered.fetch_add(1, Ordering::Relaxed);
        count
            .is_multiple_of(LIE_EVERY)
            .then_some((count / LIE_EVERY) % 3)
    }

    /// `response` with its vote replaced by a vote for another value, signed again.
    fn equivocate(&self, response: ChainInfoResponse) -> ChainInfoResponse {
        let mut info = response.info;
        if let Some(vote) = &info.manager.pending {
            let other = CryptoHash::new(&*info);
            info.manager.pending = Some(LiteVote::new(other, vote.kind, vote.round, &self.key));
        }
        ChainInfoResponse::new(*info, Some(&self.key))
    }
}

/// A blob id nobody published (no content hashes to it).
fn unpublished_blob(seed: u64) -> BlobId {
    let mut bytes = [0xb7; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    BlobId {
        hash: CryptoHash(bytes),
        blob_type: BlobType::Data,
    }
}

/// A round five rounds further than `round`.
fn ahead(round: Round) -> Round {
    match round {
        Round::Fast => Round::MultiLeader(CLAIMED_ROUNDS_AHEAD),
        Round::MultiLeader(n) => Round::MultiLeader(n.saturating_add(CLAIMED_ROUNDS_AHEAD)),
        Round::SingleLeader(n) => Round::SingleLeader(n.saturating_add(CLAIMED_ROUNDS_AHEAD)),
    }
}

#[async_trait]
impl Carrier for Byzantine {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        let lie = match &request {
            Request::BlockProposal(_) | Request::ValidatedCertificate(_) => self.next_lie(),
            _ => None,
        };
        let Some(lie) = lie else {
            return Ok(dispatch(self.inner.as_ref(), request).await);
        };
        tracing::debug!(lie, kind = ?request.kind(), "Byzantine mode: lying");
        match (request, lie) {
            (Request::BlockProposal(proposal), 0) => {
                let answer = self.inner.handle_block_proposal(*proposal).await;
                Ok(Response::BlockProposal(answer.map(|r| self.equivocate(r))))
            }
            (Request::BlockProposal(proposal), 1) => {
                let blob = unpublished_blob(proposal.content.block.height.0);
                Ok(Response::BlockProposal(Err(NodeError::BlobsNotFound(
                    vec![blob],
                ))))
            }
            (Request::BlockProposal(proposal), _) => Ok(Response::BlockProposal(Err(
                NodeError::WrongRound(ahead(proposal.content.round)),
            ))),
            (Request::ValidatedCertificate(certificate), _) => {
                let blob = unpublished_blob(certificate.value().inner().block().height.0);
                Ok(Response::ValidatedCertificate(Err(
                    NodeError::BlobsNotFound(vec![blob]),
                )))
            }
            (request, _) => Ok(dispatch(self.inner.as_ref(), request).await),
        }
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.inner.subscribe(chains).await
    }
}
