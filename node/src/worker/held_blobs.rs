//! Blobs a Worker holds in memory until a block needs them (DESIGN §4.5.2): the pending blobs
//! of chains whose owners are proposing, and blobs uploaded for certificates the node asked
//! for. Everything is bounded in bytes and in time, and a refusal leaves nothing behind.
//!
//! Pure bookkeeping: the caller passes the time, so every rule is tested without a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use quorum_core::{Blob, BlobId, ChainId, Limit, NodeError, TimeDelta, Timestamp};

/// The bounds of [`HeldBlobs`], read from the Worker's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeldBlobCaps {
    /// Bytes of pending and uploaded blobs together.
    pub total_bytes: usize,
    /// Bytes of pending blobs per chain.
    pub chain_bytes: usize,
    /// Pending blobs per chain.
    pub chain_blobs: usize,
    /// Chains with pending blobs.
    pub chains: usize,
    /// Uploaded blobs.
    pub uploaded: usize,
    /// Blob ids the node asked for and waits for.
    pub wanted: usize,
    /// How long a blob (or a wanted id) is kept.
    pub expiry: TimeDelta,
}

#[derive(Clone, Debug)]
struct Held {
    blob: Blob,
    expires: Timestamp,
}

#[derive(Debug, Default)]
struct ChainBlobs {
    blobs: BTreeMap<BlobId, Held>,
    bytes: usize,
}

/// The blobs held, their byte counts and the ids the node asked for.
#[derive(Debug, Default)]
pub(crate) struct HeldBlobs {
    pending: HashMap<ChainId, ChainBlobs>,
    uploaded: BTreeMap<BlobId, Held>,
    /// Ids named in the node's `BlobsNotFound` answers to certificates, until when.
    wanted: BTreeMap<BlobId, Timestamp>,
    /// Ids named in the node's `BlobsNotFound` answers to proposals an owner of the chain
    /// signed, until when: the only pending blobs the chain takes (DESIGN §4.5.2).
    wanted_pending: BTreeMap<(ChainId, BlobId), Timestamp>,
    bytes: usize,
}

impl HeldBlobs {
    /// Bytes held in all.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The blob `id`, pending for `chain_id` or uploaded.
    pub(super) fn get(&self, chain_id: ChainId, id: &BlobId) -> Option<&Blob> {
        self.pending
            .get(&chain_id)
            .and_then(|chain| chain.blobs.get(id))
            .or_else(|| self.uploaded.get(id))
            .map(|held| &held.blob)
    }

