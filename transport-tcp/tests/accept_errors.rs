//! A failing `accept` (here: the process is out of file descriptors, EMFILE) backs off instead of
//! spinning, is logged in rate-limited summaries, and the waiting connection is served once
//! descriptors are free again.
//!
//! Alone in its binary: it exhausts the descriptors of the whole test process for a moment.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::fs::File;
use std::time::Duration;

use common::{request_frame, server_config, start_server, LogCapture, Request};
use quorum_transport_tcp::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// Most files this test opens to run out of descriptors; with a higher limit it is skipped.
const MAX_FILES: usize = 70_000;
/// `EMFILE` on Linux.
const EMFILE: i32 = 24;

/// Opens files until the process runs out of descriptors; `None` if the limit is too high.
fn exhaust_descriptors() -> Option<Vec<File>> {
    let mut files = Vec::new();
    while files.len() < MAX_FILES {
        match File::open("/dev/null") {
            Ok(file) => files.push(file),
            Err(error) if error.raw_os_error() == Some(EMFILE) => return Some(files),
            Err(error) => panic!("cannot open /dev/null: {error}"),
        }
    }
    None
}

#[tokio::test]
async fn accept_errors_back_off_are_summarised_and_the_connection_is_served_later() {
    let (logs, _guard) = LogCapture::start();
    let config = ServerConfig {
        first_frame_timeout: Duration::from_secs(30),
        log_interval: Duration::from_secs(30),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    // The client's socket exists before the descriptors run out; connecting needs no new one.
    let socket = TcpSocket::new_v4().unwrap();

    let Some(files) = exhaust_descriptors() else {
        eprintln!("skipped: more than {MAX_FILES} descriptors allowed");
        return;
    };
    let mut stream = socket.connect(server.local_addr()).await.unwrap();
    let exhausted = Duration::from_secs(1);
    tokio::time::sleep(exhausted).await;
    let errors = server.stats().accept_errors;
    drop(files);

    // A spinning loop would fail thousands of times a second; backing off from 5 ms, doubling,
    // fails about eight times in a second.
    assert!((2..=20).contains(&errors), "{errors} failed accepts");
    let lines = logs
        .text()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("accept failing"))
        .count();
    assert_eq!(lines, 1, "one line at once, the rest summarised later");
    assert!(logs.has_line_with(&["accept_errors=1", "last_accept_error"]));

    // Descriptors are free again: the waiting connection is accepted (within the last pause,
    // at most 1 s) and served.
    let started = Instant::now();
    stream
        .write_all(&request_frame(1, Request::Echo(1)))
        .await
        .unwrap();
    let mut prefix = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut prefix))
        .await
        .expect("the connection was never accepted")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.active_connections(), 1);
}
