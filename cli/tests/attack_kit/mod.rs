//! What the attack tests (`attacks.rs`) share: a committee of `quorum validator` processes with
//! a guard, the validator's memory and CPU read from `/proc`, honest traffic timed, raw frames
//! written and read by hand, and attackers that run on their own thread and close every socket
//! when stopped or dropped.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdTcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use quorum_core::protocol::{Request, Response};
use quorum_core::{
    AccountSecretKey, Blob, ChainId, ChainInfoQuery, ChainInfoResponse, Limits, NetworkPublicKey,
};
use quorum_node::Genesis;
use quorum_transport_tcp::{Envelope, FrameCodec, LENGTH_PREFIX_LEN};

use crate::common::{free_ports, quorum, run_within, start_validator, Validators};

mod attackers;
mod pipelined;
mod process;

pub use attackers::*;
pub use pipelined::*;
pub use process::*;

/// Validators in the committee.
pub const VALIDATORS: usize = 4;
/// Genesis chains: the admin chain (0) and two chains the honest client transfers between.
pub const CHAINS: usize = 3;
/// Seed of `dev-genesis`, so that every run has the same committee and owners.
pub const GENESIS_SEED: u64 = 7;
/// One mebibyte, in bytes.
pub const MIB: u64 = 1024 * 1024;
/// `quorum client --request-timeout-ms` of the honest commands (the client's default, given
/// explicitly): the longest a command waits on one validator's answer.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_millis(400);
/// `quorum client --update-budget-ms` of the honest commands (the client's default, given
/// explicitly): the longest a command spends after its result bringing validators up to date.
pub const CLIENT_UPDATE_BUDGET: Duration = Duration::from_millis(1_000);
/// Longest an honest `quorum client` command may take before it counts as failed.
pub const HONEST_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the honest probe of validator 0 (connect, one chain info query, its answer) may
/// take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest an attacker waits for one of its connections to be established.
pub const ATTACK_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the validator's resident memory is sampled.
pub const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// A committee of [`VALIDATORS`] `quorum validator` processes on loopback from `dev-genesis`;
/// the processes are killed when it is dropped (also when a test fails), then the directory is
/// removed.
pub struct Committee {
    /// The validator processes, in committee order (killed on drop, before `dir` goes).
    pub validators: Validators,
    /// The committee directory (genesis, wallet, validator configurations and databases).
    pub dir: tempfile::TempDir,
    /// The genesis every validator loaded.
    pub genesis: Genesis,
    /// The wallet's chains and their owner keys, in genesis order (chain 0 is the admin chain).
    pub owners: Vec<(ChainId, AccountSecretKey)>,
    /// Validator 0's address, the target of every attack.
    pub target: SocketAddr,
    /// Over QUIC: validator 0's QUIC address and network key (its TCP one is `target`).
    pub quic_target: Option<(SocketAddr, NetworkPublicKey)>,
}

/// The wallet file's layout (`cli/src/wallet.rs`): a format tag, each chain with its owner's
/// key if the wallet holds it, and spare owner keys.
#[derive(Deserialize)]
struct Wallet {
    _magic: [u8; 4],
    chains: Vec<(ChainId, Option<AccountSecretKey>)>,
    _keys: Vec<AccountSecretKey>,
}

impl Committee {
    /// Writes a `dev-genesis` committee in a temporary directory and starts its validators.
    pub fn start() -> Committee {
        Committee::start_over("tcp")
    }

    /// A committee whose every validator is reached over QUIC (honest commands run over it);
    /// validator 0 also listens over TCP, on a port of its own, where the suite's raw-frame
    /// probes reach it.
    pub fn start_quic() -> Committee {
        Committee::start_over("quic")
    }

