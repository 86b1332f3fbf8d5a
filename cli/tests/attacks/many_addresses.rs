//! Attack 8. Many addresses (issue 27): the slow readers of attack 4 and the stalled frames of
//! attack 3, from many addresses, each in a /24 of its own and never in the honest client's
//! (127.0.0.0/24), or all filling one /24; and the two at once. The common checks hold the
//! validator to its RSS before the attack plus [`RSS_HEADROOM_BYTES`], and honest traffic,
//! 128 KiB requests included, to its bounds; the row records the RSS after the attack.

use super::*;

use pipelined_downloads::download_pipeline;
use stalled_frames::stalled_frames;

/// `count` loopback addresses, each in a /24 of its own, none in the honest client's:
/// 127.1.0.1, 127.2.0.1, …
fn spread_addresses(count: u8) -> Vec<Ipv4Addr> {
    (1..=count)
        .map(|group| Ipv4Addr::new(127, group, 0, 1))
        .collect()
}

/// `count` loopback addresses of one /24 that is not the honest client's: 127.77.0.1, …
fn one_group_addresses(count: u8) -> Vec<Ipv4Addr> {
    (1..=count)
        .map(|host| Ipv4Addr::new(127, 77, 0, host))
        .collect()
}

/// How long after an attack the validator's memory must be back near its level before it.
const GIVEN_BACK_AFTER: Duration = Duration::from_secs(10);
/// How far above its level before the attack the issue wants the validator's RSS then, in
/// bytes.
const GIVEN_BACK_HEADROOM_BYTES: u64 = 64 * MIB;

/// Heights of each download of the light form.
const LIGHT_HEIGHTS: usize = 100;

/// Connections per address of the slow readers.
const READERS_PER_ADDRESS: usize = 4;
/// Stalled frames per address, each announcing 16 MiB and sending almost all of it.
const STALLS_PER_ADDRESS: usize = 1;
/// Bytes of its body each stalled frame sends.
const STALL_BODY: usize = 15 << 20;

/// What the attackers did: for the slow readers, connections, downloads asked for and
/// connections closed by the server; for the stalled frames, connections, bytes written and
/// connections closed.
#[derive(Debug, Default)]
struct Figures {
    readers: Option<(usize, u64, usize)>,
    stalls: Option<(usize, u64, usize)>,
}

/// Slow readers (`readers` connections per address) and stalled frames (`stalls` per
/// address) from `sources`, against validator 0, held for `hold`.
///
/// The validator's RSS 10 s after the attack is recorded beside the target, its level
/// before + [`GIVEN_BACK_HEADROOM_BYTES`].
fn many_addresses_row(
    sources: Vec<Ipv4Addr>,
    readers: usize,
    stalls: usize,
    hold: Duration,
    name: &str,
) -> Row {
    many_addresses_row_of(sources, readers, stalls, PIPELINE_HEIGHTS, hold, name)
}

/// [`many_addresses_row`] with downloads of `heights` heights.
fn many_addresses_row_of(
    sources: Vec<Ipv4Addr>,
    readers: usize,
    stalls: usize,
    heights: usize,
    hold: Duration,
    name: &str,
) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let target = committee.target;
    let request = Request::DownloadCertificatesByHeights {
        chain_id: committee.chain(1),
        heights: vec![BlockHeight(0); heights],
    };
    let frame = Arc::new(encode_request(0, request));
    let attacker = Attacker::launch(move |stop| async move {
        let reading = (readers > 0).then(|| {
            let (sources, frame, stop) = (sources.clone(), frame.clone(), stop.clone());
            tokio::spawn(download_pipeline(
                target,
                sources.clone(),
                sources.len() * readers,
                frame,
                stop,
            ))
        });
        let stalling = (stalls > 0).then(|| {
            let (sources, stop) = (sources.clone(), stop.clone());
            tokio::spawn(stalled_frames(
                target,
                sources.clone(),
                sources.len() * stalls,
                STALL_BODY,
                stop,
            ))
        });
        let mut figures = Figures::default();
        if let Some(reading) = reading {
            if let Ok(done) = reading.await {
                figures.readers = Some((done.connected, done.requests_sent, done.closed));
            }
        }
        if let Some(stalling) = stalling {
            if let Ok(done) = stalling.await {
                figures.stalls = Some((done.connected, done.written, done.closed));
            }
        }
        figures
    });
    let idle = rss_bytes(committee.target_pid()).unwrap_or(0);
    let (mut row, figures) = measure(&mut committee, baseline, name, Hold::fixed(hold), attacker);
    // Memory given back: the validator's RSS 10 s after the attack ended (about 1 s of it has
    // passed in `measure`).
    std::thread::sleep(GIVEN_BACK_AFTER.saturating_sub(SETTLE));
    let later = rss_bytes(committee.target_pid()).unwrap_or(0);
    row.note(format!("RSS {} 10 s after the attack ended", mib(later)));
    // Recorded, not asserted: the target (before + 64 MiB) is not met reliably yet
    // (`BENCHMARKS.md`).
    row.note(format!(
        "target after: {} (before + {})",
        mib(idle + GIVEN_BACK_HEADROOM_BYTES),
        mib(GIVEN_BACK_HEADROOM_BYTES)
    ));
    if let Some((connected, sent, closed)) = figures.readers {
        row.note(format!(
            "slow readers: {connected} connected, {sent} downloads asked for, {closed} closed by the server"
        ));
    }
    if let Some((connected, written, closed)) = figures.stalls {
        row.note(format!(
            "stalled frames: {connected} connected, {} written, {closed} closed by the server",
            mib(written)
        ));
    }
    row
}

