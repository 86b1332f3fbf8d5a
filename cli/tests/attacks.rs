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
//! | validator peak RSS | honest time vs baseline (the worst of each kind, and the ratio; the
//! issue's target is [`ISSUE_TARGET_SLOWDOWN`]×) | validator alive | notes.
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

use quorum_core::committee::MAX_COMMITTEE_MEMBERS;
use quorum_core::{
    Blob, Block, BlockHeight, BlockProposal, CommitteeError, EncodedCommittee, Epoch,
    ExecutionError, NodeError, Operation, Timestamp,
};
use quorum_transport_tcp::{
    Envelope, FrameCodec, Request, Response, DEFAULT_FIRST_FRAME_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_FRAME_LENGTH, DEFAULT_RECEIVE_BUDGET,
    DEFAULT_SERVER_FRAME_READ_TIMEOUT, LENGTH_PREFIX_LEN,
};

use attack_kit::{
    attacker_addresses, closed_by_server, connect_from, connect_many, cpu_time, encode_request,
    honest_baseline, honest_round, join_all, many_attacker_addresses, mib, ms, open_file_limit,
    query_chain, rss_bytes, socket_count, stopped, write_within, Attacker, Committee, HonestDuring,
    HonestTimes, ProcessSampler, Step, Stop, CLIENT_REQUEST_TIMEOUT, CLIENT_UPDATE_BUDGET, MIB,
    PROBE_TIMEOUT,
};

/// Memory an attack may add to validator 0's resident memory over its level just before the
/// attack, in bytes: the server's receive budget for large frames
/// ([`DEFAULT_RECEIVE_BUDGET`], 256 MiB, which an attacker sending large frames fills
/// entirely) plus [`RSS_SLACK_BYTES`].
const RSS_HEADROOM_BYTES: u64 = DEFAULT_RECEIVE_BUDGET as u64 + RSS_SLACK_BYTES;
/// What the process holds beside the bytes a budget counts: allocator fragmentation, the
/// zeroed part of each frame buffer's last growth step (up to a quarter of what arrived),
/// read-ahead buffers and tasks of up to a few hundred connections, decoders' transient
/// copies. Measured at 6–25 MiB beyond a full receive budget, and 53–69 MiB beyond 200 MiB of
/// 1 MiB partial frames.
const RSS_SLACK_BYTES: u64 = 64 * MIB;
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
/// optimised and every byte an attacker sends costs the validator several times the CPU).
const PROBE_BOUND_FLOOR: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(2_500)
} else {
    Duration::from_millis(1_000)
};
/// Rounds of honest traffic whose median is the baseline.
const BASELINE_ROUNDS: usize = 3;
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
const FLOOD_WATCH: Duration = Duration::from_secs(DEFAULT_FIRST_FRAME_TIMEOUT.as_secs() + 2);
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
const PIPELINE_HEIGHTS: usize = quorum_core::node::MAX_CERTIFICATES_PER_BATCH;

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
        let (worst, base) = (self.during.worst, self.baseline);
        let part = |what: &str, during: Duration, baseline: Duration| {
            format!(
                "{what} {} vs {} ({:.1}×)",
                ms(during),
                ms(baseline),
                ratio(during, baseline)
            )
        };
        let mut cell = [
            part("transfer", worst.transfer, base.transfer),
            part("info", worst.info, base.info),
            part("probe", worst.probe, base.probe),
            part("large", worst.large, base.large),
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
        println!("| attack | validator peak RSS | honest command time vs baseline (worst, ratio) | validator alive | notes |");
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

// ---------------------------------------------------------------------------------------------
// 1. Connections up to the open-file limit, idle.

/// What an idle flood saw.
#[derive(Debug, Default)]
struct FloodFigures {
    connected: usize,
    connect_failures: usize,
    /// How long opening every connection took.
    connect_time: Duration,
    /// Connections still open [`ACCEPT_SETTLE`] after the last one was opened, as the attacker
    /// sees them: those the server kept, and any the kernel completed that the server had not
    /// accepted yet.
    open_after_accept: usize,
    /// When the server had closed every connection, since the last one was opened.
    all_closed_after: Option<Duration>,
    open_at_stop: usize,
    reconnects: usize,
}

/// Opens `count` connections spread over `sources` and sends nothing on them. Without
/// `reconnect`, returns once the server closed them all (or [`FLOOD_WATCH`] after the last
/// was opened); with it, replaces every connection the server closes until told to stop, so
/// that the flood never lets up.
async fn idle_flood(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    count: usize,
    reconnect: bool,
    mut stop: Stop,
) -> FloodFigures {
    let begun = Instant::now();
    let (mut streams, connect_failures) =
        connect_many(&sources, target, count, CONNECT_BATCH).await;
    let opened = Instant::now();
    let mut figures = FloodFigures {
        connected: streams.len(),
        connect_failures,
        connect_time: opened - begun,
        ..FloodFigures::default()
    };
    tokio::select! {
        () = stopped(&mut stop) => {}
        () = tokio::time::sleep(ACCEPT_SETTLE) => {}
    }
    figures.open_after_accept = streams.iter().filter(|s| !closed_by_server(s)).count();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let open = streams.iter().filter(|s| !closed_by_server(s)).count();
        if open == 0 && figures.all_closed_after.is_none() {
            figures.all_closed_after = Some(opened.elapsed());
        }
        if reconnect {
            for (i, stream) in streams.iter_mut().enumerate() {
                if *stop.borrow() {
                    break;
                }
                if closed_by_server(stream) {
                    if let Ok(fresh) = connect_from(sources[i % sources.len()], target).await {
                        *stream = fresh;
                        figures.reconnects += 1;
                    }
                }
            }
        } else if open == 0 || opened.elapsed() >= FLOOD_WATCH {
            break;
        }
    }
    figures.open_at_stop = streams.iter().filter(|s| !closed_by_server(s)).count();
    figures
}