    fn start_over(transport: &str) -> Committee {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let base = free_ports(VALIDATORS as u16);
        quorum(
            path,
            &[
                "dev-genesis",
                "--dir",
                path.to_str().unwrap(),
                "--validators",
                &VALIDATORS.to_string(),
                "--chains",
                &CHAINS.to_string(),
                "--base-port",
                &base.to_string(),
                "--insecure-seed",
                &GENESIS_SEED.to_string(),
                "--transport",
                transport,
            ],
        );
        let genesis: Genesis =
            bcs::from_bytes(&std::fs::read(path.join("genesis.bcs")).unwrap()).unwrap();
        let first = genesis
            .committee
            .validators()
            .next()
            .map(|(_, info)| info.clone());
        let first = first.unwrap();
        let (target, quic_target) = match first.address.strip_prefix("quic://") {
            None => (first.address.parse().unwrap(), None),
            Some(quic) => {
                // Validator 0 listens over TCP too, for the probes.
                let tcp = SocketAddr::from(([127, 0, 0, 1], free_ports(1)));
                let config = path.join("validator-0.toml");
                let text = std::fs::read_to_string(&config).unwrap();
                let listen = format!("listen = \"{}\"", first.address);
                assert!(text.contains(&listen), "{text}");
                let both = format!("listen = \"{tcp}\"\nlisten_quic = \"{}\"", first.address);
                std::fs::write(&config, text.replace(&listen, &both)).unwrap();
                let key = first.network_key.unwrap();
                (tcp, Some((quic.parse().unwrap(), key)))
            }
        };
        let wallet: Wallet =
            bcs::from_bytes(&std::fs::read(path.join("wallet.bcs")).unwrap()).unwrap();
        // Validator files are numbered in committee order.
        let mut validators = Validators::default();
        for index in 0..VALIDATORS {
            let config = path.join(format!("validator-{index}.toml"));
            validators.0.push(start_validator(&config));
        }
        Committee {
            validators,
            dir,
            genesis,
            owners: wallet
                .chains
                .into_iter()
                .filter_map(|(chain, owner)| Some((chain, owner?)))
                .collect(),
            target,
            quic_target,
        }
    }

    /// The committee directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Validator 0's process id.
    pub fn target_pid(&self) -> u32 {
        self.validators.0[0].id()
    }

    /// Whether validator 0's process is still running.
    pub fn target_alive(&mut self) -> bool {
        matches!(self.validators.0[0].try_wait(), Ok(None))
    }

    /// Genesis chain `index`.
    pub fn chain(&self, index: usize) -> ChainId {
        self.owners[index].0
    }
}

// ---------------------------------------------------------------------------------------------
// Honest traffic.

