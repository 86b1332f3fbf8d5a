//! Hostile peers against a running `quorum validator` (DESIGN §6.1, §4.5.2).
//!
//! A committee of four `quorum validator` processes on loopback (`dev-genesis`). Honest
//! traffic is timed with nobody attacking (the median of [`BASELINE_ROUNDS`] rounds), then
//! again, round after round, while one attack at a time hits validator 0. A round is
//! `quorum client transfer`, `quorum client info`, and two requests to validator 0 alone on
//! fresh connections: a chain info query (the probe) and a 128 KiB pending blob (a "large"
//! frame, which needs the server-wide receive budget as honest uploads and certificate batches
//! do). Each attack is bounded in count and time and cleaned up: its sockets are closed when it
//! is stopped or dropped, and the validators are killed by a guard even when a test fails.
//!
//! For each attack the test asserts that validator 0 stays alive and answers afterwards; that
//! its resident memory stays under its level before the attack plus [`RSS_HEADROOM_BYTES`];
//! and that honest traffic succeeds within [`HONEST_SLOWDOWN_BOUND`] times its baseline (a
//! real-time test only asserts with a 10× margin), with a floor for each kind (the client's
//! own allowance for one slow validator, [`CLIENT_SLOW_VALIDATOR_ALLOWANCE`]; and
//! [`PROBE_BOUND_FLOOR`] for the requests to validator 0 alone). It prints a table row: attack
//! | validator peak RSS | honest time vs baseline (the median and the worst of each kind, with
//! their ratios; the issue's target is [`ISSUE_TARGET_SLOWDOWN`]×, printed, not asserted) |
//! validator alive | notes.
//!
//! The attacker sends from loopback addresses other than the honest traffic's `127.0.0.1`
//! (`127.0.0.2` and up), as a peer on another machine would; attacks that open more
//! connections than the per-IP cap (64) spread them over four addresses, so that the memory
//! and time bounds are what is measured rather than the cap.
//!
//! Tests run one at a time (a lock), each with its own committee. The normal run (CI, `cargo
//! test --workspace`, about a minute in a debug build on 2 cores) has a lighter version of
//! each attack; the heavy versions and the known weaknesses are ignored (their figures, in
//! `BENCHMARKS.md`, are from a release build):
//!
//! ```sh
//! cargo test -p quorum-cli --test attacks -- --nocapture                        # normal run
//! cargo test --release -p quorum-cli --test attacks -- --ignored --nocapture    # the rest
//! QUORUM_ATTACKS_VERBOSE=1 cargo test -p quorum-cli --test attacks -- --nocapture  # every round
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attack_kit;
mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use quorum_core::protocol::{Request, Response};
use quorum_core::{
    Blob, Block, BlockHeight, BlockProposal, EncodedCommittee, Epoch, ExecutionError, Limit,
    Limits, NodeError, Operation, Timestamp,
};
use quorum_transport_tcp::{FrameCodec, ServerConfig, LENGTH_PREFIX_LEN};

use attack_kit::{
    attacker_addresses, closed_by_server, connect_from, connect_many, cpu_time, encode_request,
    honest_baseline, honest_round, join_all, many_attacker_addresses, mib, open_file_limit,
    pipelined_attacker, query_chain, rss_bytes, socket_count, stopped, write_within, Attacker,
    Committee, HonestDuring, HonestTimes, ProcessSampler, Step, Stop, CLIENT_REQUEST_TIMEOUT,
    CLIENT_UPDATE_BUDGET, MAX_FRAME_LENGTH, MIB, PROBE_TIMEOUT,
};
use common::ms;

