//! `/metrics` (issue 11): a running `quorum validator --metrics ADDR` and a running
//! `quorum demo --metrics ADDR` answer a plain HTTP GET on a raw TCP socket (no outside tool)
//! with the documented series, with non-zero values after some work; the validator's answer
//! parsed by a Prometheus text-format parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_ports, quorum, Validators, BIN};
use prometheus_parse::{Scrape, Value};

/// How long a test waits for an endpoint to show what it expects.
const PATIENCE: Duration = Duration::from_secs(60);

/// `GET /metrics` on `address`, the body.
fn scrape(address: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The value of the first sample of `series` (any labels) in `body`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
}

/// Scrapes `address` until every series of `expected` has a non-zero value.
fn wait_for_series(address: &str, expected: &[&str]) -> String {
    let start = Instant::now();
    loop {
        if let Some(body) = scrape(address) {
            if expected
                .iter()
                .all(|series| value(&body, series).is_some_and(|v| v > 0.0))
            {
                return body;
            }
            if start.elapsed() > PATIENCE {
                panic!("series {expected:?} not all non-zero at {address}:\n{body}");
            }
        } else if start.elapsed() > PATIENCE {
            panic!("no metrics at {address}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `body`, parsed by a Prometheus text-format parser: every family has its help text, none
/// is a summary, and the handler's latency has cumulative buckets up to `+Inf` equal to its
/// count.
fn families_are_described_and_latencies_are_histograms(body: &str) {
    let scrape = Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let families: BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|sample| !matches!(sample.value, Value::Untyped(_)))
        .map(|sample| sample.metric.as_str())
        .collect();
    assert!(families.len() >= 8, "{families:?}\n{body}");
    for family in &families {
        let help = scrape.docs.get(*family).map_or("", String::as_str);
        assert!(!help.is_empty(), "{family} has no help text:\n{body}");
    }
    for sample in &scrape.samples {
        assert!(
            !matches!(sample.value, Value::Summary(_)),
            "{} is a summary:\n{body}",
            sample.metric
        );
    }
    let proposals = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name && sample.labels.get("method") == Some("BlockProposal")
            })
            .map(|sample| sample.value.clone())
    };
    let Some(Value::Histogram(mut buckets)) = proposals("quorum_handler_seconds") else {
        panic!("no histogram of the handler's latency for BlockProposal:\n{body}");
    };
    buckets.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|pair| pair[0].count <= pair[1].count),
        "{buckets:?}"
    );
    let last = buckets.last().unwrap();
    assert!(last.less_than.is_infinite(), "{buckets:?}");
    let Some(Value::Untyped(count)) = proposals("quorum_handler_seconds_count") else {
        panic!("no count of the handler's latency:\n{body}");
    };
    assert_eq!(last.count, count);
}

/// Starts a validator with a metrics endpoint on `metrics`.
fn start_with_metrics(config: &Path, metrics: &str) -> Child {
    let (child, lines) = common::start_validator_with(config, &["--metrics", metrics]);
    let serving = lines.recv_timeout(common::START_TIMEOUT).unwrap();
    assert!(serving.starts_with("metrics at"), "{serving}");
    child
}

#[test]
fn a_validator_serves_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(5);
    common::dev_genesis(path, base);
    let metrics = format!("127.0.0.1:{}", base + 4);
    let mut children = Validators(vec![start_with_metrics(
        &path.join("validator-0.toml"),
        &metrics,
    )]);
    for i in 1..4 {
        children.0.push(common::start_validator(
            &path.join(format!("validator-{i}.toml")),
        ));
    }
    let d = path.to_str().unwrap();
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "1", "--to", "2", "--amount", "3",
        ],
    );
    let body = wait_for_series(
        &metrics,
        &[
            "quorum_requests_total",
            "quorum_handler_seconds_count",
            "quorum_blocks_committed_total",
            "quorum_block_apply_seconds_count",
        ],
    );
    assert!(body.contains("method=\"BlockProposal\""), "{body}");
    families_are_described_and_latencies_are_histograms(&body);
    // A gauge: zero again once the client's connections closed, but there.
    assert!(value(&body, "quorum_connections_open").is_some(), "{body}");
    // Anything but GET /metrics is refused.
    let mut stream = TcpStream::connect(&metrics).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

#[test]
fn the_demo_serves_its_metrics() {
    let base = free_ports(5);
    let metrics = format!("127.0.0.1:{base}");
    let child = Command::new(BIN)
        .args([
            "demo",
            "--blocks",
            "100000",
            "--faults",
            "none",
            "--metrics",
            &metrics,
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed at the end whatever happens.
    let _demo = Validators(vec![child]);
    wait_for_series(
        &metrics,
        &[
            "quorum_call_seconds_count",
            "quorum_time_to_quorum_seconds_count",
            "quorum_answers_total",
            "quorum_requests_total",
            "quorum_blocks_committed_total",
        ],
    );
}
