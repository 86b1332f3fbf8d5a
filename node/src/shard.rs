//! A validator split over several processes (DESIGN §7.1): N shards, each a Worker with the
//! validator's key owning the chains of its index, all on one database, behind a proxy that
//! clients reach as the one validator.
//!
//! [`Shard`], in [`WorkerConfig::shard`](crate::WorkerConfig::shard), makes a Worker one
//! shard: what its blocks send to another shard's chains goes to the durable outbox (written
//! in the block's own batch), and [`Worker::deliver_outbox`](crate::Worker::deliver_outbox)
//! takes in what the other shards owe its own chains. Which shard owns a chain is
//! [`Shard::owner_of`]: the chain id's first 8 bytes, big-endian, modulo the number of shards.

use core::num::NonZeroU32;

use quorum_core::ChainId;

/// One shard of a validator: its index among `count` shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    count: NonZeroU32,
    index: u32,
}

impl Shard {
    /// Shard `index` of `count`, if `index` is below `count`.
    pub fn new(count: NonZeroU32, index: u32) -> Option<Self> {
        (index < count.get()).then_some(Shard { count, index })
    }

    /// The index of the shard that owns `chain` among `count`: the chain id's first 8
    /// bytes, big-endian, modulo `count`.
    pub fn owner_of(count: NonZeroU32, chain: ChainId) -> u32 {
        let bytes = chain.0.as_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        // The remainder is below `count`, a `u32`.
        (u64::from_be_bytes(first) % u64::from(count.get())) as u32
    }

    /// How many shards the validator has.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// This shard's index, in `0..count`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether this shard owns `chain`.
    pub fn owns(&self, chain: ChainId) -> bool {
        Shard::owner_of(self.count, chain) == self.index
    }

    /// The lane of the outbox `chain`'s deliveries go to, if another shard owns it.
    pub fn lane_of(&self, chain: ChainId) -> Option<u32> {
        let owner = Shard::owner_of(self.count, chain);
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

    fn count(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn the_owner_is_the_first_eight_bytes_modulo_the_count() {
        let mut bytes = [0xff; 32];
        bytes[..8].copy_from_slice(&10u64.to_be_bytes());
        assert_eq!(Shard::owner_of(count(3), chain(bytes)), 1);
        assert_eq!(Shard::owner_of(count(1), chain(bytes)), 0);
        let shard = Shard::new(count(3), 1).unwrap();
        assert_eq!(shard.lane_of(chain(bytes)), None, "its own chain");
        assert!(shard.owns(chain(bytes)));
        assert_eq!(
            Shard::new(count(3), 0).unwrap().lane_of(chain(bytes)),
            Some(1)
        );
        assert!(Shard::new(count(3), 3).is_none());
    }

    proptest! {
        #[test]
        fn every_chain_has_exactly_one_owner(bytes in any::<[u8; 32]>(), n in 1u32..64) {
            let owner = Shard::owner_of(count(n), chain(bytes));
            prop_assert!(owner < n);
            let owning: Vec<u32> = (0..n)
                .filter(|index| Shard::new(count(n), *index).unwrap().owns(chain(bytes)))
                .collect();
            prop_assert_eq!(owning, vec![owner]);
        }
    }
}