    /// The chains for which blob `id` is held pending, with it.
    pub(super) fn pending_anywhere<'a>(
        &'a self,
        id: &'a BlobId,
    ) -> impl Iterator<Item = (ChainId, &'a Blob)> + 'a {
        self.pending.iter().filter_map(move |(chain_id, chain)| {
            chain.blobs.get(id).map(|held| (*chain_id, &held.blob))
        })
    }

    /// Records that the node answered a certificate with `BlobsNotFound(ids)`: uploads of
    /// those blobs are welcome until the expiry. Beyond the limit the oldest wishes go.
    pub(super) fn want(&mut self, ids: &[BlobId], now: Timestamp, limits: &HeldBlobCaps) {
        let until = now.saturating_add(limits.expiry);
        for id in ids {
            self.wanted.insert(*id, until);
        }
        if self.wanted.len() > limits.wanted {
            self.wanted.retain(|_, until| *until > now);
        }
        while self.wanted.len() > limits.wanted {
            let Some(oldest) = self
                .wanted
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.wanted.remove(&oldest);
        }
    }

    /// Records that the node answered a proposal for `chain_id`, signed by an owner allowed to
    /// propose, with `BlobsNotFound(ids)`: those blobs are welcome as pending blobs of that
    /// chain until the expiry. Beyond the limit the oldest wishes go.
    pub(super) fn want_pending(
        &mut self,
        chain_id: ChainId,
        ids: &[BlobId],
        now: Timestamp,
        limits: &HeldBlobCaps,
    ) {
        let until = now.saturating_add(limits.expiry);
        for id in ids {
            self.wanted_pending.insert((chain_id, *id), until);
        }
        if self.wanted_pending.len() > limits.wanted {
            self.wanted_pending.retain(|_, until| *until > now);
        }
        while self.wanted_pending.len() > limits.wanted {
            let Some(oldest) = self
                .wanted_pending
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(key, _)| *key)
            else {
                break;
            };
            self.wanted_pending.remove(&oldest);
        }
    }

    /// Takes an uploaded blob: only one the node asked for (`UnexpectedBlob` otherwise), within
    /// the count and byte budgets (`LimitExceeded`; nothing held is ever evicted for it).
    pub(super) fn upload(
        &mut self,
        blob: Blob,
        now: Timestamp,
        limits: &HeldBlobCaps,
    ) -> Result<(), NodeError> {
        let id = blob.id();
        if self.uploaded.contains_key(&id) {
            return Ok(());
        }
        if self.wanted.get(&id).is_none_or(|until| *until <= now) {
            return Err(NodeError::UnexpectedBlob(id));
        }
        let size = blob.content.len();
        if self.uploaded.len() >= limits.uploaded || self.bytes + size > limits.total_bytes {
            self.expire(now);
        }
        if self.uploaded.len() >= limits.uploaded || self.bytes + size > limits.total_bytes {
            return Err(NodeError::LimitExceeded(Limit::UploadedBlobs));
        }
        self.bytes += size;
        let expires = now.saturating_add(limits.expiry);
        self.uploaded.insert(id, Held { blob, expires });
        Ok(())
    }

    /// Takes a pending blob for `chain_id`: only one a proposal an owner signed asked for
    /// (`UnexpectedBlob` otherwise; see [`HeldBlobs::want_pending`]), unless `from_owner` (the
    /// owner's own node holding its blobs), within the chain's quota (count and bytes), the
    /// number of chains and the byte budget; a refusal leaves no entry.
    pub(super) fn add_pending(
        &mut self,
        chain_id: ChainId,
        blob: Blob,
        from_owner: bool,
        now: Timestamp,
        limits: &HeldBlobCaps,
    ) -> Result<(), NodeError> {
        let id = blob.id();
        let size = blob.content.len();
        let expires = now.saturating_add(limits.expiry);
        if let Some(held) = self
            .pending
            .get_mut(&chain_id)
            .and_then(|chain| chain.blobs.get_mut(&id))
        {
            held.expires = expires;
            return Ok(());
        }
        let wanted = self
            .wanted_pending
            .get(&(chain_id, id))
            .is_some_and(|until| *until > now);
        if !wanted && !from_owner {
            return Err(NodeError::UnexpectedBlob(id));
        }
        if !self.fits_pending(chain_id, size, limits) {
            self.expire(now);
        }
        if !self.fits_pending(chain_id, size, limits) {
            return Err(NodeError::LimitExceeded(Limit::PendingBlobs));
        }
        let chain = self.pending.entry(chain_id).or_default();
        chain.bytes += size;
        chain.blobs.insert(id, Held { blob, expires });
        self.bytes += size;
        Ok(())
    }

    fn fits_pending(&self, chain_id: ChainId, size: usize, limits: &HeldBlobCaps) -> bool {
        let chain = self.pending.get(&chain_id);
        let (blobs, bytes) = chain.map_or((0, 0), |chain| (chain.blobs.len(), chain.bytes));
        (chain.is_some() || self.pending.len() < limits.chains)
            && blobs < limits.chain_blobs
            && bytes + size <= limits.chain_bytes
            && self.bytes + size <= limits.total_bytes
    }

    /// Drops everything whose time has passed.
    pub(super) fn expire(&mut self, now: Timestamp) {
        let mut freed = 0;
        self.uploaded.retain(|_, held| {
            let keep = held.expires > now;
            if !keep {
                freed += held.blob.content.len();
            }
            keep
        });
        self.pending.retain(|_, chain| {
            chain.blobs.retain(|_, held| {
                let keep = held.expires > now;
                if !keep {
                    chain.bytes -= held.blob.content.len();
                    freed += held.blob.content.len();
                }
                keep
            });
            !chain.blobs.is_empty()
        });
        self.wanted.retain(|_, until| *until > now);
        self.wanted_pending.retain(|_, until| *until > now);
        self.bytes -= freed;
    }

    /// A block of `chain_id` committed, using `used`: the chain's pending blobs and the used
    /// uploads are no longer needed.
    pub(super) fn committed(&mut self, chain_id: ChainId, used: &BTreeSet<BlobId>) {
        if let Some(chain) = self.pending.remove(&chain_id) {
            self.bytes -= chain.bytes;
        }
        self.wanted_pending
            .retain(|(chain, _), _| *chain != chain_id);
        self.release_uploads(used);
    }

    /// The uploads `used` are stored now: they, and the wish for them, go.
    pub(super) fn release_uploads(&mut self, used: &BTreeSet<BlobId>) {
        for id in used {
            if let Some(held) = self.uploaded.remove(id) {
                self.bytes -= held.blob.content.len();
            }
            self.wanted.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    const LIMITS: HeldBlobCaps = HeldBlobCaps {
        total_bytes: 1_000,
        chain_bytes: 400,
        chain_blobs: 3,
        chains: 2,
        uploaded: 4,
        wanted: 8,
        expiry: TimeDelta(100),
    };

    fn blob(n: u8, size: usize) -> Blob {
        let mut content = vec![n; size];
        content.push(n);
        Blob::data(content)
    }

    fn chain(n: u8) -> ChainId {
        ChainId(quorum_core::CryptoHash([n; 32]))
    }

    #[test]
    fn only_wanted_uploads_are_taken_and_nothing_is_evicted() {
        let mut held = HeldBlobs::default();
        let now = Timestamp(0);
        let a = blob(1, 499);
        assert_eq!(
            held.upload(a.clone(), now, &LIMITS),
            Err(NodeError::UnexpectedBlob(a.id()))
        );
        let b = blob(2, 499);
        let c = blob(3, 10);
        held.want(&[a.id(), b.id(), c.id()], now, &LIMITS);
        held.upload(a.clone(), now, &LIMITS).unwrap();
        held.upload(b.clone(), now, &LIMITS).unwrap();
        assert_eq!(held.bytes(), 1_000);
        // Full: refused, and what is held stays.
        assert_eq!(
            held.upload(c.clone(), now, &LIMITS),
            Err(NodeError::LimitExceeded(Limit::UploadedBlobs))
        );
        assert!(held.get(chain(0), &a.id()).is_some());
        // The wish expires with time.
        let later = Timestamp(200);
        held.expire(later);
        assert_eq!(held.bytes(), 0);
        assert_eq!(
            held.upload(c.clone(), later, &LIMITS),
            Err(NodeError::UnexpectedBlob(c.id()))
        );
    }

    #[test]
    fn pending_quotas_refuse_without_leaving_entries() {
        let mut held = HeldBlobs::default();
        let now = Timestamp(0);
        held.add_pending(chain(1), blob(1, 10), true, now, &LIMITS)
            .unwrap();
        held.add_pending(chain(2), blob(2, 10), true, now, &LIMITS)
            .unwrap();
        // A third chain: refused, and no empty entry counts against the limit.
        assert!(held
            .add_pending(chain(3), blob(3, 10), true, now, &LIMITS)
            .is_err());
        assert_eq!(held.pending.len(), 2);
        // Per-chain bytes.
        assert!(held
            .add_pending(chain(1), blob(4, 399), true, now, &LIMITS)
            .is_err());
        held.committed(chain(1), &BTreeSet::new());
        assert_eq!(held.bytes(), 11);
        held.add_pending(chain(3), blob(3, 10), true, now, &LIMITS)
            .unwrap();
        assert_eq!(held.pending.len(), 2);
    }

    #[test]
    fn a_chain_takes_only_the_pending_blobs_an_owners_proposal_asked_for() {
        let mut held = HeldBlobs::default();
        let now = Timestamp(0);
        let (asked, unasked) = (blob(1, 10), blob(2, 10));
        assert_eq!(
            held.add_pending(chain(1), asked.clone(), false, now, &LIMITS),
            Err(NodeError::UnexpectedBlob(asked.id()))
        );
        held.want_pending(chain(1), &[asked.id()], now, &LIMITS);
        // Wanted for chain 1 only.
        assert_eq!(
            held.add_pending(chain(2), asked.clone(), false, now, &LIMITS),
            Err(NodeError::UnexpectedBlob(asked.id()))
        );
        held.add_pending(chain(1), asked.clone(), false, now, &LIMITS)
            .unwrap();
        assert_eq!(
            held.add_pending(chain(1), unasked.clone(), false, now, &LIMITS),
            Err(NodeError::UnexpectedBlob(unasked.id()))
        );
        assert_eq!(held.bytes(), 11);
        // The wish ends with the block, or with time.
        held.committed(chain(1), &BTreeSet::new());
        assert_eq!(
            held.add_pending(chain(1), asked.clone(), false, now, &LIMITS),
            Err(NodeError::UnexpectedBlob(asked.id()))
        );
        held.want_pending(chain(1), &[asked.id()], now, &LIMITS);
        held.expire(Timestamp(200));
        assert_eq!(
            held.add_pending(chain(1), asked.clone(), false, Timestamp(200), &LIMITS),
            Err(NodeError::UnexpectedBlob(asked.id()))
        );
    }

    proptest! {
        #[test]
        fn bytes_are_counted_exactly_and_stay_within_budget(
            steps in proptest::collection::vec((0u8..4, 0u8..6, 0usize..300, 0u64..50), 1..60),
        ) {
            let mut held = HeldBlobs::default();
            let mut now = 0u64;
            for (action, n, size, advance) in steps {
                now += advance;
                let now = Timestamp(now);
                let b = blob(n, size);
                match action {
                    0 => {
                        held.want_pending(chain(n % 3), &[b.id()], now, &LIMITS);
                        let _ = held.add_pending(chain(n % 3), b, false, now, &LIMITS);
                    }
                    1 => { held.want(&[b.id()], now, &LIMITS); let _ = held.upload(b, now, &LIMITS); }
                    2 => held.committed(chain(n % 3), &[b.id()].into_iter().collect()),
                    _ => held.expire(now),
                }
                let counted: usize = held.uploaded.values().map(|h| h.blob.content.len()).sum::<usize>()
                    + held.pending.values().flat_map(|c| c.blobs.values()).map(|h| h.blob.content.len()).sum::<usize>();
                prop_assert_eq!(counted, held.bytes());
                prop_assert!(held.bytes() <= LIMITS.total_bytes);
                prop_assert!(held.pending.values().all(|c| !c.blobs.is_empty() && c.bytes <= LIMITS.chain_bytes));
                prop_assert!(held.pending.len() <= LIMITS.chains);
                prop_assert!(held.wanted.len() <= LIMITS.wanted);
                prop_assert!(held.wanted_pending.len() <= LIMITS.wanted);
            }
        }
    }
}
