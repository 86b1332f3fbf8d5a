//! Why a chain operation failed: [`ChainClientError`].

use quorum_core::{BlockHeight, CertificateError, ChainId, Epoch, NodeError};

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
    /// Rounds ran out.
    #[error("gave up after {0} rounds")]
    TooManyRounds(u32),
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

impl From<NodeError> for ChainClientError {
    fn from(error: NodeError) -> Self {
        ChainClientError::Local(error)
    }
}
