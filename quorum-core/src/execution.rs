//! The pure execution of blocks (DESIGN §4.4): what a block needs from outside its chain,
//! the checks, the operations, and everything it produces.

mod operations;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::block::{Block, BlockOutcome, IncomingBundle, Message, Operation};
use crate::committee::{Committee, Epoch};
use crate::error::{ExecutionError, Limit, NodeError};
use crate::limits::Limits;
use crate::ChainState;
use crate::{Blob, BlobId, ChainDescription, ChainId, Event, EventId, StreamId};
use operations::Run;

/// What a block needs from outside its chain's state, fetched by the node before executing.
#[derive(Clone, Debug, Default)]
pub struct ExecutionInputs {
    /// The admin chain (where epochs are announced).
    pub admin_chain: Option<ChainId>,
    /// Blobs available to the block (published, or uploaded for it), by id.
    pub blobs: BTreeMap<BlobId, Blob>,
    /// Events available to the block, by id.
    pub events: BTreeMap<EventId, Vec<u8>>,
    /// The protocol's bounds the block must respect (operations, incoming bundles, event
    /// payloads); [`Limits::DEFAULT`] by default.
    pub limits: Limits,
}

/// Everything executing a block produced, for the node to persist.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The outcome validators sign.
    pub outcome: BlockOutcome,
    /// The chain's state after the block (manager untouched: the node resets it on commit).
    pub state: ChainState,
    /// Blobs the block publishes, with their content.
    pub published_blobs: Vec<Blob>,
    /// Events it emitted.
    pub events: Vec<Event>,
    /// Chains it opened.
    pub opened_chains: Vec<ChainDescription>,
    /// A committee it created, with its epoch.
    pub new_committee: Option<(Epoch, Committee)>,
}

/// Checks the bounds of `block` that need no state (DESIGN §4.5.2): its encoded size
/// ([`Limits::max_block_bytes`]), its operations and its incoming bundles in count, the names
/// of the event streams it emits on or reads ([`Limits::max_stream_name_bytes`]). A node
/// calls it on a proposal before anything else of the block is looked at;
/// [`execute_block`] calls it too.
pub fn check_block_bounds(block: &Block, limits: &Limits) -> Result<(), ExecutionError> {
    if block.operations.len() > limits.max_operations_per_block {
        return Err(ExecutionError::TooLarge(Limit::Operations));
    }
    if block.incoming_bundles.len() > limits.max_incoming_bundles_per_block {
        return Err(ExecutionError::TooLarge(Limit::IncomingBundles));
    }
    let streams = block
        .operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::EmitEvent { stream, .. } => Some(stream),
            Operation::ReadEvent(id) => Some(&id.stream),
            _ => None,
        });
    for stream in streams {
        if stream.name.len() > limits.max_stream_name_bytes {
            return Err(ExecutionError::TooLarge(Limit::StreamName));
        }
    }
    // An encoding error can only be a length beyond what the format holds: too large.
    let bytes = crate::encoding::encoded_len(block).unwrap_or(usize::MAX);
    if bytes > limits.max_block_bytes {
        return Err(ExecutionError::TooLarge(Limit::BlockSize));
    }
    Ok(())
}

/// Executes `block` on `state`. Pure: everything from outside comes in `inputs`.
///
/// Checks, in order: the chain is active, the height and epoch are the chain's, the block
/// extends the tip, its timestamp does not go backwards, size limits, the blobs and events it
/// needs are in `inputs` (else `BlobsNotFound` / `EventsNotFound` with every missing id), the
/// bundles it consumes are the next ones in their inboxes (else `MissingCrossChainUpdate`),
/// then runs the operations.
pub fn execute_block(
    state: &ChainState,
    block: &Block,
    inputs: &ExecutionInputs,
) -> Result<Execution, NodeError> {
    let admin_chain = check_block(state, block, inputs)?;
    if state.closed && !block.operations.is_empty() {
        return Err(ExecutionError::ChainClosed.into());
    }
    let mut run = Run::new(state, block, inputs, admin_chain);
    run.consume_bundles()?;
    for (index, operation) in block.operations.iter().enumerate() {
        run.apply(index, operation)?;
    }
    run.finish()
}