/// Memory an attack may add to validator 0's resident memory over its level just before the
/// attack, in bytes: 256 MiB, the issue's bound. What the suite's attacks can make the server
/// hold is far less: the attackers use at most four addresses for large frames, and an address
/// holds at most its receive share (`receive_share_per_ip`, 32 MiB) of large frames and its
/// peer budget (`peer_budget`, 64 MiB) in all, plus read-ahead buffers, tasks and allocator
/// fragmentation; measured peaks are +5 to +178 MiB (BENCHMARKS.md). An attacker with eight
/// addresses or more can fill the whole receive budget
/// (`ServerConfig::receive_budget`, 256 MiB by default),
/// which this bound does not cover.
const RSS_HEADROOM_BYTES: u64 = 256 * MIB;
/// Honest commands must finish within this many times their baseline during an attack, or
/// within this many times (their baseline + [`CLIENT_SLOW_VALIDATOR_ALLOWANCE`]) if that is
/// longer: the expected figure for a command that meets a slowed validator.
const HONEST_SLOWDOWN_BOUND: u32 = 10;
/// What the client itself lets one slow validator cost a command: its per-validator request
/// timeout and its final update budget (both given explicitly to the honest commands). A
/// command that waits this long on a validator the attack slowed is the client working as
/// designed; with baselines of 40–150 ms it is longer than 10× the baseline.
const CLIENT_SLOW_VALIDATOR_ALLOWANCE: Duration = Duration::from_millis(
    CLIENT_REQUEST_TIMEOUT.as_millis() as u64 + CLIENT_UPDATE_BUDGET.as_millis() as u64,
);
/// The issue's target for the same ratio (printed beside the measurement, not asserted).
const ISSUE_TARGET_SLOWDOWN: u32 = 2;
/// The requests to validator 0 alone (the chain info probe, the large request) take a
/// millisecond or two without an attack, below the scheduling noise of a 2-core machine where
/// attacker, victim and the rest of the committee share the cores: their bound is
/// [`HONEST_SLOWDOWN_BOUND`] times their baseline, but never less than this, an honest peer's
/// idea of "answered at once" (more in a debug build, where the workspace's own code is not
/// optimised and every byte an attacker sends costs the validator several times the CPU). In
/// release it is 1.5 s: a probe opens a fresh connection, and while a thousand attacker
/// connections fill the server's places its first SYN may be dropped, which the kernel
/// retries after exactly 1 s (probes of 1,008–1,030 ms were seen, the server having answered
/// in a millisecond once connected).
const PROBE_BOUND_FLOOR: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(2_500)
} else {
    Duration::from_millis(1_500)
};
/// Rounds of honest traffic whose median is the baseline.
const BASELINE_ROUNDS: usize = 5;
/// Once an attack stopped, validator 0 is asked with this timeout, again and again, until it
/// answers (its recovery time) or [`RECOVERY_LIMIT`] has passed.
const RECOVERY_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two recovery probes that failed.
const RECOVERY_RETRY: Duration = Duration::from_millis(50);
/// A recovery shorter than this counts as answering at once.
const RECOVERY_NOTICEABLE: Duration = Duration::from_millis(500);
/// Longest wait for validator 0 to answer again after an attack.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Wait after an attack stopped before its "after" figures are taken.
const SETTLE: Duration = Duration::from_millis(1_000);

/// Headroom left under the open-file limit for the test's own files and processes.
const OPEN_FILE_MARGIN: usize = 512;
/// Most connections the idle flood opens, even when the open-file limit allows more.
const MAX_FLOOD_CONNECTIONS: usize = 4_000;
/// Connections opened at once while flooding.
const CONNECT_BATCH: usize = 200;
/// Time given to the server to accept or refuse the flood's connections before they are
/// counted.
const ACCEPT_SETTLE: Duration = Duration::from_millis(500);
/// The idle flood watches its connections this long after the last was opened (the
/// first-frame deadline, and a margin), unless the server closed them all sooner.
fn flood_watch() -> Duration {
    server().first_frame_timeout + Duration::from_secs(2)
}

/// The settings of the validators' servers: their defaults, which every attack meets.
fn server() -> ServerConfig {
    ServerConfig::default()
}
/// Sockets validator 0 may hold for honest traffic beside an attacker's (a client command's
/// pool, the probe, connections closing).
const HONEST_SOCKETS: usize = 16;

/// Slowloris: connections, each sending two bytes of a length prefix, then one byte every
/// [`SLOWLORIS_DRIP`].
const SLOWLORIS_CONNECTIONS: usize = 200;
/// Slowloris: time between two bytes.
const SLOWLORIS_DRIP: Duration = Duration::from_millis(1_000);
/// Slowloris: the body length the prefix announces, in bytes.
const SLOWLORIS_BODY_BYTES: u32 = 1024;

