//! Target 5: the TCP transport on loopback.
//!
//! * `tcp_round_trip_<size>`: one request round trip through our generic layer (`Client` with a
//!   pool of one connection → `Server` with an echo `Handler`), beside a bare tokio loopback
//!   echo of the same bytes: the very frames our layer puts on the wire (length prefix and BCS
//!   envelope), written by one task and echoed back by another, `TCP_NODELAY` on both sides.
//!   Ours runs twice: with `Vec<u8>` messages (serde handles them one byte at a time) and with a
//!   byte-string type that serde handles as one slice (the same bytes on the wire).
//! * `tcp_in_flight_64`: 64 requests of 64 bytes on one connection, one at a time (each answer
//!   awaited) and all 64 in flight at once; criterion reports requests per second. The bare echo
//!   does the same (one at a time, and 64 frames written before reading the 64 answers) for
//!   context.
//!
//! Every measured loop runs in a task on the runtime's worker threads (`run_spawned`), as client
//! code does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::future::join_all;
use quorum_benches::{run_spawned, runtime, settings};
use quorum_testkit::must;
use quorum_transport_tcp::{Client, ClientConfig, Envelope, Server, ServerConfig, WireMessage};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// Requests in flight in the pipelined case.
const IN_FLIGHT: usize = 64;