/// The light version for the normal run: 16 addresses in 16 /24s, one slow reader each,
/// downloads of [`LIGHT_HEIGHTS`] heights (in a debug build, the validator's unoptimised
/// handlers make the heavy form a test of the CPU).
#[test]
fn slow_readers_from_16_groups() {
    let _serial = serial();
    let name = "8. 16 addresses in 16 /24s × 1 connection pipelining downloads of 100 heights, never reading";
    many_addresses_row_of(
        spread_addresses(16),
        1,
        0,
        LIGHT_HEIGHTS,
        PIPELINE_HOLD,
        name,
    )
    .finish();
}

/// Slow readers from 254 addresses in 254 /24s: 1,016 connections pipelining downloads.
/// Before the server-wide budget, 39 addresses took validator 0 to +3.4 GiB.
#[test]
#[ignore = "heavy: 1,016 connections pipelining downloads (run with --release)"]
fn slow_readers_from_254_groups() {
    let _serial = serial();
    let name = "8a. 254 addresses in 254 /24s × 4 connections pipelining downloads, never reading";
    many_addresses_row(
        spread_addresses(254),
        READERS_PER_ADDRESS,
        0,
        Duration::from_secs(10),
        name,
    )
    .finish();
}

/// Slow readers from 254 addresses filling one /24.
#[test]
#[ignore = "heavy: 1,016 connections of one /24 pipelining downloads (run with --release)"]
fn slow_readers_filling_one_group() {
    let _serial = serial();
    let name = "8b. 254 addresses of one /24 × 4 connections pipelining downloads, never reading";
    many_addresses_row(
        one_group_addresses(254),
        READERS_PER_ADDRESS,
        0,
        Duration::from_secs(10),
        name,
    )
    .finish();
}

/// Almost whole 16 MiB frames, stalled, one per address from 254 addresses in 254 /24s
/// (4 GiB announced): honest 128 KiB requests are served from their group's floor.
#[test]
#[ignore = "heavy: 254 stalled frames of 15 MiB (run with --release)"]
fn stalled_frames_from_254_groups() {
    let _serial = serial();
    let name = "8c. 254 addresses in 254 /24s × 1 frame of 16 MiB, 15 MiB sent, stalled";
    many_addresses_row(
        spread_addresses(254),
        0,
        STALLS_PER_ADDRESS,
        STALL_WRITE_WINDOW + Duration::from_secs(5),
        name,
    )
    .finish();
}

/// Both at once from 254 addresses in 254 /24s.
#[test]
#[ignore = "heavy: slow readers and stalled frames from 254 addresses (run with --release)"]
fn slow_readers_and_stalled_frames_from_254_groups() {
    let _serial = serial();
    let name = "8d. 254 addresses in 254 /24s: 2 slow readers and 1 stalled 16 MiB frame each";
    many_addresses_row(
        spread_addresses(254),
        2,
        STALLS_PER_ADDRESS,
        Duration::from_secs(10),
        name,
    )
    .finish();
}
