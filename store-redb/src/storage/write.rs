//! The write path of [`RedbStorage`](super::RedbStorage): a batch applied in one write
//! transaction, table by table, and committed.

use super::*;

impl Inner {
    /// Applies `batch` in one write transaction and commits it.
    pub(super) fn commit(&self, batch: Batch) -> Result<(), Error> {
        let count = batch.writes.len();
        let mut transaction = self
            .database
            .begin_write()
            .map_err(|source| Error::Transaction {
                access: Access::Write,
                source: Box::new(source),
            })?;
        transaction.set_durability(self.durability.into());
        {
            let mut tables = WriteTables::new(&transaction);
            for write in batch.writes {
                tables.apply(write)?;
            }
        }
        // On any error above, dropping the transaction aborts it: nothing of the batch lands.
        transaction.commit().map_err(Error::Commit)?;
        tracing::trace!(writes = count, path = %self.path.display(), "redb store committed a batch");
        Ok(())
    }
}

type WriteTable<'txn, K, V> = Option<Table<'txn, K, V>>;

/// The tables of a write transaction, each opened when first written.
pub(super) struct WriteTables<'txn> {
    transaction: &'txn redb::WriteTransaction,
    meta: WriteTable<'txn, &'static str, u64>,
    certificates: WriteTable<'txn, HashKey, Bytes>,
    certificate_hashes: WriteTable<'txn, HeightKey, HashKey>,
    blobs: WriteTable<'txn, BlobKey, Bytes>,
    blob_states: WriteTable<'txn, BlobKey, Bytes>,
    events: WriteTable<'txn, EventKey, Bytes>,
    chain_states: WriteTable<'txn, HashKey, Bytes>,
    committees: WriteTable<'txn, u32, Bytes>,
    received_logs: WriteTable<'txn, HeightKey, HeightKey>,
    outbox: WriteTable<'txn, OutboxKey, ()>,
}

/// Opens a table into `slot` unless it is open already.
fn open_write<'s, 'txn, K: Key + 'static, V: Value + 'static>(
    slot: &'s mut WriteTable<'txn, K, V>,
    transaction: &'txn redb::WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<&'s mut Table<'txn, K, V>, Error> {
    let table = match slot.take() {
        Some(table) => table,
        None => transaction
            .open_table(definition)
            .map_err(|source| Error::Table {
                table: name,
                access: Access::Write,
                source,
            })?,
    };
    Ok(slot.insert(table))
}

impl<'txn> WriteTables<'txn> {
    pub(super) fn new(transaction: &'txn redb::WriteTransaction) -> Self {
        WriteTables {
            transaction,
            meta: None,
            certificates: None,
            certificate_hashes: None,
            blobs: None,
            blob_states: None,
            events: None,
            chain_states: None,
            committees: None,
            received_logs: None,
            outbox: None,
        }
    }

    /// Opens (creating) every table.
    pub(super) fn create_all(&mut self) -> Result<(), Error> {
        self.meta()?;
        self.certificates()?;
        self.certificate_hashes()?;
        self.blobs()?;
        self.blob_states()?;
        self.events()?;
        self.chain_states()?;
        self.committees()?;
        self.received_logs()?;
        self.outbox()?;
        Ok(())
    }

    pub(super) fn meta(&mut self) -> Result<&mut Table<'txn, &'static str, u64>, Error> {
        open_write(&mut self.meta, self.transaction, META, names::META)
    }

