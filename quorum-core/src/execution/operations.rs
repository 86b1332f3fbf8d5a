//! Running a block's operations (DESIGN §4.4): one [`Run`] carries the chain's next state and
//! everything the block produces, operation by operation, and turns into the [`Execution`].

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::{consume_bundles, emit, Execution, ExecutionInputs};
use crate::block::{
    committee_blob, epoch_event_id, Block, BlockOutcome, EmittedEvent, Message, Operation,
    OutgoingBundle,
};
use crate::committee::{Committee, EncodedCommittee, Epoch};
use crate::error::{ExecutionError, Limit, NodeError};
use crate::ChainState;
use crate::{
    Blob, BlobId, BlobType, ChainDescription, ChainId, ChainOrigin, Event, EventId, StreamId,
};

/// A block being executed: its inputs, and what it has produced so far.
pub(super) struct Run<'a> {
    state: &'a ChainState,
    block: &'a Block,
    inputs: &'a ExecutionInputs,
    admin_chain: ChainId,
    /// The chain's state as the operations so far left it.
    next: ChainState,
    /// Messages to send, by recipient.
    outgoing: BTreeMap<ChainId, Vec<Message>>,
    published_blobs: Vec<Blob>,
    published_ids: Vec<BlobId>,
    seen_blobs: BTreeSet<BlobId>,
    events: Vec<Event>,
    opened_chains: Vec<ChainDescription>,
    new_committee: Option<(Epoch, Committee)>,
}

impl<'a> Run<'a> {
    /// Starts running `block` on `state`, whose checks passed; `admin_chain` is where epochs
    /// are announced.
    pub(super) fn new(
        state: &'a ChainState,
        block: &'a Block,
        inputs: &'a ExecutionInputs,
        admin_chain: ChainId,
    ) -> Self {
        Run {
            state,
            block,
            inputs,
            admin_chain,
            next: state.clone(),
            outgoing: BTreeMap::new(),
            published_blobs: Vec::new(),
            published_ids: Vec::new(),
            seen_blobs: BTreeSet::new(),
            events: Vec::new(),
            opened_chains: Vec::new(),
            new_committee: None,
        }
    }

    /// Consumes the block's incoming bundles; on a closed chain, their credits go back.
    pub(super) fn consume_bundles(&mut self) -> Result<(), NodeError> {
        for (origin, amount) in consume_bundles(&mut self.next, &self.block.incoming_bundles)? {
            self.send(origin, Message::Return { amount });
        }
        Ok(())
    }

    /// Runs the operation at `index` of the block.
    pub(super) fn apply(&mut self, index: usize, operation: &Operation) -> Result<(), NodeError> {
        if self.next.closed {
            // Only as the block's last operation.
            return Err(ExecutionError::ChainClosed.into());
        }
        match operation {
            Operation::Transfer { recipient, amount } => self.transfer(*recipient, *amount),
            Operation::PublishBlob(id) => self.publish_blob(id),
            Operation::ReadBlob(_) | Operation::ReadEvent(_) => Ok(()),
            Operation::OpenChain(child) => self.open_chain(index, child),
            Operation::EmitEvent { stream, payload } => self.emit_event(stream, payload),
            Operation::CreateCommittee(encoded) => self.create_committee(encoded),
            Operation::ProcessNewEpoch(epoch) => self.process_new_epoch(*epoch),
            Operation::CloseChain { beneficiary } => self.close_chain(*beneficiary),
        }
    }

    fn send(&mut self, recipient: ChainId, message: Message) {
        self.outgoing.entry(recipient).or_default().push(message);
    }

    /// Publishes `blob`, once however many operations publish it.
    fn publish(&mut self, blob: Blob) {
        if self.seen_blobs.insert(blob.id()) {
            self.published_ids.push(blob.id());
            self.published_blobs.push(blob);
        }
    }

    fn transfer(&mut self, recipient: ChainId, amount: u64) -> Result<(), NodeError> {
        if amount == 0 || recipient == self.state.chain_id {
            return Err(ExecutionError::InvalidTransfer.into());
        }
        self.next.balance =
            self.next
                .balance
                .checked_sub(amount)
                .ok_or(ExecutionError::InsufficientBalance {
                    balance: self.next.balance,
                    amount,
                })?;
        self.send(recipient, Message::Credit { amount });
        Ok(())
    }

    fn publish_blob(&mut self, id: &BlobId) -> Result<(), NodeError> {
        if id.blob_type != BlobType::Data {
            return Err(ExecutionError::WrongBlobType(*id).into());
        }
        if let Some(blob) = self.inputs.blobs.get(id) {
            self.publish(blob.clone());
        }
        Ok(())
    }