fn flood_size() -> usize {
    let limit = open_file_limit().unwrap_or(MAX_FLOOD_CONNECTIONS + OPEN_FILE_MARGIN);
    limit
        .saturating_sub(OPEN_FILE_MARGIN)
        .min(MAX_FLOOD_CONNECTIONS)
}

/// One peer opens connections up to the open-file limit (at most [`MAX_FLOOD_CONNECTIONS`])
/// and leaves them idle: it gets its per-IP cap, the rest are refused at once, and the
/// first-frame deadline closes the ones it got.
#[test]
fn idle_connections_up_to_the_open_file_limit() {
    let _serial = serial();
    let (mut committee, baseline) = committee_with_baseline();
    let count = flood_size();
    let target = committee.target;
    let attacker =
        Attacker::launch(move |stop| idle_flood(target, attacker_addresses(1), count, false, stop));
    let name = format!("1. {count} idle connections, one address");
    let hold = Hold {
        min: Duration::from_secs(3),
        max: Duration::from_secs(40),
    };
    let (mut row, figures) = measure(&mut committee, baseline, &name, hold, attacker);
    row.note(format!(
        "{} connected in {} ({} failed to connect); {} open {} later as the attacker sees them; {}",
        figures.connected,
        ms(figures.connect_time),
        figures.connect_failures,
        figures.open_after_accept,
        ms(ACCEPT_SETTLE),
        match figures.all_closed_after {
            Some(after) => format!(
                "all closed by the server {} after the last was opened",
                ms(after)
            ),
            None => format!(
                "{} still open {} after the last was opened",
                figures.open_at_stop,
                ms(FLOOD_WATCH)
            ),
        },
    ));
    // The validator's own count: the attacker's view also holds connections the kernel
    // completed but had not handed to the server yet (its accept queue overflowed).
    let bound = row.before_sockets + DEFAULT_MAX_CONNECTIONS_PER_IP + HONEST_SOCKETS;
    row.check(
        row.peak_sockets <= bound,
        format!(
            "validator 0 held {} sockets, over {bound} (before + the per-IP cap \
             {DEFAULT_MAX_CONNECTIONS_PER_IP} + {HONEST_SOCKETS} for honest traffic)",
            row.peak_sockets
        ),
    );
    row.finish();
}

/// An attacker with many addresses (63 loopback addresses × 64 connections, more than the
/// server's total cap) fills every connection slot and reconnects whatever the server closes.
///
/// Known weakness, measured on 2 cores (release build, three runs): validator 0 holds 1,028 or
/// 1,029 sockets (its total cap of 1,024 connections, the attacker's), and 52 of 60, 85 of 120
/// and 93 of 114 honest probes to it were refused (the connection closed or reset at once) for as long as
/// the flood lasted; `quorum client` commands still succeed, through the other three
/// validators (2.0–2.8× their baseline). The per-IP cap (64) does not help against an attacker
/// with more than 16 addresses (or one IPv6 /56: a /64 counts as one address); nothing evicts
/// idle connections to make room for new peers before their first-frame deadline, and a
/// reconnecting attacker refills each freed slot at once.
#[test]
#[ignore = "known weakness: an attacker with 63 addresses holds all 1,024 connection slots \
            and validator 0 refuses honest peers (heavy: 4,000 connections for 12 s)"]
