//! Attack 2. Slowloris.

use super::*;

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
    let deadline = SLOWLORIS_DRIP * 2 + server().frame_read_timeout;
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
