//! Why a chain operation failed: [`ChainClientError`].

use quorum_core::{
    AccountPublicKey, BlockHeight, CertificateError, ChainId, CryptoHash, Epoch, NodeError, Round,
    ValidatorPublicKey,
};

use crate::quorum::QuorumError;

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainClientError {
    /// The validators did not agree.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The local node refused (the block is invalid, or something is missing locally).
    #[error("local node: {0}")]
    Local(NodeError),
    /// This client has no owner key for the chain.
    #[error("no owner key for this chain")]
    NotOwner,
    /// The validators did not agree, and those holding at least f+1 of the weight say our
    /// clock is ahead of theirs by more than their timestamp grace: the likely cause, attached
    /// to the real error.
    #[error(
        "our clock is ahead of validators holding f+1 of the weight, by about {skew_micros} µs: {error}"
    )]
    ClockAhead {
        /// The weighted median of the skews reported (one per validator), in microseconds.
        skew_micros: i64,
        /// What the validators answered.
        error: Box<QuorumError>,
    },
    /// The certified value is not the block this client computed.
    #[error("validators certified another value than the one proposed")]
    UnexpectedValue,
    /// The assembled certificate did not check.
    #[error("assembled certificate is invalid: {0}")]
    Certificate(#[from] CertificateError),
    /// Rounds ran out ([`Options::max_rounds_per_block`](crate::Options::max_rounds_per_block)
    /// tried, or [`Options::max_waited_rounds`](crate::Options::max_waited_rounds) waited
    /// out).
    #[error("gave up after {rounds} rounds; {}", lock_text(.lock))]
    TooManyRounds {
        /// Rounds gone through: tried, and waited out.
        rounds: u32,
        /// The validated block that holds the chain at this height, as the local node knows
        /// it, if any: any owner's next call proposes it again before anything else.
        lock: Option<HeldLock>,
    },
    /// A synchronization stopped short of the height that validators holding f+1 of the
    /// weight have reached.
    #[error("synchronization of {chain_id:?} reached {reached:?}, not {target:?}; last error: {error:?}")]
    SyncIncomplete {
        /// The chain.
        chain_id: ChainId,
        /// The local next height reached.
        reached: BlockHeight,
        /// The next height validators holding f+1 of the weight have.
        target: BlockHeight,
        /// Why the last attempt stopped (e.g. `BlobsNotFound` naming the missing blobs).
        error: Option<Box<NodeError>>,
    },
    /// No validator asked knows the chain (none gave a description that hashes to its id).
    #[error("no validator knows chain {0:?}")]
    UnknownChain(ChainId),
    /// A committee the client needs has no reachable validators.
    #[error("no validator of {0:?} is reachable")]
    NoValidators(Epoch),
}

/// A validated block that holds a chain at a height: validators that saw its certificate
/// vote for no other block in later rounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// The block's hash (its validated value's).
    pub block: CryptoHash,
    /// The owner who proposed it.
    pub owner: AccountPublicKey,
    /// The round it was validated in.
    pub round: Round,
    /// The validators whose votes make its certificate.
    pub validators: Vec<ValidatorPublicKey>,
}

fn lock_text(lock: &Option<HeldLock>) -> String {
    match lock {
        None => "no validated block holds the chain".to_owned(),
        Some(lock) => format!(
            "the chain is held by block {:?} of owner {:?}, validated in round {} by {:?}",
            lock.block, lock.owner, lock.round, lock.validators
        ),
    }
}

impl From<NodeError> for ChainClientError {
    fn from(error: NodeError) -> Self {
        ChainClientError::Local(error)
    }
}