fn idle_connections_from_many_addresses_fill_the_total_cap() {
    let _serial = serial();
    let (mut committee, baseline) = committee_with_baseline();
    let count = flood_size();
    let target = committee.target;
    let hold = DEFAULT_FIRST_FRAME_TIMEOUT * 2 + Duration::from_secs(2);
    let attacker = Attacker::launch(move |stop| {
        idle_flood(target, many_attacker_addresses(63), count, true, stop)
    });
    let name = format!("1b. {count} idle connections from 63 addresses, reconnecting");
    let (mut row, figures) = measure(&mut committee, baseline, &name, Hold::fixed(hold), attacker);
    row.note(format!(
        "{} connected in {} ({} failed); {} open {} later (total cap {DEFAULT_MAX_CONNECTIONS}); {} reconnects",
        figures.connected,
        ms(figures.connect_time),
        figures.connect_failures,
        figures.open_after_accept,
        ms(ACCEPT_SETTLE),
        figures.reconnects
    ));
    row.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. Slowloris.

/// What the slowloris connections saw.
#[derive(Debug, Default)]
struct SlowlorisFigures {
    connected: usize,
    /// How long after it was opened the server closed each connection it closed.
    closed_after: Vec<Duration>,
    still_open: usize,
}

/// Sends two bytes of a length prefix, then one byte every [`SLOWLORIS_DRIP`]; when the server
/// closed the connection, counted from when it was opened (`None`: still open at `stop`).
async fn drip(mut stream: tokio::net::TcpStream, mut stop: Stop) -> Option<Duration> {
    let opened = Instant::now();
    let prefix = SLOWLORIS_BODY_BYTES.to_be_bytes();
    if stream.write_all(&prefix[..2]).await.is_err() {
        return Some(opened.elapsed());
    }
    let mut sent = 2;
    let mut next = opened + SLOWLORIS_DRIP;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return None,
            ready = stream.readable() => {
                if ready.is_err() || closed_by_server(&stream) {
                    return Some(opened.elapsed());
                }
                // Nothing to read yet the socket said readable: wait a little before looking
                // again rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            () = tokio::time::sleep_until(next) => {
                let byte = prefix.get(sent).copied().unwrap_or(0);
                if stream.write_all(&[byte]).await.is_err() {
                    return Some(opened.elapsed());
                }
                sent += 1;
                next += SLOWLORIS_DRIP;
            }
        }
    }
}

async fn slowloris(target: SocketAddr, sources: Vec<Ipv4Addr>, stop: Stop) -> SlowlorisFigures {
    let (streams, _) = connect_many(&sources, target, SLOWLORIS_CONNECTIONS, CONNECT_BATCH).await;
    let connected = streams.len();
    let results = join_all(streams.into_iter().map(|stream| drip(stream, stop.clone()))).await;
    let mut figures = SlowlorisFigures {
        connected,
        ..SlowlorisFigures::default()
    };
    for result in results {
        match result {
            Some(after) => figures.closed_after.push(after),
            None => figures.still_open += 1,
        }
    }
    figures
}

