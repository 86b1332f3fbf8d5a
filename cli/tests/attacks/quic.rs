//! Attack 10. QUIC (DESIGN §6.2): every validator of the committee is reached over QUIC, and
//! honest commands run over it; validator 0 is attacked on its QUIC port.
//!
//! * **Handshake flood**: connections made as fast as the attacker can and held, from four
//!   addresses and from the many-attackers address set: the server admits at most its per
//!   address and total caps, at its handshake rate, and refuses the rest.
//! * **Spoofed-looking sources**: a client's first datagram, replayed from many addresses that
//!   never answer: the server answers each with a Retry only, and holds nothing for them.
//! * **Streams never read**: connections that open every stream they may, ask on half of them
//!   and never read the answers, and send nothing on the others.
//! * **Stalled streams**: streams that announce a largest request, send a part of it, and stop.
//!
//! Each runs with honest traffic meanwhile; the common checks hold the validator's RSS to its
//! level before plus [`RSS_HEADROOM_BYTES`] and honest commands to their bounds.

use super::*;

use quorum_core::{ChainId, ChainInfoQuery, NetworkPublicKey};
use quorum_transport_quic::{ClientConfig as QuicClientConfig, QuicValidatorNode};

use attack_kit::ATTACK_CONNECT_TIMEOUT;

/// Streams a QUIC connection may open at once on the server (its default).
const STREAMS_PER_CONNECTION: usize = 64;
/// Connections each attacking address tries to make in the handshake flood: twice the
/// per-address cap (64).
const FLOOD_PER_ADDRESS: usize = 128;
/// Connections per address of the stream attacks.
const STREAM_CONNECTIONS_PER_ADDRESS: usize = 2;
/// Bytes a stalled stream sends of the largest request it announces.
const STALLED_BYTES: usize = 256 << 10;
/// Times each spoofed-looking source sends the replayed first datagram.
const REPLAYS_PER_SOURCE: usize = 20;
/// How long an attack runs (the honest rounds keep going meanwhile).
const QUIC_HOLD: Duration = Duration::from_secs(8);

/// A committee over QUIC and its honest baseline.
fn quic_committee() -> (Committee, HonestTimes, SocketAddr, NetworkPublicKey) {
    let committee = Committee::start_quic();
    if let Err((_, (_, error))) = honest_round(&committee) {
        panic!("honest traffic fails without an attack: {error}");
    }
    let baseline = honest_baseline(&committee, BASELINE_ROUNDS);
    let (target, key) = committee.quic_target.unwrap();
    (committee, baseline, target, key)
}

/// Runs one attack against validator 0's QUIC port, on a fresh committee over QUIC with honest
/// traffic meanwhile for [`QUIC_HOLD`], and hands its row and figures to `report`, which
/// checks and finishes the row.
fn quic_attack<T, F, Fut>(name: &str, attack: F, report: impl FnOnce(Row, T))
where
    T: Send + 'static,
    F: FnOnce(SocketAddr, NetworkPublicKey, Stop) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let _serial = serial();
    let (mut committee, baseline, target, key) = quic_committee();
    let attacker = Attacker::launch(move |stop| attack(target, key, stop));
    let hold = Hold::fixed(QUIC_HOLD);
    let (row, figures) = measure(&mut committee, baseline, name, hold, attacker);
    report(row, figures);
}

/// A QUIC client of `target` sending from `source`.
fn client_from(source: Ipv4Addr, target: SocketAddr, key: NetworkPublicKey) -> QuicValidatorNode {
    let config = QuicClientConfig {
        local_address: Some(source.into()),
        connect_timeout: ATTACK_CONNECT_TIMEOUT,
        request_timeout: ATTACK_CONNECT_TIMEOUT,
        ..QuicClientConfig::default()
    };
    QuicValidatorNode::new(target.to_string(), key, config).unwrap()
}

/// What the handshake flood achieved.
#[derive(Debug, Default)]
struct FloodFigures {
    attempted: usize,
    admitted: usize,
    refused: usize,
}

/// Makes [`FLOOD_PER_ADDRESS`] connections from each of `sources` at once and holds those the
/// server admits until told to stop.
async fn handshake_flood(
    target: SocketAddr,
    key: NetworkPublicKey,
    sources: Vec<Ipv4Addr>,
    mut stop: Stop,
) -> FloodFigures {
    let clients: Vec<QuicValidatorNode> = sources
        .iter()
        .flat_map(|source| (0..FLOOD_PER_ADDRESS).map(move |_| *source))
        .map(|source| client_from(source, target, key))
        .collect();
    let attempts = clients
        .iter()
        .cloned()
        .map(|client| async move { client.connect().await.ok() });
    let connections = join_all(attempts).await;
    let figures = FloodFigures {
        attempted: connections.len(),
        admitted: connections.iter().flatten().count(),
        refused: connections.iter().filter(|c| c.is_none()).count(),
    };
    stopped(&mut stop).await;
    drop(connections);
    figures
}

