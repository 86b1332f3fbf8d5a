//! [`Timeout`]: what a timeout certificate certifies, a round of a chain's height that
//! timed out.

use serde::{Deserialize, Serialize};

use crate::chain_id::ChainId;
use crate::committee::Epoch;
use crate::hash::BcsHashable;
use crate::units::BlockHeight;
use crate::vote::{CertificateValue, VoteKind};

/// A round of a chain's height that timed out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timeout {
    /// The chain.
    pub chain_id: ChainId,
    /// The height.
    pub height: BlockHeight,
    /// The epoch.
    pub epoch: Epoch,
}

impl BcsHashable for Timeout {
    const DOMAIN: &'static str = "Timeout";
}

impl CertificateValue for Timeout {
    const KIND: VoteKind = VoteKind::Timeout;
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }
}