/// 200 slowloris connections (spread over four addresses, so that the per-IP cap does not
/// refuse them): the frame deadline closes them all, about 5 s after their prefix completed.
#[test]
fn slowloris_connections_are_closed_by_the_frame_deadline() {
    let _serial = serial();
    let (mut committee, baseline) = committee_with_baseline();
    let target = committee.target;
    // Two more bytes complete the prefix, then the frame deadline runs; then a margin.
    let deadline = SLOWLORIS_DRIP * 2 + DEFAULT_SERVER_FRAME_READ_TIMEOUT;
    let hold = deadline + Duration::from_secs(3);
    let attacker = Attacker::launch(move |stop| slowloris(target, attacker_addresses(4), stop));
    let name = format!("2. {SLOWLORIS_CONNECTIONS} slowloris connections, four addresses");
    // The attack returns once the server closed every connection.
    let hold = Hold {
        min: Duration::from_secs(3),
        max: hold,
    };
    let (mut row, figures) = measure(&mut committee, baseline, &name, hold, attacker);
    let latest = figures.closed_after.iter().max().copied();
    row.note(format!(
        "{} connected; {} closed by the server, the last {} after it opened (frame deadline {}); {} still open",
        figures.connected,
        figures.closed_after.len(),
        latest.map_or("—".to_string(), ms),
        ms(deadline),
        figures.still_open
    ));
    row.check(
        figures.still_open == 0 && latest.is_some_and(|latest| latest <= hold.max),
        format!(
            "{} slowloris connections still open after {}",
            figures.still_open,
            ms(hold.max)
        ),
    );
    row.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Almost whole 16 MiB frames, then a stall.

/// What the stalled-frame connections saw.
#[derive(Debug, Default)]
struct StallFigures {
    connected: usize,
    /// Bytes the attacker got written, in all (what the server read plus what the kernels'
    /// socket buffers took).
    written: u64,
    /// Connections on which writing stopped because the server stopped reading.
    blocked: usize,
    /// Connections the server closed while the attacker wrote or stalled.
    closed: usize,
}

/// Announces a frame of 16 MiB − 1 and writes at most `body` bytes of it for as long as
/// `window` allows (the write waits when the server stops reading); the bytes written and
/// whether the connection failed.
async fn partial_frame(
    stream: &mut tokio::net::TcpStream,
    body: usize,
    window: Duration,
) -> (u64, bool) {
    let length = DEFAULT_MAX_FRAME_LENGTH - 1;
    let until = Instant::now() + window;
    let total = LENGTH_PREFIX_LEN + body.min(length);
    let (mut written, failed) = write_within(stream, &(length as u32).to_be_bytes(), window).await;
    if failed {
        return (written as u64, true);
    }
    while written < total {
        let now = Instant::now();
        if now >= until {
            return (written as u64, false);
        }
        let chunk = (total - written).min(ZEROS.len());
        let (n, failed) = write_within(stream, &ZEROS[..chunk], until - now).await;
        written += n;
        if failed {
            return (written as u64, true);
        }
    }
    (written as u64, false)
}

/// `count` connections spread over `sources`, each announcing a frame of 16 MiB − 1 and sending
/// at most `body` bytes of it within [`STALL_WRITE_WINDOW`], then nothing until told to stop.
async fn stalled_frames(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    count: usize,
    body: usize,
    mut stop: Stop,
) -> StallFigures {
    let (streams, _) = connect_many(&sources, target, count, CONNECT_BATCH).await;
    let connected = streams.len();
    let written = join_all(streams.into_iter().map(|mut stream| async move {
        let (written, failed) = partial_frame(&mut stream, body, STALL_WRITE_WINDOW).await;
        (stream, written, failed)
    }))
    .await;
    let mut figures = StallFigures {
        connected,
        ..StallFigures::default()
    };
    let wanted = (LENGTH_PREFIX_LEN + body.min(DEFAULT_MAX_FRAME_LENGTH - 1)) as u64;
    for (_, bytes, failed) in &written {
        figures.written += bytes;
        figures.blocked += usize::from(!failed && *bytes < wanted);
    }
    // The stall: nothing more is sent until told to stop.
    stopped(&mut stop).await;
    figures.closed = written
        .iter()
        .filter(|(stream, _, failed)| *failed || closed_by_server(stream))
        .count();
    figures
}

fn stalled_frames_row(body: usize, hold: Duration, name: &str) -> (Row, StallFigures) {
    let (mut committee, baseline) = committee_with_baseline();
    let target = committee.target;
    let attacker = Attacker::launch(move |stop| {
        stalled_frames(target, attacker_addresses(4), STALL_CONNECTIONS, body, stop)
    });
    let (mut row, figures) = measure(&mut committee, baseline, name, Hold::fixed(hold), attacker);
    row.note(format!(
        "{} connected; the attacker wrote {} of {} offered ({} blocked: the server stopped reading); {} closed by the server",
        figures.connected,
        mib(figures.written),
        mib(figures.connected as u64 * (LENGTH_PREFIX_LEN + body) as u64),
        figures.blocked,
        figures.closed
    ));
    (row, figures)
}

/// 200 connections (four addresses) each announce a 16 MiB frame, send 1 MiB of it, then
/// stall: a length prefix reserves nothing, the server holds what arrived (200 MiB, under the
/// receive budget), and honest traffic, large frames included, is served meanwhile. The
/// lighter version of [`almost_whole_16_mib_frames_then_a_stall`] for the normal run.
#[test]
fn partial_16_mib_frames_then_a_stall() {
    let _serial = serial();
    let name = format!(
        "3. {STALL_CONNECTIONS} × 16 MiB frames announced, {} of each sent, stalled",
        mib(LIGHT_STALL_BODY_BYTES as u64)
    );
    let hold = STALL_WRITE_WINDOW + Duration::from_secs(3);
    let (row, _) = stalled_frames_row(LIGHT_STALL_BODY_BYTES, hold, &name);
    row.finish();
}

/// 200 connections (four addresses) each announce a 16 MiB frame, send as much of it as the
/// server reads within 3 s, then stall: the receive budget bounds what the server holds.
///
/// Known weakness, measured on 2 cores (release build; debug the same): the stalled frames
/// hold the whole server-wide receive budget (256 MiB) until their frame deadline (5 s + 16 s),
/// even once their peer has gone (a connection waiting for the budget does not watch its
/// socket), so every honest frame longer than 64 KiB (a blob upload, a pending blob, a batch
/// of certificates) waits for the budget and is closed as starved: every honest 128 KiB
/// pending blob to validator 0 got no answer, its connection closed after 5.1 s, during the
/// attack and still 1 s after the attacker had closed its connections. Honest `quorum client`
/// commands, whose frames are small, are served (2.8–4.3× their baseline; debug up to 13×).
#[test]
#[ignore = "known weakness: stalled frames hold the whole receive budget, so honest frames \
            over 64 KiB to validator 0 are closed as starved after 5 s (heavy: run with --release)"]
fn almost_whole_16_mib_frames_then_a_stall() {
    let _serial = serial();
    let name = format!("3. {STALL_CONNECTIONS} × almost 16 MiB frames, stalled");
    let hold = STALL_WRITE_WINDOW + Duration::from_secs(3);
    let (row, _) = stalled_frames_row(DEFAULT_MAX_FRAME_LENGTH, hold, &name);
    row.finish();
}

/// The same, held until the server's own frame deadline (5 s + 16 s for 16 MiB) has closed
/// every stalled connection; honest large requests are not checked (the known weakness above).
#[test]
#[ignore = "heavy: holds 200 stalled 16 MiB frames for 30 s, until the server's frame deadline"]
fn almost_whole_16_mib_frames_stalled_until_the_frame_deadline() {
    let _serial = serial();
    let name = format!("3b. {STALL_CONNECTIONS} × almost 16 MiB frames, stalled 30 s");
    let (mut row, figures) =
        stalled_frames_row(DEFAULT_MAX_FRAME_LENGTH, Duration::from_secs(30), &name);
    row.unchecked = vec![Step::Large];
    row.note("honest large requests not checked: known weakness, see `almost_whole_16_mib_frames_then_a_stall`");
    row.check(
        figures.closed == figures.connected,
        format!(
            "{} of {} stalled connections still open after the frame deadline",
            figures.connected - figures.closed,
            figures.connected
        ),
    );
    row.finish();
}

// ---------------------------------------------------------------------------------------------
// 4. Pipelined downloads, never read.

/// What the pipelining connections did.
#[derive(Debug, Default)]
struct PipelineFigures {
    connected: usize,
    requests_sent: u64,
    closed: usize,
}

/// Sends `frame` again and again (with fresh request ids) without ever reading, until `stop`;
/// the requests sent and whether the server closed the connection.
async fn pipeline(
    mut stream: tokio::net::TcpStream,
    frame: Arc<Vec<u8>>,
    mut stop: Stop,
) -> (u64, bool) {
    let mut frame = frame.as_ref().clone();
    let mut sent = 0u64;
    loop {
        frame[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8].copy_from_slice(&sent.to_le_bytes());
        tokio::select! {
            () = stopped(&mut stop) => return (sent, closed_by_server(&stream)),
            written = stream.write_all(&frame) => {
                if written.is_err() {
                    return (sent, true);
                }
                sent += 1;
            }
        }
    }
}

async fn download_pipeline(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    frame: Arc<Vec<u8>>,
    stop: Stop,
) -> PipelineFigures {
    let (streams, _) = connect_many(&sources, target, connections, CONNECT_BATCH).await;
    let connected = streams.len();
    let results = join_all(
        streams
            .into_iter()
            .map(|stream| pipeline(stream, frame.clone(), stop.clone())),
    )
    .await;
    PipelineFigures {
        connected,
        requests_sent: results.iter().map(|(sent, _)| sent).sum(),
        closed: results.iter().filter(|(_, closed)| *closed).count(),
    }
}

fn download_pipeline_row(connections: usize, hold: Duration) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let chain = committee.chain(1);
    let request = Request::DownloadCertificatesByHeights {
        chain_id: chain,
        heights: vec![BlockHeight(0); PIPELINE_HEIGHTS],
    };
    // The size of one answer, read once by an honest-looking peer.
    let answer_bytes = {
        let mut stream = std::net::TcpStream::connect(committee.target).unwrap();
        stream.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
        std::io::Write::write_all(&mut stream, &encode_request(1, request.clone())).unwrap();
        let mut prefix = [0u8; LENGTH_PREFIX_LEN];
        std::io::Read::read_exact(&mut stream, &mut prefix).unwrap();
        u64::from(u32::from_be_bytes(prefix))
    };
    let frame = Arc::new(encode_request(0, request));
    let target = committee.target;
    let attacker = Attacker::launch(move |stop| {
        download_pipeline(target, attacker_addresses(1), connections, frame, stop)
    });
    let name = format!(
        "4. {connections} connection{} pipelining {} downloads, never reading",
        if connections == 1 { "" } else { "s" },
        mib(answer_bytes)
    );
    let (mut row, figures) = measure(&mut committee, baseline, &name, Hold::fixed(hold), attacker);
    row.note(format!(
        "{} connected; {} requests sent ({} of answers asked for); {} closed by the server",
        figures.connected,
        figures.requests_sent,
        mib(figures.requests_sent * answer_bytes),
        figures.closed
    ));
    row
}

