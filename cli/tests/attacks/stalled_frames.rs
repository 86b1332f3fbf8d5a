//! Attack 3. Almost whole 16 MiB frames, then a stall.

use super::*;

/// What the stalled-frame connections saw.
#[derive(Debug, Default)]
pub(crate) struct StallFigures {
    pub(crate) connected: usize,
    /// Bytes the attacker got written, in all (what the server read plus what the kernels'
    /// socket buffers took).
    pub(crate) written: u64,
    /// Connections on which writing stopped because the server stopped reading.
    pub(crate) blocked: usize,
    /// Connections the server closed while the attacker wrote or stalled.
    pub(crate) closed: usize,
}

/// Announces a frame of 16 MiB − 1 and writes at most `body` bytes of it for as long as
/// `window` allows (the write waits when the server stops reading); the bytes written and
/// whether the connection failed.
async fn stalled_frame(
    stream: &mut tokio::net::TcpStream,
    body: usize,
    window: Duration,
) -> (u64, bool) {
    let length = MAX_FRAME_LENGTH - 1;
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
pub(crate) async fn stalled_frames(
    target: SocketAddr,
    sources: Vec<Ipv4Addr>,
    count: usize,
    body: usize,
    mut stop: Stop,
) -> StallFigures {
    let (streams, _) = connect_many(&sources, target, count, CONNECT_BATCH).await;
    let connected = streams.len();
    let written = join_all(streams.into_iter().map(|mut stream| async move {
        let (written, failed) = stalled_frame(&mut stream, body, STALL_WRITE_WINDOW).await;
        (stream, written, failed)
    }))
    .await;
    let mut figures = StallFigures {
        connected,
        ..StallFigures::default()
    };
    let wanted = (LENGTH_PREFIX_LEN + body.min(MAX_FRAME_LENGTH - 1)) as u64;
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
/// server reads within 3 s, then stall: each address holds at most its share of the receive
/// budget (32 MiB), so four addresses hold at most half of it, and honest large frames (a
/// blob upload, a pending blob, a batch of certificates) are served meanwhile.
///
/// Before the per-address shares (release build): the stalled frames held the whole receive
/// budget (256 MiB) until their frame deadline (5 s + 16 s), even once their peer had gone,
/// and every honest 128 KiB pending blob to validator 0 was closed as starved after 5.1 s.
#[test]
#[ignore = "heavy: 200 frames of almost 16 MiB (run with --release)"]
fn almost_whole_16_mib_frames_then_a_stall() {
    let _serial = serial();
    let name = format!("3. {STALL_CONNECTIONS} × almost 16 MiB frames, stalled");
    let hold = STALL_WRITE_WINDOW + Duration::from_secs(3);
    let (row, _) = stalled_frames_row(MAX_FRAME_LENGTH, hold, &name);
    row.finish();
}

/// The same, held until the server's own frame deadline (5 s + 16 s for 16 MiB) has closed
/// every stalled connection.
#[test]
#[ignore = "heavy: holds 200 stalled 16 MiB frames for 30 s, until the server's frame deadline"]
fn almost_whole_16_mib_frames_stalled_until_the_frame_deadline() {
    let _serial = serial();
    let name = format!("3b. {STALL_CONNECTIONS} × almost 16 MiB frames, stalled 30 s");
    let (mut row, figures) = stalled_frames_row(MAX_FRAME_LENGTH, Duration::from_secs(30), &name);
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