/// Stalled frames: connections, each announcing a frame of 16 MiB − 1 and sending as much of
/// it as the server reads within [`STALL_WRITE_WINDOW`], then nothing.
const STALL_CONNECTIONS: usize = 200;
/// Stalled frames, light version: bytes of its frame's body each connection sends.
const LIGHT_STALL_BODY_BYTES: usize = 1 << 20;
/// Stalled frames: time the attacker keeps writing before it stalls.
const STALL_WRITE_WINDOW: Duration = Duration::from_secs(3);

/// Download pipelining: connections that send download requests back to back and never read.
const PIPELINE_CONNECTIONS: usize = 10;
/// Download pipelining: how long the attacker keeps sending.
const PIPELINE_HOLD: Duration = Duration::from_secs(5);
/// Heights asked for in one download (all of them height 0: the largest answer a small
/// request gets).
const PIPELINE_HEIGHTS: usize = Limits::DEFAULT.max_certificates_per_batch;

/// Big proposals: connections sending at once, and frames each sends.
const PROPOSAL_CONNECTIONS: usize = 4;
/// Big proposals, heavy version: frames sent on each connection.
const HEAVY_PROPOSALS_PER_CONNECTION: usize = 4;
/// Bytes of one committee member in a committee's encoding: key, weight, empty address.
const COMMITTEE_MEMBER_BYTES: usize = 32 + 8 + 1;

/// Blob flood: size of each blob, in bytes (the Worker's default largest blob, 4 MiB).
const FLOOD_BLOB_BYTES: usize = 4 << 20;
/// Blob flood: connections it uses.
const BLOB_CONNECTIONS: usize = 4;
/// Blob flood, light version: uploads and pending blobs, each.
const BLOB_REQUESTS: usize = 200;
/// Blob flood: longest wait for the last answers once everything was sent.
const BLOB_ANSWER_WAIT: Duration = Duration::from_secs(5);
/// Blob flood: longest time it sends for.
const BLOB_SEND_WINDOW: Duration = Duration::from_secs(15);

/// 1 MiB of zeros, the body of the stalled frames.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// One test at a time: they measure time and memory on a shared 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The harness: one attack, measured.

/// What one attack did to validator 0 and to honest traffic.
struct Row {
    attack: String,
    before_rss: u64,
    peak_rss: u64,
    after_rss: u64,
    /// Sockets validator 0 held just before the attack, and at most during it.
    before_sockets: usize,
    peak_sockets: usize,
    cpu: Duration,
    baseline: HonestTimes,
    during: HonestDuring,
    /// A round of honest traffic once the attack stopped.
    after: Result<HonestTimes, (Step, String)>,
    alive: bool,
    /// How long after the attacker stopped validator 0 answered an honest query again.
    recovery: Option<Duration>,
    notes: Vec<String>,
    failed_checks: Vec<String>,
    /// Steps of honest traffic whose times and failures are not checked: only for a known
    /// weakness whose full test is ignored (they are printed all the same).
    unchecked: Vec<Step>,
}

fn ratio(during: Duration, baseline: Duration) -> f64 {
    during.as_secs_f64() / baseline.as_secs_f64().max(1e-6)
}

