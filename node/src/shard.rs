//! A validator split over several processes (DESIGN §7.1): N shards, each a Worker with the
//! validator's key owning the chains of its index, all on one database, and a proxy that
//! clients reach as the one validator.
//!
//! * [`Shards`]: which shard owns a chain: `u64::from_be_bytes(first 8 bytes of the chain
//!   id) mod N`.
//! * [`ShardPlace`]: in [`WorkerConfig::shard`](crate::WorkerConfig::shard), makes a Worker
//!   one shard: what its blocks send to another shard's chains goes to the durable outbox
//!   (written in the block's own batch), and [`Worker::deliver_outbox`](crate::Worker::deliver_outbox)
//!   takes in what the other shards owe its own chains.
//! * [`ShardRouter`]: the proxy's node: each request to the shard that owns its chain,
//!   chain-less reads (blobs, certificates by hash) from the shared tables.

use quorum_core::ChainId;

mod router;

pub use router::{ShardNodesMismatch, ShardRouter};

/// How many shards a validator has, and which owns which chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shards {
    count: u32,
}

/// A number of shards of zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a validator has at least one shard")]
pub struct NoShards;

impl Shards {
    /// `count` shards (at least one).
    pub fn new(count: u32) -> Result<Self, NoShards> {
        if count == 0 {
            return Err(NoShards);
        }
        Ok(Shards { count })
    }

    /// How many there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The index of the shard that owns `chain`: the chain id's first 8 bytes, big-endian,
    /// modulo the number of shards.
    pub fn owner(&self, chain: ChainId) -> u32 {
        let bytes = chain.0.as_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        // The remainder is below `count`, a `u32`.
        (u64::from_be_bytes(first) % u64::from(self.count)) as u32
    }
}

/// One shard's place: its index among `shards`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardPlace {
    /// The validator's shards.
    pub shards: Shards,
    /// This shard's index, in `0..shards.count()`.
    pub index: u32,
}

impl ShardPlace {
    /// Shard `index` of `shards`, if in range.
    pub fn new(shards: Shards, index: u32) -> Option<Self> {
        (index < shards.count()).then_some(ShardPlace { shards, index })
    }

    /// The lane of the outbox `chain`'s deliveries go to, if another shard owns it.
    pub fn lane_of(&self, chain: ChainId) -> Option<u32> {
        let owner = self.shards.owner(chain);
        (owner != self.index).then_some(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quorum_core::CryptoHash;

    fn chain(bytes: [u8; 32]) -> ChainId {
        ChainId(CryptoHash(bytes))
    }

    #[test]
    fn the_owner_is_the_first_eight_bytes_modulo_the_count() {
        let mut bytes = [0xff; 32];
        bytes[..8].copy_from_slice(&10u64.to_be_bytes());
        let shards = Shards::new(3).unwrap();
        assert_eq!(shards.owner(chain(bytes)), 1);
        assert_eq!(Shards::new(1).unwrap().owner(chain(bytes)), 0);
        assert_eq!(Shards::new(0), Err(NoShards));
        let place = ShardPlace::new(shards, 1).unwrap();
        assert_eq!(place.lane_of(chain(bytes)), None, "its own chain");
        assert!(ShardPlace::new(shards, 3).is_none());
    }

    proptest! {
        #[test]
        fn every_chain_has_exactly_one_owner(bytes in any::<[u8; 32]>(), count in 1u32..64) {
            let shards = Shards::new(count).unwrap();
            let owner = shards.owner(chain(bytes));
            prop_assert!(owner < count);
            let owning: Vec<u32> = (0..count)
                .filter(|index| ShardPlace::new(shards, *index).unwrap().lane_of(chain(bytes)).is_none())
                .collect();
            prop_assert_eq!(owning, vec![owner]);
        }
    }
}
