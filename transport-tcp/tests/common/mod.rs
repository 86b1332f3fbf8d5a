//! Shared pieces of the behaviour tests: message types, a test handler, short-timeout configs, a
//! log capture and raw-socket helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorum_transport_tcp::{ClientConfig, Envelope, FrameCodec, Handler, Server, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{timeout, Instant};

/// How long a test waits for something that should happen almost at once.
pub const PATIENCE: Duration = Duration::from_secs(3);

/// What the tests ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Answer `Value(n)` at once.
    Echo(u64),
    /// Answer `Value(value)` after `millis` ms.
    Delayed { value: u64, millis: u64 },
    /// Never answer.
    Hang,
    /// Report entry, wait for the test to open the gate, answer `Value(n)`.
    Gate(u64),
    /// Answer with a blob of this many bytes.
    MakeBlob(u32),
    /// Carry a blob (to make a request large); answer its length.
    Blob(Vec<u8>),
    /// Panic in the handler.
    Panic,
    /// Keep the handler's thread busy for `millis` ms (work on the CPU), answer `Value(n)`.
    Busy { value: u64, millis: u64 },
}

/// What the tests get back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Value(u64),
    Blob(Vec<u8>),
}

/// A handler that also measures how many requests it runs at once.
#[derive(Clone)]
pub struct TestHandler {
    pub gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<u64>,
    running: Arc<AtomicUsize>,
    pub max_running: Arc<AtomicUsize>,
}

impl TestHandler {
    /// The handler and the receiver of `Gate` entries.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<u64>) {
        let (entered, entries) = mpsc::unbounded_channel();
        let handler = TestHandler {
            gate: Arc::new(Semaphore::new(0)),
            entered,
            running: Arc::new(AtomicUsize::new(0)),
            max_running: Arc::new(AtomicUsize::new(0)),
        };
        (handler, entries)
    }
}

impl Handler<Request, Response> for TestHandler {
    fn response_bound(&self, request: &Request) -> Option<usize> {
        // A made blob's response is exactly known; the rest take the reserve.
        match request {
            Request::MakeBlob(len) => Some(*len as usize + 64),
            _ => None,
        }
    }

    async fn handle(&self, request: Request) -> Response {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let response = match request {
            Request::Echo(value) => Response::Value(value),
            Request::Delayed { value, millis } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Response::Value(value)
            }
            Request::Hang => std::future::pending().await,
            Request::Gate(value) => {
                self.entered.send(value).unwrap();
                self.gate.acquire().await.unwrap().forget();
                Response::Value(value)
            }
            Request::MakeBlob(len) => Response::Blob(vec![7; len as usize]),
            Request::Blob(blob) => Response::Value(blob.len() as u64),
            Request::Panic => panic!("test handler asked to panic"),
            Request::Busy { value, millis } => {
                std::thread::sleep(Duration::from_millis(millis));
                Response::Value(value)
            }
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        response
    }
}

/// Server options with short timeouts, for tests.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        max_frame_length: 1024 * 1024,
        frame_read_timeout: Duration::from_millis(200),
        idle_timeout: None,
        write_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

/// Client options with short timeouts and one connection, for tests.
pub fn client_config() -> ClientConfig {
    ClientConfig {
        max_frame_length: 1024 * 1024,
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        pool_size: 1,
        ..ClientConfig::default()
    }
}

/// A server of the test handler on a free loopback port.
pub async fn start_server(
    config: ServerConfig,
) -> (Server, TestHandler, mpsc::UnboundedReceiver<u64>) {
    let (handler, entries) = TestHandler::new();
    let server = Server::bind("127.0.0.1:0", config, handler.clone())
        .await
        .unwrap();
    (server, handler, entries)
}

/// Waits until `condition` holds, for at most [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the server closes `stream` (end of stream or reset), for at most [`PATIENCE`].
pub async fn expect_closed(stream: &mut TcpStream) {
    let closed = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(PATIENCE, closed)
        .await
        .expect("the server did not close the connection");
}

/// A raw connection to `addr`, with its local address (what the server logs as the peer).
pub async fn raw_connection(addr: SocketAddr) -> (TcpStream, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let peer = stream.local_addr().unwrap().to_string();
    (stream, peer)
}

/// A raw connection to `addr` from the loopback address `source` (e.g. `"127.0.0.2"`: on Linux
/// every `127.0.0.0/8` address is local, so tests can play peers with different addresses).
pub async fn connection_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// The complete frame (length prefix and body) of `request` under `request_id`.
pub fn request_frame(request_id: u64, request: Request) -> Vec<u8> {
    FrameCodec::<Request>::new(usize::MAX)
        .encode_frame(&Envelope {
            request_id,
            body: request,
        })
        .unwrap()
        .to_vec()
}

/// Whether the server has closed `stream`: end of stream or reset within `within`; `false` if
/// it is still open (nothing arrives) by then. Data the server sent first is skipped.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let closed = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(within, closed).await.is_ok()
}

/// Captures log output of the current thread (tests run on a current-thread runtime, so every
/// task logs on this thread).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Starts capturing until the guard is dropped.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, guard)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Whether one line contains every one of `parts`.
    pub fn has_line_with(&self, parts: &[&str]) -> bool {
        self.text()
            .lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many connections closed for misbehaviour the captured log `text` accounts for: one per
/// line of its own ("closing connection"), plus the counts of the summaries
/// (`closed_for_misbehaviour=N`).
pub fn closings_logged(text: &str) -> u64 {
    let lone = text
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("closing connection"))
        .count() as u64;
    let summarised: u64 = text
        .lines()
        .filter_map(|line| line.split("closed_for_misbehaviour=").nth(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    lone + summarised
}
