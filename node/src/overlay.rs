//! A write buffer over a [`Storage`]: reads see the buffered writes first, and everything is
//! committed later in one batch. The Worker uses it to apply a whole batch of certificates in a
//! single storage transaction (one fsync, not one per block).

use std::sync::Mutex;

use async_trait::async_trait;

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, OutboxEntry, ReceivedEntry, Storage,
    StorageError, Write,
};

use crate::memory::MemoryStorage;

/// Buffered writes over `base`.
pub(crate) struct Overlay<'a, S: ?Sized> {
    base: &'a S,
    changes: MemoryStorage,
    writes: Mutex<Vec<Write>>,
}

impl<'a, S: Storage + ?Sized> Overlay<'a, S> {
    /// An empty buffer over `base`.
    pub(crate) fn new(base: &'a S) -> Self {
        Overlay {
            base,
            changes: MemoryStorage::new(),
            writes: Mutex::new(Vec::new()),
        }
    }

    /// A buffer over `base` that starts with `changes` (a layer shared with its owner: reads
    /// see it first).
    pub(crate) fn with_changes(base: &'a S, changes: MemoryStorage) -> Self {
        Overlay {
            base,
            changes,
            writes: Mutex::new(Vec::new()),
        }
    }

    /// The buffered writes, in order, as one batch.
    pub(crate) fn into_batch(self) -> Batch {
        let writes = self
            .writes
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Batch { writes }
    }
}

/// Fills the gaps (`None`) of `first` from `fallback`, position by position.
fn merge<T>(first: Vec<Option<T>>, fallback: Vec<Option<T>>) -> Vec<Option<T>> {
    first
        .into_iter()
        .zip(fallback)
        .map(|(a, b)| a.or(b))
        .collect()
}

#[async_trait]
impl<S: Storage + ?Sized> Storage for Overlay<'_, S> {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        match self.changes.read_certificate(hash).await? {
            Some(certificate) => Ok(Some(certificate)),
            None => self.base.read_certificate(hash).await,
        }
    }

    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        let first = self
            .changes
            .read_certificate_hashes(chain_id, heights)
            .await?;
        Ok(merge(
            first,
            self.base.read_certificate_hashes(chain_id, heights).await?,
        ))
    }

    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        let first = self
            .changes
            .read_certificates_by_heights(chain_id, heights)
            .await?;
        Ok(merge(
            first,
            self.base
                .read_certificates_by_heights(chain_id, heights)
                .await?,
        ))
    }

    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        match self.changes.read_blob(id).await? {
            Some(blob) => Ok(Some(blob)),
            None => self.base.read_blob(id).await,
        }
    }

    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        let not_buffered = self.changes.missing_blobs(ids).await?;
        self.base.missing_blobs(&not_buffered).await
    }

    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        match self.changes.read_blob_state(id).await? {
            Some(state) => Ok(Some(state)),
            None => self.base.read_blob_state(id).await,
        }
    }

    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        match self.changes.read_event(id).await? {
            Some(payload) => Ok(Some(payload)),
            None => self.base.read_event(id).await,
        }
    }

    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        match self.changes.read_chain_state(chain_id).await? {
            Some(state) => Ok(Some(state)),
            None => self.base.read_chain_state(chain_id).await,
        }
    }

    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        match self.changes.read_committee(epoch).await? {
            Some(committee) => Ok(Some(committee)),
            None => self.base.read_committee(epoch).await,
        }
    }

    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError> {
        // The base holds the older entries, the buffer those appended since: the base's run
        // from `from`, then the buffer's from where the base's ended.
        let mut entries = self.base.read_received_log(chain_id, from, limit).await?;
        let read = entries.len();
        if read < limit {
            let next = from.saturating_add(read as u64);
            entries.extend(
                self.changes
                    .read_received_log(chain_id, next, limit - read)
                    .await?,
            );
        }
        Ok(entries)
    }

    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        // The buffer's own entries, and the base's but those the buffer marked done: asking
        // the base for as many more as there are marks still yields `limit` when it can.
        let layer = self.changes.outbox_layer(lane);
        let done: std::collections::BTreeSet<OutboxEntry> = layer
            .iter()
            .filter_map(|(entry, owed)| (!owed).then_some(*entry))
            .collect();
        let wanted = limit.saturating_add(done.len());
        let mut entries: std::collections::BTreeSet<OutboxEntry> = self
            .base
            .read_outbox(lane, wanted)
            .await?
            .into_iter()
            .filter(|entry| !done.contains(entry))
            .collect();
        entries.extend(
            layer
                .iter()
                .filter_map(|(entry, owed)| owed.then_some(*entry)),
        );
        Ok(entries.into_iter().take(limit).collect())
    }

    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        self.changes.write_batch(batch.clone()).await?;
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(batch.writes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::Blob;

    #[tokio::test]
    async fn reads_see_buffered_writes_and_nothing_reaches_the_base_until_committed() {
        let base = MemoryStorage::new();
        let old = Blob::data(b"old".to_vec());
        base.write_batch(Batch {
            writes: vec![Write::Blob(old.clone())],
        })
        .await
        .unwrap();
        let overlay = Overlay::new(&base);
        let new = Blob::data(b"new".to_vec());
        overlay
            .write_batch(Batch {
                writes: vec![Write::Blob(new.clone())],
            })
            .await
            .unwrap();
        assert_eq!(
            overlay.read_blob(new.id()).await.unwrap(),
            Some(new.clone())
        );
        assert_eq!(
            overlay.read_blob(old.id()).await.unwrap(),
            Some(old.clone())
        );
        assert!(overlay
            .missing_blobs(&[old.id(), new.id()])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(base.read_blob(new.id()).await.unwrap(), None);
        let batch = overlay.into_batch();
        base.write_batch(batch).await.unwrap();
        assert_eq!(base.read_blob(new.id()).await.unwrap(), Some(new));
    }

    #[tokio::test]
    async fn the_outbox_read_through_a_buffer_hides_what_it_marked_done() {
        let entry = |recipient: u8| quorum_core::OutboxEntry {
            lane: 1,
            recipient: ChainId(CryptoHash([recipient; 32])),
            certificate: CryptoHash([9; 32]),
        };
        let base = MemoryStorage::new();
        base.write_batch(Batch {
            writes: vec![Write::Outbox(entry(1)), Write::Outbox(entry(2))],
        })
        .await
        .unwrap();
        let overlay = Overlay::new(&base);
        overlay
            .write_batch(Batch {
                writes: vec![Write::OutboxDone(entry(1)), Write::Outbox(entry(3))],
            })
            .await
            .unwrap();
        assert_eq!(
            overlay.read_outbox(1, 10).await.unwrap(),
            vec![entry(2), entry(3)]
        );
        assert_eq!(overlay.read_outbox(1, 1).await.unwrap(), vec![entry(2)]);
        assert_eq!(
            base.read_outbox(1, 10).await.unwrap().len(),
            2,
            "the base untouched"
        );
        base.write_batch(overlay.into_batch()).await.unwrap();
        assert_eq!(
            base.read_outbox(1, 10).await.unwrap(),
            vec![entry(2), entry(3)]
        );
    }
}