/// One connection asks for ~0.6 MiB downloads back to back and never reads. What holds
/// despite the known weakness below: validator 0 survives, its memory stays bounded, and it
/// answers again once the attacker is gone. Honest traffic's times are printed, not checked
/// (the ignored tests below check them).
#[test]
fn pipelined_downloads_on_one_connection_leave_the_validator_alive_and_bounded() {
    let _serial = serial();
    let mut row = download_pipeline_row(1, PIPELINE_HOLD);
    row.unchecked = vec![Step::Transfer, Step::Info, Step::Probe, Step::Large];
    row.note("honest times not checked here: known weakness, see the ignored tests");
    row.finish();
}

/// Ten connections of one peer ask for ~0.6 MiB downloads back to back and never read.
///
/// Known weakness, measured on 2 cores (release build, three runs; debug in brackets):
/// validator 0's peak RSS +451 to +528 MiB (+260 MiB), over the bound; an honest chain info query to it
/// takes 1.3–2.6 s (times out after 10 s); honest commands up to 10.5× (14.6×) their baseline;
/// in debug 28 s of CPU for 5 s of attack, and validator 0 answers again only 9.7 s after the
/// attacker closed. Each 8 KiB request makes a handler read and decode 1,000 certificates and
/// encode a 0.6 MiB answer. A connection's budget (32 MiB) bounds its queued answers and lets
/// 32 of its handlers run at once (`connection_budget / response_reserve`), but nothing bounds
/// the answers and handlers of all connections together (the receive budget covers large
/// requests only), handlers' working memory is not counted, attack handlers compete with
/// honest ones for the CPU and the blocking pool as equals, and requests already read are
/// still handled after their peer has gone.
#[test]
#[ignore = "known weakness: pipelined downloads that are never read (10 connections, one address) \
            take validator 0 to +528 MiB RSS and delay an honest query to it by 1.3-2.6 s"]
