//! An example downstream crate (issue 26): what a team building its own chain writes to use
//! Quorum's client with a transport of its own, here Unix-domain sockets. It depends on
//! `quorum-core`, `quorum-node` (the `Worker` is both the validators here and the client's
//! local node) and `quorum-updater` only: no transport, store or test kit of ours.
//!
//! It starts four validators in this process, each serving the protocol on a Unix socket
//! with [`dispatch`], reaches each through [`UnixCarrier`] (a [`Carrier`] is a
//! `ValidatorNode`), and commits a transfer between two chains with a `ChainClient`. It exits
//! with an error if anything fails. Run it with `cargo run -p quorum-example-unix-socket`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use quorum_core::protocol::{dispatch, Carrier, Request, Response};
use quorum_core::{
    AccountSecretKey, ChainDescription, ChainId, ChainOrigin, Committee, ConsensusConfig, Epoch,
    Limits, NodeError, Timestamp, TransportErrorKind, ValidatorInfo, ValidatorNode,
    ValidatorSecretKey,
};
use quorum_node::{Clock, Genesis, MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_updater::{ChainClient, Options, ValidatorSet};

/// Validators in the example's committee.
const VALIDATORS: usize = 4;
/// Tokens each genesis chain starts with.
const BALANCE: u64 = 1_000;
/// Tokens the example transfers.
const AMOUNT: u64 = 10;

/// Writes one frame: its length (4 bytes, big-endian), then its bytes.
async fn write_frame(stream: &mut UnixStream, bytes: &[u8]) -> std::io::Result<()> {
    let length = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(bytes).await
}

/// Reads one frame of at most the protocol's frame length.
async fn read_frame(stream: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > Limits::DEFAULT.max_frame_length() {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut bytes = vec![0u8; length];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Serves `node` on `path`: each connection carries requests one after the other, each
/// answered through the protocol's one `dispatch`.
async fn serve(node: Arc<dyn ValidatorNode>, path: PathBuf) -> std::io::Result<()> {
    let listener = UnixListener::bind(path)?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let node = node.clone();
            tokio::spawn(async move {
                while let Ok(bytes) = read_frame(&mut stream).await {
                    let Ok(request) = bcs::from_bytes::<Request>(&bytes) else {
                        return;
                    };
                    let response = dispatch(node.as_ref(), request).await;
                    let Ok(bytes) = bcs::to_bytes(&response) else {
                        return;
                    };
                    if write_frame(&mut stream, &bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

/// The client half: one connection per validator, one request at a time on it, opened again
/// after a failure.
struct UnixCarrier {
    path: PathBuf,
    connection: Mutex<Option<UnixStream>>,
}

#[async_trait]
impl Carrier for UnixCarrier {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        let io = |_| NodeError::Transport(TransportErrorKind::Io);
        let bytes =
            bcs::to_bytes(&request).map_err(|_| NodeError::Transport(TransportErrorKind::Codec))?;
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            *connection = Some(UnixStream::connect(&self.path).await.map_err(io)?);
        }
        let Some(stream) = connection.as_mut() else {
            return Err(NodeError::Transport(TransportErrorKind::Unavailable));
        };
        let answer = async {
            write_frame(stream, &bytes).await?;
            read_frame(stream).await
        }
        .await;
        match answer {
            Ok(bytes) => {
                bcs::from_bytes(&bytes).map_err(|_| NodeError::Transport(TransportErrorKind::Codec))
            }
            Err(error) => {
                *connection = None;
                Err(io(error))
            }
        }
    }
}

/// A genesis chain owned by `owner`, with a fast round.
fn chain(index: u32, owner: &AccountSecretKey) -> ChainDescription {
    ChainDescription {
        origin: ChainOrigin::Genesis(index),
        owners: [(owner.public(), 1)].into_iter().collect(),
        super_owner: Some(owner.public()),
        epoch: Epoch(0),
        timestamp: Timestamp(0),
        consensus: ConsensusConfig::default(),
        balance: BALANCE,
    }
}

/// A Worker on `genesis` in memory, a validator when it has a `key`, a client's local node when
/// not.
async fn worker(
    genesis: &Genesis,
    key: Option<ValidatorSecretKey>,
) -> Result<Arc<Worker<MemoryStorage>>, Box<dyn std::error::Error>> {
    let storage = MemoryStorage::new();
    let admin = genesis.initialize(&storage, SystemClock.now()).await?;
    let config = WorkerConfig::new(admin);
    Ok(Arc::new(Worker::new(
        storage,
        key,
        Arc::new(SystemClock),
        config,
    )))
}

async fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(26);
    let keys: Vec<ValidatorSecretKey> = (0..VALIDATORS)
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect();
    let sockets: Vec<PathBuf> = (0..VALIDATORS)
        .map(|index| dir.join(format!("validator-{index}.sock")))
        .collect();
    let members = keys.iter().zip(&sockets).map(|(key, path)| {
        let info = ValidatorInfo {
            votes: 1,
            address: format!("unix:{}", path.display()),
            network_key: None,
        };
        (key.public(), info)
    });
    let committee = Committee::new(members.collect())?;
    let owners = [
        AccountSecretKey::generate(&mut rng),
        AccountSecretKey::generate(&mut rng),
    ];
    let genesis = Genesis {
        committee,
        chains: vec![chain(0, &owners[0]), chain(1, &owners[1])],
    };
    let chains: Vec<ChainId> = genesis.chains.iter().map(ChainDescription::id).collect();

    let validators = ValidatorSet::new();
    for (key, path) in keys.iter().zip(&sockets) {
        let node = worker(&genesis, Some(key.clone())).await?;
        serve(node, path.clone()).await?;
        let carrier = UnixCarrier {
            path: path.clone(),
            connection: Mutex::new(None),
        };
        validators.insert(key.public(), Arc::new(carrier));
    }

    let local = worker(&genesis, None).await?;
    let client = ChainClient::new(
        chains[0],
        Some(owners[0].clone()),
        local,
        validators,
        Options::default(),
    );
    let certificate = client.transfer(chains[1], AMOUNT).await?;
    let height = certificate.value().block().height;
    let balance = client.local_balance().await?;
    println!(
        "committed a transfer of {AMOUNT} at height {} over Unix sockets; balance {balance}",
        height.0
    );
    if balance != BALANCE - AMOUNT {
        return Err(format!("balance {balance}, expected {}", BALANCE - AMOUNT).into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("quorum-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let outcome = run(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}