fn run_flood(name: &str, sources: Vec<Ipv4Addr>) {
    // 64 per address, 1,024 in all.
    let cap = (sources.len() * 64).min(1024);
    let attack = move |target, key, stop| handshake_flood(target, key, sources, stop);
    quic_attack(name, attack, |mut row, figures: FloodFigures| {
        row.note(format!(
            "{} handshakes tried, {} admitted, {} refused",
            figures.attempted, figures.admitted, figures.refused
        ));
        row.check(
            figures.admitted <= cap,
            format!(
                "{} connections admitted, above the caps' {cap}",
                figures.admitted
            ),
        );
        row.finish();
    });
}

/// 128 handshakes from each of four addresses: at most 64 each are admitted.
#[test]
fn quic_handshake_flood_from_four_addresses() {
    run_flood(
        "10a. QUIC handshake flood, 4 × 128 connections",
        attacker_addresses(4),
    );
}

/// 128 handshakes from each of 16 addresses of the many-attackers set.
#[test]
fn quic_handshake_flood_from_many_addresses() {
    run_flood(
        "10b. QUIC handshake flood, 16 addresses × 128 connections",
        many_attacker_addresses(16),
    );
}

/// The first datagram a QUIC client sends to an address (its Initial packet), caught on a
/// socket of our own.
async fn first_datagram(key: NetworkPublicKey) -> Vec<u8> {
    let catcher = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = catcher.local_addr().unwrap();
    let client = client_from(Ipv4Addr::LOCALHOST, address, key);
    let connecting = tokio::spawn(async move { client.connect().await.is_ok() });
    let mut datagram = vec![0u8; 65_536];
    let (length, _) = catcher.recv_from(&mut datagram).await.unwrap();
    connecting.abort();
    datagram.truncate(length);
    datagram
}

/// Whether `packet` is a QUIC version 1 Retry: a long header whose type bits are 3.
fn is_retry(packet: &[u8]) -> bool {
    packet
        .first()
        .is_some_and(|first| first & 0x80 != 0 && (first >> 4) & 0x03 == 3)
}

/// What the spoofed-looking sources got back.
#[derive(Debug, Default)]
struct SpoofFigures {
    sent: usize,
    retries: usize,
    other_answers: usize,
}