fn pipelined_downloads_never_read() {
    let _serial = serial();
    download_pipeline_row(PIPELINE_CONNECTIONS, PIPELINE_HOLD).finish();
}

/// The same from as many connections as one address may open (the per-IP cap, 64): 64 × 32
/// handlers is more than the server's 512 in all. Measured (release, three runs): peak RSS
/// +0.9 to +2.5 GiB (up to 2.1 GiB still held after), an honest query to validator 0 2.4 s to
/// over 10 s, an honest 128 KiB pending blob 9.2–10.2 s, 28 s of CPU for 10 s of attack.
#[test]
#[ignore = "known weakness: as `pipelined_downloads_never_read`, on all 64 connections one \
            address may open: +2.5 GiB RSS (heavy: 10 s)"]
fn pipelined_downloads_never_read_on_every_connection_of_one_address() {
    let _serial = serial();
    download_pipeline_row(DEFAULT_MAX_CONNECTIONS_PER_IP, Duration::from_secs(10)).finish();
}

// ---------------------------------------------------------------------------------------------
// 5. The largest proposal whose decoding cost the most.

/// What one big proposal got back.
#[derive(Debug)]
struct ProposalAnswer {
    after: Duration,
    answer: Result<Response, String>,
}

/// Encodes a committee of `members` members as a committee's bytes: pseudo-random keys in
/// increasing order (distinct, as a map's keys are), weight 1, empty addresses. Decompressing
/// a key costs about the same whether or not it lands on the curve, so they are as costly to
/// decode eagerly as real keys.
fn committee_bytes(members: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + members * COMMITTEE_MEMBER_BYTES);
    let mut count = members;
    loop {
        let byte = (count & 0x7f) as u8;
        count >>= 7;
        if count == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for member in 0..members as u64 {
        bytes.extend_from_slice(&member.to_be_bytes());
        for _ in 0..3 {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(0);
    }
    bytes
}

/// The largest `BlockProposal` that fits in one frame: on the admin chain, by its owner, with
/// one `CreateCommittee` of as many members as fit. Its frame and the number of members.
fn biggest_proposal(committee: &Committee) -> (Vec<u8>, usize) {
    let (admin, owner) = &committee.owners[0];
    let (_, info) = query_chain(committee.target, *admin, PROBE_TIMEOUT).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let frame = |members: usize| {
        let bytes = bcs::to_bytes(&committee_bytes(members)).unwrap();
        let encoded: EncodedCommittee = bcs::from_bytes(&bytes).unwrap();
        let block = Block {
            chain_id: *admin,
            epoch: info.info.epoch.unwrap_or(Epoch(0)),
            height: info.info.next_block_height,
            timestamp: Timestamp(info.info.timestamp.0.max(now.as_micros() as u64)),
            previous_block_hash: info.info.block_hash,
            authenticated_owner: owner.public(),
            incoming_bundles: Vec::new(),
            operations: vec![Operation::CreateCommittee(encoded)],
        };
        let proposal = BlockProposal::new(block, info.info.manager.current_round, owner);
        encode_request(0, Request::BlockProposal(Box::new(proposal)))
    };
    let overhead = frame(0).len() - LENGTH_PREFIX_LEN;
    // The member count's and the byte string's length prefixes take at most 5 bytes each.
    let mut members = (DEFAULT_MAX_FRAME_LENGTH - overhead - 10) / COMMITTEE_MEMBER_BYTES;
    loop {
        let encoded = frame(members);
        if encoded.len() - LENGTH_PREFIX_LEN <= DEFAULT_MAX_FRAME_LENGTH {
            return (encoded, members);
        }
        members -= 1;
    }
}

/// Sends `count` copies of `frame` (fresh request ids) on one connection, then reads the
/// answers.
async fn send_proposals(
    source: Ipv4Addr,
    target: SocketAddr,
    frame: Arc<Vec<u8>>,
    count: usize,
) -> Vec<ProposalAnswer> {
    let started = Instant::now();
    let mut stream = match connect_from(source, target).await {
        Ok(stream) => stream,
        Err(error) => {
            return vec![ProposalAnswer {
                after: started.elapsed(),
                answer: Err(format!("connect: {error}")),
            }]
        }
    };
    let id_at = LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8;
    for id in 0..count as u64 {
        let sent = async {
            stream.write_all(&frame[..id_at.start]).await?;
            stream.write_all(&id.to_le_bytes()).await?;
            stream.write_all(&frame[id_at.end..]).await
        };
        if let Err(error) = sent.await {
            return vec![ProposalAnswer {
                after: started.elapsed(),
                answer: Err(format!("send: {error}")),
            }];
        }
    }
    let mut answers = Vec::new();
    for _ in 0..count {
        let read = async {
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            stream.read_exact(&mut prefix).await?;
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let answer = match read.await {
            Ok(body) => FrameCodec::<Response>::decode_body(&body)
                .map(|envelope: Envelope<Response>| envelope.body)
                .map_err(|error| error.to_string()),
            Err(error) => Err(format!("read: {error}")),
        };
        let failed = answer.is_err();
        answers.push(ProposalAnswer {
            after: started.elapsed(),
            answer,
        });
        if failed {
            break;
        }
    }
    answers
}

/// Sends the largest committee proposal `per_connection` times on each of
/// [`PROPOSAL_CONNECTIONS`] connections at once and checks every one is refused at execution.
fn big_proposals_row(per_connection: usize) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let (frame, members) = biggest_proposal(&committee);
    let frame = Arc::new(frame);
    let frame_bytes = frame.len() as u64;
    let target = committee.target;
    let attacker = Attacker::launch(move |mut stop| async move {
        let sources = attacker_addresses(1);
        let sends = (0..PROPOSAL_CONNECTIONS)
            .map(|_| send_proposals(sources[0], target, frame.clone(), per_connection));
        // Told to stop before every answer came (the hold's end): what came is what counts.
        tokio::select! {
            answers = join_all(sends) => answers.into_iter().flatten().collect::<Vec<_>>(),
            () = stopped(&mut stop) => Vec::new(),
        }
    });
    let name = format!(
        "5. {PROPOSAL_CONNECTIONS} × {per_connection} proposals of {} creating a committee of {members} members",
        mib(frame_bytes)
    );
    let hold = Hold {
        min: Duration::from_secs(3),
        max: Duration::from_secs(60),
    };
    let (mut row, answers) = measure(&mut committee, baseline, &name, hold, attacker);
    let expected = NodeError::Execution(ExecutionError::InvalidCommittee(
        CommitteeError::TooManyMembers {
            members,
            max: MAX_COMMITTEE_MEMBERS,
        },
    ));
    let slowest = answers.iter().map(|a| a.after).max().unwrap_or_default();
    let refused = answers
        .iter()
        .filter(|a| matches!(&a.answer, Ok(Response::BlockProposal(Err(e))) if *e == expected))
        .count();
    row.note(format!(
        "{refused} of {} answered {expected:?}, the last {} after it was sent",
        PROPOSAL_CONNECTIONS * per_connection,
        ms(slowest)
    ));
    row.check(
        refused == PROPOSAL_CONNECTIONS * per_connection,
        format!("not every proposal was refused at execution: {answers:?}"),
    );
    row
}

/// The largest well-formed proposal whose decoding cost the most before the hardening (a
/// 16 MiB `BlockProposal` on the admin chain whose `CreateCommittee` holds ~409,000 members),
/// signed by the admin chain's owner so that it gets as far as execution, sent on four
/// connections at once: the committee travels as bytes and is refused at execution by its
/// member count, before any key is decoded.
#[test]
fn largest_committee_proposals_on_four_connections() {
    let _serial = serial();
    big_proposals_row(1).finish();
}

/// The same, four times on each connection (256 MiB of proposals, the whole receive budget).
#[test]
#[ignore = "heavy: 16 proposals of 16 MiB"]
fn largest_committee_proposals_four_times_on_four_connections() {
    let _serial = serial();
    big_proposals_row(HEAVY_PROPOSALS_PER_CONNECTION).finish();
}

// ---------------------------------------------------------------------------------------------
// 6. Blob uploads and pending blobs.

/// What the blob flood got back.
#[derive(Debug, Default)]
struct BlobFigures {
    sent: usize,
    /// Answers by kind ("UploadBlob: UnexpectedBlob", "PendingBlob: ok", …).
    answers: BTreeMap<String, usize>,
    closed: usize,
}

fn answer_kind(response: &Response) -> String {
    let what = match response.error() {
        None => "ok".to_string(),
        Some(NodeError::UnexpectedBlob(_)) => "UnexpectedBlob".to_string(),
        Some(error) => format!("{error:?}"),
    };
    format!("{}: {what}", response.kind())
}

/// Sends, for each `(template, counter)` of `requests`, that template with the counter as its
/// request id and as its blob's last 8 bytes (so that every blob is distinct), on one
/// connection, reading the answers meanwhile, within [`BLOB_SEND_WINDOW`]; then waits a little
/// for the last answers.
async fn blob_connection(
    source: Ipv4Addr,
    target: SocketAddr,
    templates: Arc<Vec<Vec<u8>>>,
    requests: Vec<(usize, u64)>,
    mut stop: Stop,
) -> BlobFigures {
    let mut figures = BlobFigures::default();
    let Ok(stream) = connect_from(source, target).await else {
        figures.closed = 1;
        return figures;
    };
    let (mut read, mut write) = stream.into_split();
    let expected = requests.len();
    let answers = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    // Reads every answer; whether the server closed the connection first.
    let reader = tokio::spawn({
        let answers = Arc::clone(&answers);
        async move {
            for _ in 0..expected {
                let mut prefix = [0u8; LENGTH_PREFIX_LEN];
                if read.read_exact(&mut prefix).await.is_err() {
                    return true;
                }
                let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
                if read.read_exact(&mut body).await.is_err() {
                    return true;
                }
                let kind = match FrameCodec::<Response>::decode_body(&body) {
                    Ok(envelope) => answer_kind(&envelope.body),
                    Err(error) => format!("undecodable: {error}"),
                };
                *answers.lock().unwrap().entry(kind).or_default() += 1;
            }
            false
        }
    });
    let until = Instant::now() + BLOB_SEND_WINDOW;
    let mut frames: Vec<Vec<u8>> = templates.as_ref().clone();
    for (template, counter) in requests {
        let frame = &mut frames[template];
        let length = frame.len();
        frame[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + 8].copy_from_slice(&counter.to_le_bytes());
        frame[length - 8..].copy_from_slice(&counter.to_le_bytes());
        let sent = tokio::select! {
            () = stopped(&mut stop) => false,
            () = tokio::time::sleep_until(until) => false,
            written = write.write_all(frame) => written.is_ok(),
        };
        if !sent {
            break;
        }
        figures.sent += 1;
    }
    // The last answers, for a little while.
    let closed = match tokio::time::timeout(BLOB_ANSWER_WAIT, reader).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => false,
    };
    figures.answers = answers.lock().unwrap().clone();
    figures.closed = usize::from(closed);
    figures
}

