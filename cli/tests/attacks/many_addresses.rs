//! Attack 8. Many addresses (issue 27): the slow readers of attack 4, the stalled frames of
//! attack 3 and the blob flood of attack 6, from many addresses, each in a /24 of its own and
//! never in the honest client's (127.0.0.0/24), or all filling one /24; and all three at once. The common checks hold the
//! validator to its RSS before the attack plus [`RSS_HEADROOM_BYTES`], and honest traffic,
//! 128 KiB requests included, to its bounds; and 10 s after the attack, its RSS must be back
//! within 64 MiB of its level before.

use super::*;

use blob_flood::{blob_flood, blob_templates, check_blob_answers, BlobFigures};
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
/// 4 MiB uploads and pending blobs per address of the blob flood.
const BLOBS_PER_ADDRESS: usize = 4;
/// How long the heavy forms are held.
const HEAVY_HOLD: Duration = Duration::from_secs(10);
/// The mix of all three, per address: two slow readers, one stalled frame, a blob flood.
const MIX: Form = Form {
    readers: 2,
    heights: PIPELINE_HEIGHTS,
    stalls: STALLS_PER_ADDRESS,
    blobs: BLOBS_PER_ADDRESS,
};

/// What each attacking address does.
#[derive(Debug, Clone, Copy)]
struct Form {
    /// Connections pipelining downloads and never reading.
    readers: usize,
    /// Heights of each download.
    heights: usize,
    /// Connections each stalling a frame of 16 MiB.
    stalls: usize,
    /// 4 MiB uploads and pending blobs nobody asked for, on one connection.
    blobs: usize,
}

impl Form {
    /// Only slow readers, `readers` per address, downloading [`PIPELINE_HEIGHTS`] heights.
    fn readers(readers: usize) -> Self {
        Form {
            readers,
            heights: PIPELINE_HEIGHTS,
            stalls: 0,
            blobs: 0,
        }
    }
}

/// What the attackers did: for the slow readers, connections, downloads asked for and
/// connections closed by the server; for the stalled frames, connections, bytes written and
/// connections closed; for the blob flood, what it sent and got back.
#[derive(Debug, Default)]
struct Figures {
    readers: Option<(usize, u64, usize)>,
    stalls: Option<(usize, u64, usize)>,
    blobs: Option<BlobFigures>,
}

/// The attack of `form` from every address of `sources`, against validator 0, held for
/// `hold`.
///
/// Besides the common checks, the validator's RSS 10 s after the attack must be within
/// [`GIVEN_BACK_HEADROOM_BYTES`] of its level before.
fn many_addresses_row(sources: Vec<Ipv4Addr>, form: Form, hold: Duration, name: &str) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let target = committee.target;
    let request = Request::DownloadCertificatesByHeights {
        chain_id: committee.chain(1),
        heights: vec![BlockHeight(0); form.heights],
    };
    let frame = Arc::new(encode_request(0, request));
    let templates = blob_templates(&committee);
    let blob_requests = sources.len() * form.blobs;
    let attacker = Attacker::launch(move |stop| async move {
        let count = sources.len();
        let reading = (form.readers > 0).then(|| {
            let (sources, frame, stop) = (sources.clone(), frame.clone(), stop.clone());
            tokio::spawn(download_pipeline(
                target,
                sources,
                count * form.readers,
                frame,
                stop,
            ))
        });
        let stalling = (form.stalls > 0).then(|| {
            let (sources, stop) = (sources.clone(), stop.clone());
            tokio::spawn(stalled_frames(
                target,
                sources,
                count * form.stalls,
                STALL_BODY,
                stop,
            ))
        });
        let flooding = (form.blobs > 0).then(|| {
            let (sources, stop) = (sources.clone(), stop.clone());
            tokio::spawn(blob_flood(
                target,
                sources,
                1,
                blob_requests,
                templates,
                stop,
            ))
        });
        let mut figures = Figures::default();
        if let Some(Ok(done)) = join_some(reading).await {
            figures.readers = Some((done.connected, done.requests_sent, done.closed));
        }
        if let Some(Ok(done)) = join_some(stalling).await {
            figures.stalls = Some((done.connected, done.written, done.closed));
        }
        if let Some(Ok(done)) = join_some(flooding).await {
            figures.blobs = Some(done);
        }
        figures
    });
    let idle = rss_bytes(committee.target_pid()).unwrap_or(0);
    // A blob flood ends on its own, within its sending window.
    let hold = if form.blobs > 0 {
        Hold {
            min: hold,
            max: hold.max(BLOB_SEND_WINDOW + Duration::from_secs(5)),
        }
    } else {
        Hold::fixed(hold)
    };
    let (mut row, figures) = measure(&mut committee, baseline, name, hold, attacker);
    // Memory given back: the validator's RSS 10 s after the attack ended (about 1 s of it has
    // passed in `measure`).
    std::thread::sleep(GIVEN_BACK_AFTER.saturating_sub(SETTLE));
    let later = rss_bytes(committee.target_pid()).unwrap_or(0);
    row.note(format!("RSS {} 10 s after the attack ended", mib(later)));
    row.check(
        later <= idle + GIVEN_BACK_HEADROOM_BYTES,
        format!(
            "RSS {} 10 s after the attack, more than {} over its {} before",
            mib(later),
            mib(GIVEN_BACK_HEADROOM_BYTES),
            mib(idle)
        ),
    );
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
    if let Some(blobs) = figures.blobs {
        row.note(format!(
            "blob flood: {} of {} requests of 4 MiB sent; answers {:?}; {} connections closed by the server",
            blobs.sent,
            blob_requests,
            blobs.answers,
            blobs.closed
        ));
        check_blob_answers(&mut row, &blobs);
    }
    row
}