    pub(super) fn certificates(&mut self) -> Result<&mut Table<'txn, HashKey, Bytes>, Error> {
        open_write(
            &mut self.certificates,
            self.transaction,
            CERTIFICATES,
            names::CERTIFICATES,
        )
    }

    pub(super) fn certificate_hashes(
        &mut self,
    ) -> Result<&mut Table<'txn, HeightKey, HashKey>, Error> {
        open_write(
            &mut self.certificate_hashes,
            self.transaction,
            CERTIFICATE_HASHES,
            names::CERTIFICATE_HASHES,
        )
    }

    pub(super) fn blobs(&mut self) -> Result<&mut Table<'txn, BlobKey, Bytes>, Error> {
        open_write(&mut self.blobs, self.transaction, BLOBS, names::BLOBS)
    }

    pub(super) fn blob_states(&mut self) -> Result<&mut Table<'txn, BlobKey, Bytes>, Error> {
        open_write(
            &mut self.blob_states,
            self.transaction,
            BLOB_STATES,
            names::BLOB_STATES,
        )
    }

    pub(super) fn events(&mut self) -> Result<&mut Table<'txn, EventKey, Bytes>, Error> {
        open_write(&mut self.events, self.transaction, EVENTS, names::EVENTS)
    }

    pub(super) fn chain_states(&mut self) -> Result<&mut Table<'txn, HashKey, Bytes>, Error> {
        open_write(
            &mut self.chain_states,
            self.transaction,
            CHAIN_STATES,
            names::CHAIN_STATES,
        )
    }

    pub(super) fn committees(&mut self) -> Result<&mut Table<'txn, u32, Bytes>, Error> {
        open_write(
            &mut self.committees,
            self.transaction,
            COMMITTEES,
            names::COMMITTEES,
        )
    }

    pub(super) fn received_logs(
        &mut self,
    ) -> Result<&mut Table<'txn, HeightKey, HeightKey>, Error> {
        open_write(
            &mut self.received_logs,
            self.transaction,
            RECEIVED_LOGS,
            names::RECEIVED_LOGS,
        )
    }

    pub(super) fn outbox(&mut self) -> Result<&mut Table<'txn, OutboxKey, ()>, Error> {
        open_write(&mut self.outbox, self.transaction, OUTBOX, names::OUTBOX)
    }

    /// Applies one write.
    pub(super) fn apply(&mut self, write: Write) -> Result<(), Error> {
        match write {
            Write::Certificate(certificate) => {
                let hash = certificate.hash();
                let block = certificate.value().block();
                let bytes = encode(names::CERTIFICATES, &*certificate)?;
                self.certificates()?
                    .insert(hash_key(&hash), bytes.as_slice())
                    .map_err(storage_error(names::CERTIFICATES, Access::Write))?;
                self.certificate_hashes()?
                    .insert(height_key(&block.chain_id, block.height), hash_key(&hash))
                    .map_err(storage_error(names::CERTIFICATE_HASHES, Access::Write))?;
            }
            Write::Blob(blob) => {
                let id = blob.id();
                self.blobs()?
                    .insert(blob_key(&id), blob.content.as_slice())
                    .map_err(storage_error(names::BLOBS, Access::Write))?;
            }
            Write::BlobState(id, state) => {
                let bytes = encode(names::BLOB_STATES, &state)?;
                self.blob_states()?
                    .insert(blob_key(&id), bytes.as_slice())
                    .map_err(storage_error(names::BLOB_STATES, Access::Write))?;
            }
            Write::Event(id, payload) => {
                self.events()?
                    .insert(event_key(&id), payload.as_slice())
                    .map_err(storage_error(names::EVENTS, Access::Write))?;
            }
            Write::ChainState(state) => {
                let bytes = encode(names::CHAIN_STATES, &*state)?;
                self.chain_states()?
                    .insert(hash_key(&state.chain_id().0), bytes.as_slice())
                    .map_err(storage_error(names::CHAIN_STATES, Access::Write))?;
            }
            Write::Committee(epoch, committee) => {
                let bytes = encode(names::COMMITTEES, &committee)?;
                self.committees()?
                    .insert(epoch.0, bytes.as_slice())
                    .map_err(storage_error(names::COMMITTEES, Access::Write))?;
            }
            Write::ReceivedLog(chain_id, index, entry) => {
                self.received_logs()?
                    .insert(
                        (hash_key(&chain_id.0), index),
                        height_key(&entry.origin, entry.height),
                    )
                    .map_err(storage_error(names::RECEIVED_LOGS, Access::Write))?;
            }
            Write::Outbox(entry) => {
                self.outbox()?
                    .insert(outbox_key(&entry), ())
                    .map_err(storage_error(names::OUTBOX, Access::Write))?;
            }
            Write::OutboxDone(entry) => {
                self.outbox()?
                    .remove(outbox_key(&entry))
                    .map_err(storage_error(names::OUTBOX, Access::Write))?;
            }
        }
        Ok(())
    }
}