fn blob_flood_row(requests: usize, name: &str) -> (Row, BlobFigures) {
    let (mut committee, baseline) = committee_with_baseline();
    // Templates: one upload, and one pending blob per genesis chain (the blob's last 8 bytes
    // and the request id are changed per request).
    let blob = Blob::data(vec![0; FLOOD_BLOB_BYTES]);
    let mut templates = vec![encode_request(0, Request::UploadBlob(blob.clone()))];
    for (chain_id, _) in &committee.owners {
        templates.push(encode_request(
            0,
            Request::PendingBlob {
                chain_id: *chain_id,
                blob: blob.clone(),
            },
        ));
    }
    let templates = Arc::new(templates);
    let chains = templates.len() - 1;
    let target = committee.target;
    // Request i: an upload when i is even, else a pending blob for chain (i / 2) mod chains;
    // request i goes on connection i mod BLOB_CONNECTIONS.
    let attacker = Attacker::launch(move |stop| async move {
        let source = attacker_addresses(1)[0];
        let connections = (0..BLOB_CONNECTIONS).map(|c| {
            let requests: Vec<(usize, u64)> = (0..2 * requests)
                .filter(|i| i % BLOB_CONNECTIONS == c)
                .map(|i| {
                    let template = if i % 2 == 0 { 0 } else { 1 + (i / 2) % chains };
                    (template, i as u64)
                })
                .collect();
            blob_connection(source, target, templates.clone(), requests, stop.clone())
        });
        let mut all = BlobFigures::default();
        for figures in join_all(connections).await {
            all.sent += figures.sent;
            all.closed += figures.closed;
            for (kind, count) in figures.answers {
                *all.answers.entry(kind).or_default() += count;
            }
        }
        all
    });
    let hold = Hold {
        min: Duration::from_secs(3),
        max: BLOB_SEND_WINDOW + Duration::from_secs(5),
    };
    let (mut row, figures) = measure(&mut committee, baseline, name, hold, attacker);
    row.note(format!(
        "{} of {} requests sent; answers {:?}; {} connections closed by the server",
        figures.sent,
        2 * requests,
        figures.answers,
        figures.closed
    ));
    row.check(
        !figures.answers.contains_key("UploadBlob: ok"),
        "an upload nobody asked for was accepted",
    );
    (row, figures)
}

/// 200 uploads of 4 MiB blobs nobody asked for and 200 pending 4 MiB blobs for the genesis
/// chains, on four connections of one peer, within 15 s: uploads are refused
/// (`UnexpectedBlob`), pending blobs stop at each chain's byte quota.
#[test]
fn blob_uploads_and_pending_blobs() {
    let _serial = serial();
    let name =
        format!("6. {BLOB_REQUESTS} × 4 MiB uploads + {BLOB_REQUESTS} × 4 MiB pending blobs");
    let (row, _) = blob_flood_row(BLOB_REQUESTS, &name);
    row.finish();
}

/// The same at the scale measured before the hardening: 1,100 of each.
#[test]
#[ignore = "heavy: 2,200 requests of 4 MiB (8.6 GiB) within 15 s"]
fn blob_uploads_and_pending_blobs_at_scale() {
    let _serial = serial();
    let (row, _) = blob_flood_row(
        1_100,
        "6b. 1,100 × 4 MiB uploads + 1,100 × 4 MiB pending blobs",
    );
    row.finish();
}
