//! Connection caps (DESIGN §6.1): connections beyond the per-IP or the total limit are closed at
//! once, counted and logged in rate-limited summaries, while the connections already open, and
//! an honest client from another address, keep being served; when the server is full, the
//! address holding the most connections gives one up to a newcomer holding fewer.
//!
//! Peers play different addresses from `127.0.0.0/8` (all local on Linux).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::Duration;

use common::{
    client_config, closed_within, connection_from, eventually, request_frame, server_config,
    start_server, LogCapture, Request, Response, PATIENCE,
};
use quorum_transport_tcp::{Client, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Caps small enough for a handful of connections to reach them; deadlines long enough not to
/// close the attacker's silent connections during the test.
fn capped(max_connections: usize, max_connections_per_ip: usize) -> ServerConfig {
    ServerConfig {
        max_connections,
        max_connections_per_ip,
        first_frame_timeout: Duration::from_secs(30),
        log_interval: Duration::from_secs(30),
        ..server_config()
    }
}

/// Opens `count` connections from `source` and waits until the server has admitted them all.
async fn hold(server: &Server, source: &str, count: usize) -> Vec<TcpStream> {
    let before = server.active_connections();
    let mut held = Vec::new();
    for _ in 0..count {
        held.push(connection_from(source, server.local_addr()).await);
    }
    eventually("the connections are admitted", || {
        server.active_connections() == before + count
    })
    .await;
    held
}

/// A connection that is open and served: it gets the answer to an echo.
async fn is_served(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(&request_frame(9, Request::Echo(9)))
        .await
        .is_err()
    {
        return false;
    }
    let mut prefix = [0u8; 4];
    matches!(
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut prefix)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn the_per_ip_cap_refuses_the_excess_and_others_are_still_served() {
    let (logs, _guard) = LogCapture::start();
    let (server, _, _) = start_server(capped(100, 3)).await;
    let mut held = hold(&server, "127.0.0.2", 3).await;

    // The fourth and fifth from the same address are closed at once, not left hanging.
    for _ in 0..2 {
        let mut refused = connection_from("127.0.0.2", server.local_addr()).await;
        assert!(closed_within(&mut refused, PATIENCE).await, "not refused");
    }
    assert_eq!(server.stats().refused_connections, 2);
    assert_eq!(server.active_connections(), 3);

    // The connections already open are served; so is a client from another address.
    for stream in &mut held {
        assert!(is_served(stream).await);
    }
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );

    // Once the attacker's connections close, its address gets places again.
    drop(held);
    eventually("the attacker's places are freed", || {
        server.active_connections() == 1
    })
    .await;
    let mut again = connection_from("127.0.0.2", server.local_addr()).await;
    assert!(is_served(&mut again).await);
    assert!(logs.has_line_with(&["WARN", "connections refused", "refused_over_per_ip=1"]));
}

#[tokio::test]
async fn the_total_cap_refuses_the_excess_when_no_address_holds_more_than_its_fair_part() {
    let (server, _, _) = start_server(capped(5, 2)).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    let mut held = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        held.extend(hold(&server, source, 1).await);
    }
    assert_eq!(server.active_connections(), 5);

    // Every address holds one: a newcomer from a sixth address is refused, nobody evicted.
    let mut refused = connection_from("127.0.0.6", server.local_addr()).await;
    assert!(closed_within(&mut refused, PATIENCE).await, "not refused");
    let stats = server.stats();
    assert_eq!(
        (stats.refused_connections, stats.evicted_connections),
        (1, 0)
    );

    // The honest client got its place before the cap was reached and keeps it.
    for value in 2..5 {
        assert_eq!(
            honest.request(Request::Echo(value)).await,
            Ok(Response::Value(value))
        );
    }
    for stream in &mut held {
        assert!(is_served(stream).await);
    }
}

#[tokio::test]
async fn when_full_a_newcomer_takes_the_place_of_the_address_holding_the_most() {
    // An attacker fills the server from two addresses, as one with many addresses would.
    let (server, _, _) = start_server(capped(6, 4)).await;
    let mut heavy = hold(&server, "127.0.0.2", 4).await;
    let mut light = hold(&server, "127.0.0.3", 2).await;
    assert_eq!(server.active_connections(), 6);

    // An honest client from a third address is admitted and served at once: one of the
    // heaviest address's connections gives way.
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    let stats = server.stats();
    assert_eq!(
        (stats.evicted_connections, stats.refused_connections),
        (1, 0)
    );
    eventually("the evicted connection has closed", || {
        server.active_connections() == 6
    })
    .await;
    let mut closed = 0;
    for stream in &mut heavy {
        if closed_within(stream, Duration::from_millis(100)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 1,
        "exactly one of the heaviest address's connections"
    );
    for stream in &mut light {
        assert!(
            is_served(stream).await,
            "the lighter address keeps its places"
        );
    }

    // The heaviest address gains nothing by reconnecting: nobody holds two more than its 3, so
    // it is refused, and neither the lighter address nor the honest client is evicted for it.
    let mut again = connection_from("127.0.0.2", server.local_addr()).await;
    assert!(closed_within(&mut again, PATIENCE).await, "not refused");
    assert_eq!(server.stats().refused_connections, 1);
    assert_eq!(
        honest.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
}

#[tokio::test]
async fn a_flood_of_refusals_is_logged_in_a_few_summary_lines() {
    let (logs, _guard) = LogCapture::start();
    let interval = Duration::from_millis(500);
    let config = ServerConfig {
        log_interval: interval,
        ..capped(100, 1)
    };
    let (server, _, _) = start_server(config).await;
    let _held = hold(&server, "127.0.0.2", 1).await;

    const FLOOD: u64 = 40;
    let started = Instant::now();
    for _ in 0..FLOOD {
        let mut refused = connection_from("127.0.0.2", server.local_addr()).await;
        assert!(closed_within(&mut refused, PATIENCE).await, "not refused");
    }
    let flood_took = started.elapsed();
    assert_eq!(server.stats().refused_connections, FLOOD);

    // Every refusal ends up in a summary, once the last interval has passed.
    let summarised = || -> (u64, usize) {
        let text = logs.text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("connections refused"))
            .collect();
        let counted = lines
            .iter()
            .filter_map(|line| {
                let (_, rest) = line.split_once("refused_over_per_ip=")?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum();
        (counted, lines.len())
    };
    let deadline = Instant::now() + interval * 10;
    while summarised().0 < FLOOD {
        assert!(
            Instant::now() < deadline,
            "summaries missing:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (counted, lines) = summarised();
    assert_eq!(counted, FLOOD);
    // At most one line per interval (one at once, then one per interval begun since).
    let allowed = 2 + (flood_took.as_millis() / interval.as_millis()) as usize;
    assert!(
        lines <= allowed,
        "{lines} lines for {FLOOD} refusals in {flood_took:?}"
    );
    let debug_lines = logs
        .text()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("refus"))
        .count();
    assert_eq!(debug_lines, lines, "no warning per refusal");
}
