//! What an updater obtains from a validator: [`CommunicateAction`].

use quorum_core::{
    Blob, BlockHeight, BlockProposal, ChainId, CrossChainDelivery, Round,
    ValidatedBlockCertificate, ValidatorPublicKey,
};

/// A clock-skew report: the validator, and how far our clock is ahead of its clock, in
/// microseconds: `max(0, our send time − its time)`, so never negative.
pub(crate) type SkewReport = (ValidatorPublicKey, i64);

/// What to obtain from a validator.
#[derive(Clone, Debug)]
pub enum CommunicateAction {
    /// Propose a block and get its (validated or, in the fast round, confirmed) vote. The
    /// blobs the block needs are read off the block itself.
    SubmitBlock {
        /// The proposal.
        proposal: Box<BlockProposal>,
        /// The contents of the blobs the block itself publishes.
        blobs: Vec<Blob>,
    },
    /// Send a validated certificate and get the confirmation vote.
    FinalizeBlock {
        /// The certificate.
        certificate: Box<ValidatedBlockCertificate>,
        /// The contents of the blobs the block publishes.
        blobs: Vec<Blob>,
        /// How messages are delivered once confirmed.
        delivery: CrossChainDelivery,
    },
    /// Get a timeout vote for a round.
    RequestTimeout {
        /// The chain.
        chain_id: ChainId,
        /// The height.
        height: BlockHeight,
        /// The round.
        round: Round,
    },
}

impl CommunicateAction {
    /// The round the action is about: the proposal's, the certificate's, or the timeout's.
    pub fn round(&self) -> Round {
        match self {
            CommunicateAction::SubmitBlock { proposal, .. } => proposal.round(),
            CommunicateAction::FinalizeBlock { certificate, .. } => certificate.round(),
            CommunicateAction::RequestTimeout { round, .. } => *round,
        }
    }
}
