//! The throughput bench's network (DESIGN §9): a committee of four Workers over durable redb,
//! each served over loopback TCP, and one client driving many chains at once; and the floor:
//! the signature and hashing work blocks need, done directly, with their storage apart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use quorum_core::{ChainId, ValidatorNode};
use quorum_node::{Clock, Genesis, MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_testkit::{TestChain, TestCommittee};
use quorum_transport_tcp::{serve_validator, ClientConfig, Server, ServerConfig, TcpValidatorNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};
use redb::{Database, TableDefinition};
use sha2::{Digest, Sha256};

use crate::fixtures::committee;
use quorum_testkit::must;

/// Validators in the committee.
pub const VALIDATORS: usize = 4;

/// Chains driven at once, one run each.
pub const CHAIN_COUNTS: [usize; 5] = [1, 4, 16, 64, 256];

/// Signatures in a certificate: a quorum of four.
pub const QUORUM: usize = 3;
/// Bytes of one block's writes (certificate, chain state), about what the Worker commits.
pub const BLOCK_BYTES: usize = 2_048;

/// How the driven chains agree on their blocks (DESIGN §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounds {
    /// The chain's single owner is its super owner: one round of (confirmed) votes per block.
    Fast,
    /// No super owner: validated votes, then confirmed votes.
    TwoPhase,
}

impl Rounds {
    /// Its name in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Rounds::Fast => "fast_round",
            Rounds::TwoPhase => "two_phases",
        }
    }

    /// Rounds of votes per block.
    fn phases(self) -> usize {
        match self {
            Rounds::Fast => 1,
            Rounds::TwoPhase => 2,
        }
    }
}

/// The CPU work one block needs, counted from the protocol (DESIGN §4.3, §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockWork {
    /// Signatures: the owner's proposal, then one vote from each validator per phase.
    pub signatures: usize,
    /// Single verifications: the proposal at each validator, each vote at the client.
    pub single_verifications: usize,
    /// Batch verifications of a quorum's signatures: each phase's certificate at each
    /// validator.
    pub certificate_verifications: usize,
    /// Hashes of the block's value: at the client and at each validator, per phase.
    pub hashes: usize,
    /// Storage commits: each validator stores its vote, then the confirmed block.
    pub commits: usize,
}

impl BlockWork {
    /// One block's work with [`VALIDATORS`] validators.
    pub fn of(rounds: Rounds) -> Self {
        let phases = rounds.phases();
        BlockWork {
            signatures: 1 + phases * VALIDATORS,
            single_verifications: VALIDATORS + phases * VALIDATORS,
            certificate_verifications: phases * VALIDATORS,
            hashes: phases * (VALIDATORS + 1),
            commits: 2 * VALIDATORS,
        }
    }
}

/// A running committee and one client per driven chain.
pub struct Network {
    _dir: tempfile::TempDir,
    _servers: Vec<Server>,
    clients: Vec<(ChainClient<MemoryStorage>, ChainId)>,
}

impl Network {
    /// A committee of [`VALIDATORS`] over durable redb on loopback TCP, with `chains` chains
    /// to drive (and the admin chain) agreeing on blocks in `rounds`. Must run within a tokio
    /// runtime.
    pub async fn new(chains: usize, rounds: Rounds) -> Self {
        let committee: TestCommittee = committee(VALIDATORS);
        let all: Vec<TestChain> = (0..=chains)
            .map(|index| {
                let (index, seed) = (index as u32, 1_000 + index as u64);
                match rounds {
                    Rounds::Fast => TestChain::fast(index, seed),
                    Rounds::TwoPhase => TestChain::new(index, seed),
                }
            })
            .collect();
        let genesis = Genesis {
            committee: committee.committee.clone(),
            chains: all.iter().map(|chain| chain.description.clone()).collect(),
        };
        let dir = must(tempfile::tempdir(), "a temporary directory");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let validators = ValidatorSet::new();
        let mut servers = Vec::new();
        for (index, key) in committee.keys.iter().enumerate() {
            let storage = must(
                RedbStorage::open(dir.path().join(format!("validator-{index}.redb"))),
                "opening redb",
            );
            let admin = must(genesis.initialize(&storage, clock.now()).await, "genesis");
            let worker: Arc<dyn ValidatorNode> = Arc::new(Worker::new(
                storage,
                Some(key.clone()),
                clock.clone(),
                WorkerConfig::new(admin),
            ));
            let server = must(
                serve_validator(worker, "127.0.0.1:0", ServerConfig::default()).await,
                "serving a validator",
            );
            let remote = must(
                TcpValidatorNode::new(server.local_addr().to_string(), ClientConfig::default()),
                "a validator's client",
            );
            validators.insert(key.public(), Arc::new(remote));
            servers.push(server);
        }
        let storage = MemoryStorage::new();
        let admin = must(genesis.initialize(&storage, clock.now()).await, "genesis");
        let local = Arc::new(Worker::new(storage, None, clock, WorkerConfig::new(admin)));
        let ids: Vec<ChainId> = all.iter().map(TestChain::id).collect();
        let clients = (1..=chains)
            .map(|index| {
                let client = ChainClient::new(
                    ids[index],
                    Some(all[index].owner.clone()),
                    local.clone(),
                    validators.clone(),
                    Options::default(),
                );
                // Each chain pays the next one (the admin chain when it is alone).
                let recipient = if chains == 1 {
                    ids[0]
                } else {
                    ids[1 + index % chains]
                };
                (client, recipient)
            })
            .collect();
        Network {
            _dir: dir,
            _servers: servers,
            clients,
        }
    }