impl Row {
    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Records `what` as a failed check unless `ok`.
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failed_checks.push(what.into());
        }
    }

    /// The checks every attack shares.
    fn common_checks(&mut self) {
        self.check(self.alive, "validator 0 died");
        if let Err((step, error)) = &self.after {
            if !self.unchecked.contains(step) {
                self.failed_checks
                    .push(format!("honest traffic fails after the attack: {error}"));
            }
        }
        let bound = self.before_rss + RSS_HEADROOM_BYTES;
        self.check(
            self.peak_rss <= bound,
            format!(
                "peak RSS {} over the bound {} (before + {})",
                mib(self.peak_rss),
                mib(bound),
                mib(RSS_HEADROOM_BYTES)
            ),
        );
        self.check(
            self.recovery.is_some(),
            format!(
                "validator 0 did not answer within {} after the attack",
                ms(RECOVERY_LIMIT)
            ),
        );
        let mut failures = BTreeMap::<&str, usize>::new();
        for (step, failure) in &self.during.failures {
            if !self.unchecked.contains(step) {
                *failures.entry(failure).or_default() += 1;
            }
        }
        for (failure, times) in failures {
            self.failed_checks.push(format!(
                "honest traffic failed during the attack ({times} of {} rounds): {failure}",
                self.during.rounds
            ));
        }
        let (worst, base) = (self.during.worst, self.baseline);
        // A command that meets the slowed validator is expected to take up to its baseline plus
        // the client's allowance for one slow validator; ten times that is the bound (a
        // real-time test asserts with a 10× margin over the expected figure). The stall this
        // suite guards against (27 s per command) is far above it.
        let allowance = |baseline: Duration| {
            (baseline + CLIENT_SLOW_VALIDATOR_ALLOWANCE) * HONEST_SLOWDOWN_BOUND
        };
        for (step, what, during, baseline, floor) in [
            (
                Step::Transfer,
                "transfer",
                worst.transfer,
                base.transfer,
                allowance(base.transfer),
            ),
            (
                Step::Info,
                "info",
                worst.info,
                base.info,
                allowance(base.info),
            ),
            (
                Step::Probe,
                "probe",
                worst.probe,
                base.probe,
                PROBE_BOUND_FLOOR,
            ),
            (
                Step::Large,
                "large request",
                worst.large,
                base.large,
                PROBE_BOUND_FLOOR,
            ),
        ] {
            if self.unchecked.contains(&step) {
                continue;
            }
            let bound = (baseline * HONEST_SLOWDOWN_BOUND).max(floor);
            self.check(
                during <= bound,
                format!(
                    "honest {what} took {} during the attack, over {} ({}× its baseline {}, or \
                     at least {})",
                    ms(during),
                    ms(bound),
                    HONEST_SLOWDOWN_BOUND,
                    ms(baseline),
                    ms(floor)
                ),
            );
        }
    }

    fn honest_cell(&self) -> String {
        let (worst, typical, base) = (self.during.worst, self.during.median(), self.baseline);
        let part = |what: &str, during: Duration, median: Duration, baseline: Duration| {
            format!(
                "{what} {} ({:.1}×), worst {} ({:.1}×), vs {}",
                ms(median),
                ratio(median, baseline),
                ms(during),
                ratio(during, baseline),
                ms(baseline),
            )
        };
        let mut cell = [
            part("transfer", worst.transfer, typical.transfer, base.transfer),
            part("info", worst.info, typical.info, base.info),
            part("probe", worst.probe, typical.probe, base.probe),
            part("large", worst.large, typical.large, base.large),
        ]
        .join("; ");
        cell.push_str(&format!(", {} rounds", self.during.rounds));
        if !self.during.failures.is_empty() {
            cell.push_str(&format!(", **{} failed**", self.during.failures.len()));
        }
        cell
    }

    fn alive_cell(&self) -> String {
        match (self.alive, &self.after, self.recovery) {
            (false, _, _) => "**no**".to_string(),
            (true, Ok(_), Some(after)) if after < RECOVERY_NOTICEABLE => {
                "yes, answers at once after".to_string()
            }
            (true, Ok(_), Some(after)) => format!("yes, answers again **{}** after", ms(after)),
            (true, _, _) => "alive, **does not answer**".to_string(),
        }
    }

    /// Prints the row (and why it failed) and panics if a check failed.
    fn finish(mut self) {
        self.common_checks();
        println!();
        println!("| attack | validator peak RSS | honest time during the attack: median (ratio), worst (ratio), vs baseline | validator alive | notes |");
        println!("|---|---|---|---|---|");
        println!(
            "| {} | {} → **{}** (+{}), {} after; CPU {:.1} s; sockets {} → {} | {} | {} | {} |",
            self.attack,
            mib(self.before_rss),
            mib(self.peak_rss),
            mib(self.peak_rss.saturating_sub(self.before_rss)),
            mib(self.after_rss),
            self.cpu.as_secs_f64(),
            self.before_sockets,
            self.peak_sockets,
            self.honest_cell(),
            self.alive_cell(),
            self.notes.join("; ")
        );
        println!(
            "(bounds: RSS ≤ before + {}; commands ≤ {}× (baseline + {}); requests to \
             validator 0 alone ≤ max({}× baseline, {}); the issue's target is {}×)",
            mib(RSS_HEADROOM_BYTES),
            HONEST_SLOWDOWN_BOUND,
            ms(CLIENT_SLOW_VALIDATOR_ALLOWANCE),
            HONEST_SLOWDOWN_BOUND,
            ms(PROBE_BOUND_FLOOR),
            ISSUE_TARGET_SLOWDOWN
        );
        if !self.failed_checks.is_empty() {
            panic!(
                "{}: {} check(s) failed:\n  {}",
                self.attack,
                self.failed_checks.len(),
                self.failed_checks.join("\n  ")
            );
        }
    }
}