/// The checks of [`execute_block`] before anything runs: the block's place on the chain, its
/// author, its bounds, and every blob and event it needs at hand. Returns the admin chain.
fn check_block(
    state: &ChainState,
    block: &Block,
    inputs: &ExecutionInputs,
) -> Result<ChainId, NodeError> {
    let description = state.description()?;
    state.expect_next_height(block.height)?;
    if block.epoch != state.epoch {
        return Err(NodeError::WrongEpoch {
            expected: state.epoch,
            found: block.epoch,
        });
    }
    if block.previous_block_hash != state.tip_hash {
        return Err(NodeError::InvalidChaining);
    }
    if block.timestamp < state.timestamp {
        return Err(NodeError::TimestampGoesBackwards);
    }
    // A super owner may author blocks whether or not it is also a regular owner.
    let author = block.authenticated_owner;
    if !description.owners.contains_key(&author) && description.super_owner != Some(author) {
        return Err(NodeError::UnauthorizedOwner);
    }
    check_block_bounds(block, &inputs.limits)?;

    // Everything the block needs from outside, reported all at once.
    let missing_blobs: Vec<BlobId> = block
        .required_blob_ids()
        .into_iter()
        .filter(|id| !inputs.blobs.contains_key(id))
        .collect();
    if !missing_blobs.is_empty() {
        return Err(NodeError::BlobsNotFound(missing_blobs));
    }
    let admin_chain = inputs.admin_chain.unwrap_or(state.chain_id);
    let missing_events: Vec<EventId> = block
        .required_event_ids(admin_chain)
        .into_iter()
        .filter(|id| !inputs.events.contains_key(id))
        .collect();
    if !missing_events.is_empty() {
        return Err(NodeError::EventsNotFound(missing_events));
    }
    Ok(admin_chain)
}

fn emit(state: &mut ChainState, stream: &StreamId) -> Result<u32, ExecutionError> {
    let count = state.event_counts.entry(stream.clone()).or_insert(0);
    let index = *count;
    *count = count.checked_add(1).ok_or(ExecutionError::Overflow)?;
    Ok(index)
}

/// Consumes each bundle from its inbox: it must be the lowest unconsumed bundle of its origin,
/// with exactly the messages sent. On a closed chain every credit is to be returned: the
/// returns, by origin and amount, are what this gives back (nothing on an open chain).
fn consume_bundles(
    state: &mut ChainState,
    bundles: &[IncomingBundle],
) -> Result<Vec<(ChainId, u64)>, NodeError> {
    let mut returns = Vec::new();
    for bundle in bundles {
        let invalid = || ExecutionError::InvalidIncomingBundle {
            origin: bundle.origin,
            height: bundle.height,
        };
        let missing = NodeError::MissingCrossChainUpdate {
            chain_id: state.chain_id,
            origin: bundle.origin,
            height: bundle.height,
        };
        let Some(inbox) = state.inboxes.get_mut(&bundle.origin) else {
            return Err(missing);
        };
        if bundle.height < inbox.next_height_to_consume {
            return Err(invalid().into());
        }
        match inbox.bundles.first_key_value() {
            None => return Err(missing),
            Some((&lowest, _)) if lowest > bundle.height => return Err(missing),
            Some((&lowest, _)) if lowest < bundle.height => return Err(invalid().into()),
            Some(_) => {}
        }
        let Some((_, messages)) = inbox.bundles.pop_first() else {
            return Err(missing);
        };
        if messages != bundle.messages {
            return Err(invalid().into());
        }
        inbox.next_height_to_consume = bundle.height.try_next().ok_or(ExecutionError::Overflow)?;
        for message in messages {
            match message {
                Message::Credit { amount } if state.closed => {
                    returns.push((bundle.origin, amount));
                }
                Message::Credit { amount } | Message::Return { amount } => {
                    state.balance = state
                        .balance
                        .checked_add(amount)
                        .ok_or(ExecutionError::Overflow)?;
                }
            }
        }
    }
    Ok(returns)
}