    fn open_chain(&mut self, index: usize, child: &ChainDescription) -> Result<(), NodeError> {
        let expected_origin = ChainOrigin::Child {
            parent: self.state.chain_id,
            height: self.block.height,
            index: u32::try_from(index).map_err(|_| ExecutionError::Overflow)?,
        };
        if child.origin != expected_origin || child.balance != 0 || child.owners.is_empty() {
            return Err(ExecutionError::InvalidOpenChain.into());
        }
        self.publish(child.to_blob());
        self.opened_chains.push(child.clone());
        Ok(())
    }

    fn emit_event(&mut self, stream: &StreamId, payload: &[u8]) -> Result<(), NodeError> {
        if stream.is_system() {
            return Err(ExecutionError::SystemStream(stream.clone()).into());
        }
        if payload.len() > self.inputs.limits.max_event_payload_bytes {
            return Err(ExecutionError::TooLarge(Limit::EventSize).into());
        }
        let index = emit(&mut self.next, stream)?;
        self.events.push(Event {
            id: EventId {
                chain_id: self.state.chain_id,
                stream: stream.clone(),
                index,
            },
            payload: payload.to_vec(),
        });
        Ok(())
    }

    fn create_committee(&mut self, encoded: &EncodedCommittee) -> Result<(), NodeError> {
        if self.state.chain_id != self.admin_chain {
            return Err(ExecutionError::NotAdminChain.into());
        }
        if self.new_committee.is_some() {
            return Err(ExecutionError::TooLarge(Limit::Committees).into());
        }
        // Decoded here, after the proposal's signature and the block's limits.
        let committee = encoded.decode().map_err(ExecutionError::InvalidCommittee)?;
        let stream = StreamId::epoch();
        // Epoch 0 is the genesis committee; announcements start at 1.
        let index = self
            .next
            .event_counts
            .get(&stream)
            .copied()
            .unwrap_or(0)
            .max(1);
        self.next.event_counts.insert(
            stream.clone(),
            index.checked_add(1).ok_or(ExecutionError::Overflow)?,
        );
        let blob = committee_blob(&committee);
        let payload =
            crate::encoding::to_bytes(&blob.id()).map_err(|_| ExecutionError::Overflow)?;
        self.events.push(Event {
            id: EventId {
                chain_id: self.state.chain_id,
                stream,
                index,
            },
            payload,
        });
        self.publish(blob);
        self.new_committee = Some((Epoch(index), committee));
        Ok(())
    }

    fn process_new_epoch(&mut self, epoch: Epoch) -> Result<(), NodeError> {
        if epoch <= self.next.epoch {
            return Err(ExecutionError::EpochNotNext {
                current: self.next.epoch,
                found: epoch,
            }
            .into());
        }
        // The announcement was checked present before any operation ran.
        let id = epoch_event_id(self.admin_chain, epoch);
        if !self.inputs.events.contains_key(&id) {
            return Err(NodeError::EventsNotFound(alloc::vec![id]));
        }
        self.next.epoch = epoch;
        Ok(())
    }

    fn close_chain(&mut self, beneficiary: Option<ChainId>) -> Result<(), NodeError> {
        let balance = self.next.balance;
        if balance > 0 {
            let recipient = beneficiary.ok_or(ExecutionError::NonZeroBalance { balance })?;
            if recipient == self.state.chain_id {
                return Err(ExecutionError::InvalidTransfer.into());
            }
            self.send(recipient, Message::Credit { amount: balance });
            self.next.balance = 0;
        }
        self.next.closed = true;
        Ok(())
    }

    /// The chain's state after the block, its outcome and what it produced.
    pub(super) fn finish(self) -> Result<Execution, NodeError> {
        let mut next = self.next;
        next.next_height = self
            .block
            .height
            .try_next()
            .ok_or(ExecutionError::Overflow)?;
        next.timestamp = self.block.timestamp;
        let state_hash = next.execution_state_hash();
        next.state_hash = Some(state_hash);
        let messages = self
            .outgoing
            .into_iter()
            .map(|(recipient, messages)| OutgoingBundle {
                recipient,
                messages,
            })
            .collect();
        let outcome = BlockOutcome {
            state_hash,
            messages,
            events: self
                .events
                .iter()
                .map(|e| EmittedEvent {
                    stream: e.id.stream.clone(),
                    index: e.id.index,
                    payload: e.payload.clone(),
                })
                .collect(),
            published_blobs: self.published_ids,
        };
        Ok(Execution {
            outcome,
            state: next,
            published_blobs: self.published_blobs,
            events: self.events,
            opened_chains: self.opened_chains,
            new_committee: self.new_committee,
        })
    }
}