/// Runs `quorum ARGS` in `dir` with at most `timeout`; how long it took and its standard
/// output, or why it failed (never panics, so that a failure during an attack is recorded).
pub fn run_honest(
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<(Duration, String), String> {
    let (output, elapsed) = run_within(dir, args, timeout)?;
    if output.status.success() {
        Ok((elapsed, output.stdout))
    } else {
        Err(format!(
            "quorum {args:?} failed ({}) after {elapsed:?}: {}",
            output.status,
            output.stderr.trim()
        ))
    }
}

/// The validators' largest frame body, in bytes: the one their (default) protocol limits
/// derive.
pub const MAX_FRAME_LENGTH: usize = Limits::DEFAULT.max_frame_length();

/// Encodes `request` as one frame (length prefix included).
pub fn encode_request(request_id: u64, request: Request) -> Vec<u8> {
    FrameCodec::<Response>::new(MAX_FRAME_LENGTH)
        .encode_frame(&Envelope {
            request_id,
            body: request,
        })
        .unwrap()
        .to_vec()
}

/// Reads one response frame from a blocking stream.
fn read_response(stream: &mut StdTcpStream) -> Result<Envelope<Response>, String> {
    let mut prefix = [0u8; LENGTH_PREFIX_LEN];
    stream
        .read_exact(&mut prefix)
        .map_err(|error| format!("reading a response's length: {error}"))?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length > MAX_FRAME_LENGTH {
        return Err(format!("response frame of {length} bytes"));
    }
    let mut body = vec![0u8; length];
    stream
        .read_exact(&mut body)
        .map_err(|error| format!("reading a response: {error}"))?;
    FrameCodec::<Response>::decode_body(&body).map_err(|error| error.to_string())
}

/// Sends `request` to `target` on a fresh connection from 127.0.0.1, as an honest peer of that
/// validator would, and reads the answer.
pub fn ask(target: SocketAddr, request: Request, timeout: Duration) -> Result<Response, String> {
    let kind = request.kind();
    let mut stream = StdTcpStream::connect_timeout(&target, timeout)
        .map_err(|error| format!("connecting to {target}: {error}"))?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    stream
        .write_all(&encode_request(1, request))
        .map_err(|error| format!("sending a {kind} request: {error}"))?;
    read_response(&mut stream)
        .map(|answer| answer.body)
        .map_err(|error| format!("{kind}: {error}"))
}

/// One chain info query to `target` (see [`ask`]); the answer and how long connecting, asking
/// and reading took.
pub fn query_chain(
    target: SocketAddr,
    chain: ChainId,
    timeout: Duration,
) -> Result<(Duration, ChainInfoResponse), String> {
    let started = Instant::now();
    let query = Request::ChainInfoQuery(Box::new(ChainInfoQuery::new(chain)));
    match ask(target, query, timeout)? {
        Response::ChainInfoQuery(Ok(response)) if response.info.chain_id == chain => {
            Ok((started.elapsed(), response))
        }
        other => Err(format!(
            "unexpected answer to a chain info query: {other:?}"
        )),
    }
}

/// Size of the blob of the honest large request, in bytes: twice the server's default
/// "large frame" threshold (`DEFAULT_LARGE_FRAME_LENGTH`, 64 KiB), so that it needs the
/// server-wide receive budget as an honest blob upload or certificate batch would.
pub const HONEST_BLOB_BYTES: usize = 128 * 1024;

/// An honest pending blob of [`HONEST_BLOB_BYTES`] for `chain`, the same every time (so it is
/// held once, and refreshed), sent to `target` (see [`ask`]). Any answer to it counts: a
/// refusal is an answer too.
pub fn send_honest_blob(
    target: SocketAddr,
    chain: ChainId,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let request = Request::PendingBlob {
        chain_id: chain,
        blob: Blob::data(vec![7; HONEST_BLOB_BYTES]),
    };
    match ask(target, request, timeout)? {
        Response::PendingBlob(_) => Ok(started.elapsed()),
        other => Err(format!("unexpected answer to a pending blob: {other:?}")),
    }
}

/// The steps of a round of honest traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `quorum client transfer`.
    Transfer,
    /// `quorum client info`.
    Info,
    /// The chain info query to validator 0 alone.
    Probe,
    /// The large request to validator 0 alone.
    Large,
}

/// Why a round of honest traffic failed: the step and the reason.
pub type Failure = (Step, String);

/// The times of one round of honest traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HonestTimes {
    /// `quorum client transfer` (chain 1 to chain 2): a block certified by the committee.
    pub transfer: Duration,
    /// `quorum client info`: every validator asked about every chain.
    pub info: Duration,
    /// A chain info query to validator 0 alone, on a fresh connection (see [`query_chain`]).
    pub probe: Duration,
    /// A large frame to validator 0 alone: a pending blob (see [`send_honest_blob`]).
    pub large: Duration,
}

impl HonestTimes {
    /// The larger of each field.
    pub fn max(self, other: HonestTimes) -> HonestTimes {
        HonestTimes {
            transfer: self.transfer.max(other.transfer),
            info: self.info.max(other.info),
            probe: self.probe.max(other.probe),
            large: self.large.max(other.large),
        }
    }
}