/// A byte string that serde handles as one slice (`serialize_bytes`), like `serde_bytes` does:
/// the same BCS bytes as a `Vec<u8>` (length, then the bytes), encoded and decoded in one copy
/// instead of one serde call per byte.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Payload(Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
                Ok(Payload(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(bytes))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// A client of an echo server whose messages are `T`.
type EchoClient<T> = Client<T, T>;

/// Our generic layer: an echo server of `T` and a client with a single connection.
async fn our_echo<T: WireMessage + Clone>(first: T) -> (Server, EchoClient<T>) {
    let server = must(
        Server::bind(
            "127.0.0.1:0",
            ServerConfig::default(),
            |request: T| async move { request },
        )
        .await,
        "binding the echo server",
    );
    let config = ClientConfig {
        pool_size: 1,
        ..ClientConfig::default()
    };
    let client = must(
        EchoClient::new(server.local_addr().to_string(), config),
        "building the client",
    );
    // Opens the connection outside the measured time.
    must(client.request(first).await, "a first request");
    (server, client)
}

/// The frame our layer sends for `payload` (request id 0): length prefix, then the BCS envelope.
fn frame_of(payload: &[u8]) -> Vec<u8> {
    let body = must(
        bcs::to_bytes(&Envelope {
            request_id: 0,
            body: payload.to_vec(),
        }),
        "encoding a frame",
    );
    let mut frame = must(u32::try_from(body.len()), "frame length")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// The bare echo server: reads whole frames and writes each back as it is.
async fn bare_echo_server() -> SocketAddr {
    let listener = must(
        TcpListener::bind("127.0.0.1:0").await,
        "binding the bare echo",
    );
    let address = must(listener.local_addr(), "bare echo address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut frame = Vec::new();
                loop {
                    let mut prefix = [0u8; 4];
                    if stream.read_exact(&mut prefix).await.is_err() {
                        return;
                    }
                    let length = u32::from_be_bytes(prefix) as usize;
                    frame.clear();
                    frame.extend_from_slice(&prefix);
                    frame.resize(4 + length, 0);
                    if stream.read_exact(&mut frame[4..]).await.is_err()
                        || stream.write_all(&frame).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// A bare echo client: one connection.
struct BareClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl BareClient {
    async fn connect(address: SocketAddr) -> Self {
        let stream = must(
            TcpStream::connect(address).await,
            "connecting to the bare echo",
        );
        must(stream.set_nodelay(true), "TCP_NODELAY");
        BareClient {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes `frames` back to back, then reads as many echoed frames.
    async fn exchange(&mut self, frame: &[u8], count: usize) {
        for _ in 0..count {
            must(self.stream.write_all(frame).await, "writing a frame");
        }
        for _ in 0..count {
            let mut prefix = [0u8; 4];
            must(
                self.stream.read_exact(&mut prefix).await,
                "reading a prefix",
            );
            self.buffer.resize(u32::from_be_bytes(prefix) as usize, 0);
            must(
                self.stream.read_exact(&mut self.buffer).await,
                "reading a body",
            );
        }
    }
}

/// Benches `$body` (an expression awaited once per iteration, using the variables `$state`
/// cloned into the task, and `$prepared`, set up in the task before the clock starts) as
/// `$name` in `$group`: whole loops of iterations run in one task on the runtime's workers (see
/// `run_spawned`).
macro_rules! bench_spawned {
    ($group:expr, $rt:expr, $name:expr, ($($state:ident),*), $body:expr) => {
        bench_spawned!($group, $rt, $name, ($($state),*), let _unused = (); $body)
    };
    ($group:expr, $rt:expr, $name:expr, ($($state:ident),*), let $prepared:pat = $prepare:expr; $body:expr) => {
        $group.bench_function($name, |b| {
            b.iter_custom(|iters| {
                $(let $state = $state.clone();)*
                run_spawned(&$rt, async move {
                    let $prepared = $prepare;
                    let start = Instant::now();
                    for _ in 0..iters {
                        $body.await;
                    }
                    start.elapsed()
                })
            })
        })
    };
}

/// One echo of a `Vec<u8>` through our layer.
async fn our_request(client: &EchoClient<Vec<u8>>, payload: &[u8]) {
    must(client.request(payload.to_vec()).await, "an echo");
}

/// One echo of a [`Payload`] through our layer.
async fn our_bytes_request(client: &EchoClient<Payload>, payload: &[u8]) {
    must(client.request(Payload(payload.to_vec())).await, "an echo");
}

fn tcp(c: &mut Criterion) {
    let rt = runtime();
    let (_server, client) = rt.block_on(our_echo(vec![1u8]));
    let (_bytes_server, bytes_client) = rt.block_on(our_echo(Payload(vec![1])));
    let bare_address = rt.block_on(bare_echo_server());
    let bare = Arc::new(Mutex::new(rt.block_on(BareClient::connect(bare_address))));

    for (size_name, size) in [("64b", 64usize), ("16kib", 16 * 1024)] {
        let payload: Arc<[u8]> = (0..size).map(|i| i as u8).collect();
        let frame: Arc<[u8]> = frame_of(&payload).into();
        let echoed = must(rt.block_on(client.request(payload.to_vec())), "an echo");
        assert_eq!(*echoed, *payload);
        let bytes = Payload(payload.to_vec());
        let wire = must(bcs::to_bytes(&bytes), "encoding a payload");
        assert_eq!(wire, must(bcs::to_bytes(&payload.to_vec()), "encoding"));
        assert_eq!(
            must(rt.block_on(bytes_client.request(bytes.clone())), "an echo"),
            bytes
        );
        let mut group = c.benchmark_group(format!("tcp_round_trip_{size_name}"));
        settings::fast(&mut group);
        bench_spawned!(
            group,
            rt,
            "ours_client_server",
            (client, payload),
            our_request(&client, &payload)
        );
        bench_spawned!(
            group,
            rt,
            "ours_client_server_bytes_payload",
            (bytes_client, payload),
            our_bytes_request(&bytes_client, &payload)
        );
        bench_spawned!(
            group,
            rt,
            "floor_bare_tokio_echo",
            (bare, frame),
            let mut bare = bare.lock().await;
            bare.exchange(&frame, 1)
        );
        group.finish();
    }

    let payload: Arc<[u8]> = (0..64u8).collect();
    let frame: Arc<[u8]> = frame_of(&payload).into();
    let mut group = c.benchmark_group("tcp_in_flight_64");
    settings::fast(&mut group);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    bench_spawned!(group, rt, "ours_one_at_a_time", (client, payload), async {
        for _ in 0..IN_FLIGHT {
            our_request(&client, &payload).await;
        }
    });
    bench_spawned!(group, rt, "ours_64_in_flight", (client, payload), async {
        join_all((0..IN_FLIGHT).map(|_| our_request(&client, &payload))).await;
    });
    bench_spawned!(
        group,
        rt,
        "bare_echo_one_at_a_time",
        (bare, frame),
        let mut bare = bare.lock().await;
        async {
            for _ in 0..IN_FLIGHT {
                bare.exchange(&frame, 1).await;
            }
        }
    );
    bench_spawned!(
        group,
        rt,
        "bare_echo_64_pipelined",
        (bare, frame),
        let mut bare = bare.lock().await;
        bare.exchange(&frame, IN_FLIGHT)
    );
    group.finish();
}

fn main() {
    let mut criterion = settings::criterion();
    tcp(&mut criterion);
    criterion.final_summary();
}