    /// Commits one block on every chain at once (a transfer); returns the time it took.
    pub async fn one_block_per_chain(&self) -> Duration {
        let started = Instant::now();
        let blocks = self.clients.iter().map(|(client, recipient)| async move {
            must(client.transfer(*recipient, 1).await, "a transfer");
        });
        futures::future::join_all(blocks).await;
        started.elapsed()
    }
}

/// Blocks whose work the floor does at once: their signature verifications go in one batch,
/// and their storage writes in one commit per validator (64 blocks).
pub const FLOOR_BLOCKS: usize = 64;

/// The least work blocks need, done directly with the libraries (no layer of ours), so that
/// no run of the committee can beat it (DESIGN §9): the signatures and hashes of
/// [`FLOOR_BLOCKS`] blocks as their [`BlockWork`] counts them, and every one of their
/// verifications in a single batch (cheaper per signature than any batch a validator makes
/// of the requests it holds at once). Storage is measured apart
/// ([`Floor::group_commit`]): a committee shares commits across blocks, so their cost per
/// block depends on how many share one, and it is not part of the floor's rate.
pub struct Floor {
    work: BlockWork,
    keys: Vec<SigningKey>,
    message: Vec<u8>,
    database: Database,
    _dir: tempfile::TempDir,
}

const FLOOR_TABLE: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("floor");

impl Floor {
    /// Keys, a block-sized message and a redb file, for blocks agreed in `rounds`.
    pub fn new(rounds: Rounds) -> Self {
        let keys = (0..=VALIDATORS as u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let dir = must(tempfile::tempdir(), "a temporary directory");
        let database = must(Database::create(dir.path().join("floor.redb")), "redb");
        Floor {
            work: BlockWork::of(rounds),
            keys,
            message: vec![7; BLOCK_BYTES],
            database,
            _dir: dir,
        }
    }

    /// The CPU work of [`FLOOR_BLOCKS`] blocks: each block's hashes and signatures, then all
    /// their verifications (single ones and certificates' alike) in one batch.
    pub fn cpu_work(&self) {
        let work = self.work;
        let per_block = work.single_verifications + work.certificate_verifications * QUORUM;
        let mut hashes = Vec::with_capacity(FLOOR_BLOCKS);
        let mut signed = Vec::with_capacity(FLOOR_BLOCKS * per_block);
        let mut verifying = Vec::with_capacity(FLOOR_BLOCKS * per_block);
        for block in 0..FLOOR_BLOCKS {
            let mut message = self.message.clone();
            message[..8].copy_from_slice(&(block as u64).to_le_bytes());
            let hash: [u8; 32] = Sha256::digest(&message).into();
            for _ in 1..work.hashes {
                std::hint::black_box(Sha256::digest(&message));
            }
            let signatures: Vec<_> = (0..work.signatures)
                .map(|i| self.keys[i % self.keys.len()].sign(&hash))
                .collect();
            for i in 0..per_block {
                let signer = i % work.signatures;
                signed.push(signatures[signer]);
                verifying.push(self.keys[signer % self.keys.len()].verifying_key());
            }
            hashes.push(hash);
        }
        let messages: Vec<&[u8]> = hashes
            .iter()
            .flat_map(|hash| std::iter::repeat_n(&hash[..], per_block))
            .collect();
        must(
            ed25519_dalek::verify_batch(&messages, &signed, &verifying),
            "the blocks' verifications in one batch",
        );
    }

    /// The storage of [`FLOOR_BLOCKS`] blocks at every validator, shared as well as a group
    /// commit can: one non-durable commit per validator holding all of their writes (each
    /// block's vote and confirmed block); `round` keys the writes.
    pub fn group_commit(&self, round: u64) {
        let writes = (self.work.commits / VALIDATORS.max(1)) * FLOOR_BLOCKS;
        for validator in 0..VALIDATORS as u64 {
            let mut transaction = must(self.database.begin_write(), "a write transaction");
            transaction.set_durability(redb::Durability::None);
            {
                let mut table = must(transaction.open_table(FLOOR_TABLE), "the table");
                for write in 0..writes as u64 {
                    let key = (round * VALIDATORS as u64 + validator) * writes as u64 + write;
                    must(table.insert(key, &self.message[..]), "an insert");
                }
            }
            must(transaction.commit(), "a commit");
        }
    }
}