/// One round of honest traffic: a transfer, `info`, a probe of validator 0 and a large request
/// to it. When a step
/// fails, the times so far (the failed step's until it failed) come with the reason.
pub fn honest_round(committee: &Committee) -> Result<HonestTimes, (HonestTimes, Failure)> {
    let dir = committee.path();
    let d = dir.to_str().unwrap();
    let mut times = HonestTimes::default();
    let timeout = CLIENT_REQUEST_TIMEOUT.as_millis().to_string();
    let budget = CLIENT_UPDATE_BUDGET.as_millis().to_string();
    let client = [
        "client",
        "--dir",
        d,
        "--request-timeout-ms",
        &timeout,
        "--update-budget-ms",
        &budget,
    ];
    let started = Instant::now();
    let transfer = run_honest(
        dir,
        &[
            &client[..],
            &["transfer", "--from", "1", "--to", "2", "--amount", "1"],
        ]
        .concat(),
        HONEST_COMMAND_TIMEOUT,
    );
    times.transfer = started.elapsed();
    match transfer {
        Ok((_, said)) if said.contains("transferred 1 from chain 1 to chain 2") => {}
        Ok((_, said)) => return Err((times, (Step::Transfer, format!("transfer said: {said}")))),
        Err(error) => return Err((times, (Step::Transfer, error))),
    }
    let started = Instant::now();
    let info = run_honest(
        dir,
        &[&client[..], &["info"]].concat(),
        HONEST_COMMAND_TIMEOUT,
    );
    times.info = started.elapsed();
    if let Err(error) = info {
        return Err((times, (Step::Info, error)));
    }
    let started = Instant::now();
    let probe = query_chain(committee.target, committee.chain(1), PROBE_TIMEOUT);
    times.probe = started.elapsed();
    if let Err(error) = probe {
        return Err((
            times,
            (Step::Probe, format!("probe of validator 0: {error}")),
        ));
    }
    let started = Instant::now();
    let large = send_honest_blob(committee.target, committee.chain(1), PROBE_TIMEOUT);
    times.large = started.elapsed();
    match large {
        Ok(_) => Ok(times),
        Err(error) => Err((
            times,
            (
                Step::Large,
                format!("large request to validator 0: {error}"),
            ),
        )),
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The median of `rounds` rounds of honest traffic with nobody attacking (all must succeed).
pub fn honest_baseline(committee: &Committee, rounds: usize) -> HonestTimes {
    let samples: Vec<HonestTimes> = (0..rounds)
        .map(|_| match honest_round(committee) {
            Ok(times) => times,
            Err((_, (_, error))) => panic!("honest traffic fails without an attack: {error}"),
        })
        .collect();
    HonestTimes {
        transfer: median(samples.iter().map(|s| s.transfer).collect()),
        info: median(samples.iter().map(|s| s.info).collect()),
        probe: median(samples.iter().map(|s| s.probe).collect()),
        large: median(samples.iter().map(|s| s.large).collect()),
    }
}

/// Honest traffic during an attack: the worst time of each kind and what failed.
#[derive(Clone, Debug, Default)]
pub struct HonestDuring {
    /// Rounds run.
    pub rounds: usize,
    /// The slowest of each kind (a step that failed counts with the time it took to fail).
    pub worst: HonestTimes,
    /// Every round's times (a step that failed, or did not run, counts with the time it took).
    pub samples: Vec<HonestTimes>,
    /// Why rounds failed.
    pub failures: Vec<Failure>,
}

impl HonestDuring {
    /// Adds one round.
    pub fn record(&mut self, round: Result<HonestTimes, (HonestTimes, Failure)>) {
        self.rounds += 1;
        let times = match round {
            Ok(times) => times,
            Err((times, error)) => {
                self.failures.push(error);
                times
            }
        };
        self.worst = self.worst.max(times);
        self.samples.push(times);
    }

    /// The median of each kind over the rounds (zero without rounds).
    pub fn median(&self) -> HonestTimes {
        if self.samples.is_empty() {
            return HonestTimes::default();
        }
        let of =
            |pick: fn(&HonestTimes) -> Duration| median(self.samples.iter().map(pick).collect());
        HonestTimes {
            transfer: of(|s| s.transfer),
            info: of(|s| s.info),
            probe: of(|s| s.probe),
            large: of(|s| s.large),
        }
    }
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}