/// How long honest traffic runs during an attack: at least `min`, and then until the attack
/// returns on its own, but never beyond `max` (when the attack is stopped).
#[derive(Clone, Copy)]
struct Hold {
    min: Duration,
    max: Duration,
}

impl Hold {
    fn fixed(duration: Duration) -> Hold {
        Hold {
            min: duration,
            max: duration,
        }
    }
}

/// Runs one attack against validator 0 of `committee`, with honest traffic meanwhile, and
/// measures it; the attack's own figures come back with the row.
fn measure<T: Send + 'static>(
    committee: &mut Committee,
    baseline: HonestTimes,
    name: &str,
    hold: Hold,
    attacker: Attacker<T>,
) -> (Row, T) {
    let pid = committee.target_pid();
    let before_rss = rss_bytes(pid).unwrap_or(0);
    let cpu_before = cpu_time(pid).unwrap_or_default();
    let before_sockets = socket_count(pid).unwrap_or(0);
    let sampler = ProcessSampler::start(pid);
    let started = std::time::Instant::now();
    let mut during = HonestDuring::default();
    let verbose = std::env::var_os("QUORUM_ATTACKS_VERBOSE").is_some();
    loop {
        let round = honest_round(committee);
        if verbose {
            eprintln!(
                "{:>8} ms: {round:?}, validator 0 RSS {}",
                started.elapsed().as_millis(),
                mib(rss_bytes(pid).unwrap_or(0))
            );
        }
        during.record(round);
        let elapsed = started.elapsed();
        if elapsed >= hold.max || (elapsed >= hold.min && attacker.is_finished()) {
            break;
        }
    }
    let figures = attacker.stop();
    let stopped_at = std::time::Instant::now();
    // How long until validator 0 answers an honest query again.
    let recovery = loop {
        if query_chain(committee.target, committee.chain(1), RECOVERY_PROBE_TIMEOUT).is_ok() {
            break Some(stopped_at.elapsed());
        }
        if stopped_at.elapsed() >= RECOVERY_LIMIT || !committee.target_alive() {
            break None;
        }
        std::thread::sleep(RECOVERY_RETRY);
    };
    let peaks = sampler.finish();
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
    std::thread::sleep(SETTLE);
    let after_rss = rss_bytes(pid).unwrap_or(0);
    let after = honest_round(committee).map_err(|(_, failure)| failure);
    let alive = committee.target_alive();
    let row = Row {
        attack: name.to_string(),
        before_rss,
        peak_rss: peaks.rss,
        after_rss,
        before_sockets,
        peak_sockets: peaks.sockets,
        cpu,
        baseline,
        during,
        after,
        alive,
        recovery,
        notes: Vec::new(),
        failed_checks: Vec::new(),
        unchecked: Vec::new(),
    };
    (row, figures)
}

/// A committee and its honest baseline.
fn committee_with_baseline() -> (Committee, HonestTimes) {
    let committee = Committee::start();
    // A first round warms the client's database and health records.
    if let Err((_, (_, error))) = honest_round(&committee) {
        panic!("honest traffic fails without an attack: {error}");
    }
    let baseline = honest_baseline(&committee, BASELINE_ROUNDS);
    (committee, baseline)
}

#[path = "attacks/bad_signatures.rs"]
mod bad_signatures;
#[path = "attacks/blob_flood.rs"]
mod blob_flood;
#[path = "attacks/committee_bomb.rs"]
mod committee_bomb;
#[path = "attacks/flood.rs"]
mod flood;
#[path = "attacks/many_addresses.rs"]
mod many_addresses;
#[path = "attacks/pipelined_downloads.rs"]
mod pipelined_downloads;
#[path = "attacks/quic.rs"]
mod quic;
#[path = "attacks/slowloris.rs"]
mod slowloris;
#[path = "attacks/stalled_frames.rs"]
mod stalled_frames;
#[path = "attacks/subscriptions.rs"]
mod subscriptions;