/// Replays one client's first datagram from every one of `sources`, as a peer that spoofs its
/// source addresses would (it never completes the exchange), and reads what comes back.
async fn spoofed_initials(
    target: SocketAddr,
    key: NetworkPublicKey,
    sources: Vec<Ipv4Addr>,
    mut stop: Stop,
) -> SpoofFigures {
    let datagram = first_datagram(key).await;
    let mut figures = SpoofFigures::default();
    let mut sockets = Vec::new();
    for source in sources {
        if let Ok(socket) = tokio::net::UdpSocket::bind((source, 0)).await {
            sockets.push(socket);
        }
    }
    for _ in 0..REPLAYS_PER_SOURCE {
        for socket in &sockets {
            if socket.send_to(&datagram, target).await.is_ok() {
                figures.sent += 1;
            }
        }
    }
    // Read the answers until told to stop.
    let mut buffer = vec![0u8; 65_536];
    loop {
        let mut read_any = false;
        for socket in &sockets {
            while let Ok((length, _)) = socket.try_recv_from(&mut buffer) {
                read_any = true;
                if is_retry(&buffer[..length]) {
                    figures.retries += 1;
                } else {
                    figures.other_answers += 1;
                }
            }
        }
        if !read_any {
            tokio::select! {
                () = stopped(&mut stop) => return figures,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// One client's first datagram replayed 20 times from each of 254 addresses: only Retries
/// come back, and the server holds nothing for them.
#[test]
fn quic_spoofed_looking_sources_get_only_retries() {
    let sources = many_attacker_addresses(254);
    let attack = move |target, key, stop| spoofed_initials(target, key, sources, stop);
    let name = "10c. QUIC first datagrams replayed from 254 addresses";
    quic_attack(name, attack, |mut row, figures: SpoofFigures| {
        row.note(format!(
            "{} datagrams sent, {} Retries back, {} other answers",
            figures.sent, figures.retries, figures.other_answers
        ));
        row.check(
            figures.other_answers == 0,
            format!("{} answers that are not Retries", figures.other_answers),
        );
        row.check(figures.retries > 0, "no Retry came back".to_string());
        row.finish();
    });
}

/// What the stream attacks held.
#[derive(Debug, Default)]
struct StreamFigures {
    connections: usize,
    streams: usize,
}

/// From each of `sources`, [`STREAM_CONNECTIONS_PER_ADDRESS`] connections, all at once, that
/// open [`STREAMS_PER_CONNECTION`] streams each and send on stream `i` what `send(i)` gives;
/// no answer is ever read. Held until told to stop (which also cuts the opening short).
async fn streams_held(
    target: SocketAddr,
    key: NetworkPublicKey,
    sources: Vec<Ipv4Addr>,
    send: fn(usize) -> Vec<u8>,
    mut stop: Stop,
) -> StreamFigures {
    let connections = sources
        .iter()
        .flat_map(|source| (0..STREAM_CONNECTIONS_PER_ADDRESS).map(move |_| *source))
        .map(|source| one_connection(source, target, key, send, stop.clone()));
    let held = join_all(connections).await;
    let figures = StreamFigures {
        connections: held.iter().filter(|(streams, _)| streams.is_some()).count(),
        streams: held.iter().filter_map(|(streams, _)| *streams).sum(),
    };
    stopped(&mut stop).await;
    drop(held);
    figures
}

/// Something an attacker holds open until it stops.
type Held = Box<dyn std::any::Any + Send>;

/// One connection of [`streams_held`]: the streams it opened (`None` if it could not
/// connect), and what keeps them open.
async fn one_connection(
    source: Ipv4Addr,
    target: SocketAddr,
    key: NetworkPublicKey,
    send: fn(usize) -> Vec<u8>,
    stop: Stop,
) -> (Option<usize>, Vec<Held>) {
    let client = client_from(source, target, key);
    let Ok(connection) = client.connect().await else {
        return (None, Vec::new());
    };
    let mut held: Vec<Held> = vec![Box::new(client)];
    let mut streams = 0;
    for index in 0..STREAMS_PER_CONNECTION {
        if *stop.borrow() {
            break;
        }
        let opened = tokio::time::timeout(Duration::from_millis(200), connection.open_bi()).await;
        let Ok(Ok((mut sending, receiving))) = opened else {
            break;
        };
        let bytes = send(index);
        if !bytes.is_empty() {
            let write = sending.write_all(&bytes);
            let _ = tokio::time::timeout(Duration::from_millis(200), write).await;
        }
        streams += 1;
        held.push(Box::new((sending, receiving)));
    }
    (Some(streams), held)
}

/// A request as a QUIC stream carries it: its length, then its BCS encoding.
fn quic_frame(request: &Request) -> Vec<u8> {
    let body = bcs::to_bytes(request).unwrap();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Half the streams ask for a chain's information with its pending values, the other half
/// send nothing.
fn ask_or_nothing(index: usize) -> Vec<u8> {
    if index % 2 == 1 {
        return Vec::new();
    }
    let chain = ChainId(quorum_core::CryptoHash([index as u8; 32]));
    let mut query = ChainInfoQuery::new(chain);
    query.request_manager_values = true;
    quic_frame(&Request::ChainInfoQuery(Box::new(query)))
}

/// A largest request announced, [`STALLED_BYTES`] of it sent, then nothing.
fn stalled_request(_index: usize) -> Vec<u8> {
    let mut frame = (MAX_FRAME_LENGTH as u32).to_be_bytes().to_vec();
    frame.resize(4 + STALLED_BYTES, 0);
    frame
}

fn run_streams(name: &str, sources: Vec<Ipv4Addr>, send: fn(usize) -> Vec<u8>) {
    let attack = move |target, key, stop| streams_held(target, key, sources, send, stop);
    quic_attack(name, attack, |mut row, figures: StreamFigures| {
        row.note(format!(
            "{} connections, {} streams held",
            figures.connections, figures.streams
        ));
        row.check(figures.streams > 0, "no stream was opened".to_string());
        row.finish();
    });
}

/// Every stream of two connections from each of four addresses, half asking and never
/// reading, half silent.
#[test]
fn quic_streams_never_read_from_four_addresses() {
    run_streams(
        "10d. QUIC streams never read, 4 addresses × 2 connections × 64 streams",
        attacker_addresses(4),
        ask_or_nothing,
    );
}

/// The same from 32 addresses of the many-attackers set.
#[test]
fn quic_streams_never_read_from_many_addresses() {
    run_streams(
        "10e. QUIC streams never read, 32 addresses × 2 connections × 64 streams",
        many_attacker_addresses(32),
        ask_or_nothing,
    );
}

/// Stalled requests on every stream of two connections from each of four addresses.
#[test]
fn quic_stalled_streams_from_four_addresses() {
    run_streams(
        "10f. QUIC stalled requests, 4 addresses × 2 connections × 64 streams",
        attacker_addresses(4),
        stalled_request,
    );
}

/// The same from 32 addresses of the many-attackers set.
#[test]
fn quic_stalled_streams_from_many_addresses() {
    run_streams(
        "10g. QUIC stalled requests, 32 addresses × 2 connections × 64 streams",
        many_attacker_addresses(32),
        stalled_request,
    );
}