/// Awaits a task that may not have been started.
async fn join_some<T>(
    task: Option<tokio::task::JoinHandle<T>>,
) -> Option<Result<T, tokio::task::JoinError>> {
    match task {
        Some(task) => Some(task.await),
        None => None,
    }
}

/// The light version for the normal run: 16 addresses in 16 /24s, one slow reader each,
/// downloads of [`LIGHT_HEIGHTS`] heights (in a debug build, the validator's unoptimised
/// handlers make the heavy form a test of the CPU).
#[test]
fn slow_readers_from_16_groups() {
    let _serial = serial();
    let name = "8. 16 addresses in 16 /24s × 1 connection pipelining downloads of 100 heights, never reading";
    let form = Form {
        heights: LIGHT_HEIGHTS,
        ..Form::readers(1)
    };
    many_addresses_row(spread_addresses(16), form, PIPELINE_HOLD, name).finish();
}

/// Slow readers from 254 addresses in 254 /24s: 1,016 connections pipelining downloads.
/// Before the server-wide budget, 39 addresses took validator 0 to +3.4 GiB.
#[test]
#[ignore = "heavy: 1,016 connections pipelining downloads (run with --release)"]
fn slow_readers_from_254_groups() {
    let _serial = serial();
    let name = "8a. 254 addresses in 254 /24s × 4 connections pipelining downloads, never reading";
    let form = Form::readers(READERS_PER_ADDRESS);
    many_addresses_row(spread_addresses(254), form, HEAVY_HOLD, name).finish();
}

/// Slow readers from 254 addresses filling one /24.
#[test]
#[ignore = "heavy: 1,016 connections of one /24 pipelining downloads (run with --release)"]
fn slow_readers_filling_one_group() {
    let _serial = serial();
    let name = "8b. 254 addresses of one /24 × 4 connections pipelining downloads, never reading";
    let form = Form::readers(READERS_PER_ADDRESS);
    many_addresses_row(one_group_addresses(254), form, HEAVY_HOLD, name).finish();
}

/// Almost whole 16 MiB frames, stalled, one per address from 254 addresses in 254 /24s
/// (4 GiB announced): honest 128 KiB requests are served from their group's floor.
#[test]
#[ignore = "heavy: 254 stalled frames of 15 MiB (run with --release)"]
fn stalled_frames_from_254_groups() {
    let _serial = serial();
    let name = "8c. 254 addresses in 254 /24s × 1 frame of 16 MiB, 15 MiB sent, stalled";
    let form = Form {
        stalls: STALLS_PER_ADDRESS,
        ..Form::readers(0)
    };
    let hold = STALL_WRITE_WINDOW + Duration::from_secs(5);
    many_addresses_row(spread_addresses(254), form, hold, name).finish();
}

/// Slow readers and stalled frames at once from 254 addresses in 254 /24s.
#[test]
#[ignore = "heavy: slow readers and stalled frames from 254 addresses (run with --release)"]
fn slow_readers_and_stalled_frames_from_254_groups() {
    let _serial = serial();
    let name = "8d. 254 addresses in 254 /24s: 2 slow readers and 1 stalled 16 MiB frame each";
    let form = Form {
        stalls: STALLS_PER_ADDRESS,
        ..Form::readers(2)
    };
    many_addresses_row(spread_addresses(254), form, HEAVY_HOLD, name).finish();
}

/// 4 MiB uploads and pending blobs nobody asked for, [`BLOBS_PER_ADDRESS`] from each of 254
/// addresses in 254 /24s: none is accepted, and honest 128 KiB requests are still answered.
#[test]
#[ignore = "heavy: 1,016 requests of 4 MiB from 254 addresses (run with --release)"]
fn pending_blob_flood_from_254_groups() {
    let _serial = serial();
    let name = "8e. 254 addresses in 254 /24s × 4 blobs of 4 MiB (uploads and pending blobs)";
    let form = Form {
        blobs: BLOBS_PER_ADDRESS,
        ..Form::readers(0)
    };
    many_addresses_row(spread_addresses(254), form, HEAVY_HOLD, name).finish();
}

/// The three at once from 254 addresses in 254 /24s: slow readers, a stalled frame and a blob
/// flood from each.
#[test]
#[ignore = "heavy: slow readers, stalled frames and blob floods from 254 addresses (run with --release)"]
fn all_three_from_254_groups() {
    let _serial = serial();
    let name = "8f. 254 addresses in 254 /24s: 2 slow readers, 1 stalled 16 MiB frame, 4 blobs of 4 MiB each";
    many_addresses_row(spread_addresses(254), MIX, HEAVY_HOLD, name).finish();
}

/// The three at once from 254 addresses filling one /24.
#[test]
#[ignore = "heavy: slow readers, stalled frames and blob floods from one /24 (run with --release)"]
fn all_three_filling_one_group() {
    let _serial = serial();
    let name = "8g. 254 addresses of one /24: 2 slow readers, 1 stalled 16 MiB frame, 4 blobs of 4 MiB each";
    many_addresses_row(one_group_addresses(254), MIX, HEAVY_HOLD, name).finish();
}
