//! The received log (DESIGN §4.2.1): per chain, the ordered list of the confirmed blocks that
//! delivered a bundle to its inbox, as a node received them.
//!
//! A node appends an entry when a bundle it had neither received nor consumed reaches the
//! chain's inbox, and serves the log from an offset in pages ([`ChainInfoQuery`]'s
//! `request_received_log_from`, at most [`Limits`]' `max_received_log_entries_per_query`
//! entries). An entry only names a certificate: whoever reads the log downloads and verifies
//! that certificate itself, so a node can withhold entries but cannot forge what they pay.
//!
//! [`ChainInfoQuery`]: crate::ChainInfoQuery
//! [`Limits`]: crate::Limits

use serde::{Deserialize, Serialize};

use crate::{BlockHeight, ChainId};

/// One entry of a chain's received log: the block of `origin` at `height` sent the chain a
/// bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReceivedEntry {
    /// The sending chain.
    pub origin: ChainId,
    /// The height of the sending block.
    pub height: BlockHeight,
}

impl ReceivedEntry {
    /// Encoded size of one entry in BCS, in bytes: a 32-byte chain id and an 8-byte height.
    /// Entries have a fixed size, so a page bounded in entries is bounded in bytes.
    pub const ENCODED_BYTES: usize = 40;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CryptoHash;

    #[test]
    fn an_entry_encodes_in_its_fixed_size() {
        let entry = ReceivedEntry {
            origin: ChainId(CryptoHash([7; 32])),
            height: BlockHeight(u64::MAX),
        };
        let bytes = crate::encoding::to_bytes(&entry).unwrap();
        assert_eq!(bytes.len(), ReceivedEntry::ENCODED_BYTES);
    }
}
