//! What the checker reads: each honest validator's account of every chain
//! ([`ValidatorView`]), the journal, how soon each chain committed after healing, and how the
//! processes ended ([`Evidence`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use quorum_core::{BlockHeight, ChainId, ConfirmedBlockCertificate, CryptoHash, Message};

use crate::journal::Acknowledgement;

/// One certified block, as far as the ledger is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// Its height.
    pub height: BlockHeight,
    /// The certified value's hash.
    pub hash: CryptoHash,
    /// Whether its certificate carries a quorum of valid signatures of the committee.
    pub certified: bool,
    /// What it sent: recipient and amount, one entry per recipient.
    pub sent: Vec<(ChainId, u64)>,
    /// What it consumed: the sending chain, the sending block's height, and the amount.
    pub consumed: Vec<(ChainId, BlockHeight, u64)>,
}

impl BlockRecord {
    /// The record of `certificate`, whose signatures checked out as `certified` says.
    pub fn of(certificate: &ConfirmedBlockCertificate, certified: bool) -> BlockRecord {
        let value = &certificate.value().inner().0;
        let amount = |messages: &[Message]| -> u64 {
            messages
                .iter()
                .map(|message| match message {
                    Message::Credit { amount } | Message::Return { amount } => *amount,
                })
                .fold(0u64, u64::saturating_add)
        };
        BlockRecord {
            height: value.block.height,
            hash: certificate.hash(),
            certified,
            sent: value
                .outcome
                .messages
                .iter()
                .map(|bundle| (bundle.recipient, amount(&bundle.messages)))
                .collect(),
            consumed: value
                .block
                .incoming_bundles
                .iter()
                .map(|bundle| (bundle.origin, bundle.height, amount(&bundle.messages)))
                .collect(),
        }
    }
}

/// One chain as one validator has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainView {
    /// The balance the validator reports.
    pub balance: u64,
    /// The next height it expects.
    pub next_height: BlockHeight,
    /// Its latest block's hash.
    pub tip: Option<CryptoHash>,
    /// The certified blocks it gave, by height (every height below `next_height`, unless it
    /// failed to give some).
    pub blocks: BTreeMap<BlockHeight, BlockRecord>,
}

/// What one honest validator says about every chain of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorView {
    /// Its name in reports (`validator-2`).
    pub name: String,
    /// Each chain, as it has it.
    pub chains: BTreeMap<ChainId, ChainView>,
    /// Why it could not be asked everything, if so (an unreachable validator is a violation:
    /// after healing, every honest validator must answer).
    pub unreachable: Option<String>,
}

/// How soon a chain committed a new block once every fault was healed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainProgress {
    /// The chain.
    pub chain: ChainId,
    /// How long its first block after healing took; `None` if it did not commit within the
    /// bound (then `error` says what failed).
    pub took: Option<Duration>,
    /// Why it did not commit, if it did not.
    pub error: Option<String>,
}

/// How the run's processes ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessOutcome {
    /// Processes that panicked, with the line that says so.
    pub panicked: Vec<(String, String)>,
    /// Processes that were still running when told to stop, and had to be killed.
    pub left_running: Vec<String>,
}

/// Everything the checker reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Each chain's balance at genesis (every chain of the run is a genesis chain).
    pub genesis: BTreeMap<ChainId, u64>,
    /// Every honest validator's account.
    pub validators: Vec<ValidatorView>,
    /// Every operation a client saw acknowledged.
    pub journal: Vec<Acknowledgement>,
    /// Each chain's first commit after healing.
    pub progress: Vec<ChainProgress>,
    /// How long a chain may take to commit after healing (invariant 5).
    pub progress_bound: Duration,
    /// How the processes ended.
    pub processes: ProcessOutcome,
}
