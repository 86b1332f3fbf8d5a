//! `quorum client watch` against four `quorum validator` processes (DESIGN §4.7.1, §5.8): a
//! watcher in one process prints a payment another `quorum client` process makes, within a
//! second of it; while idle it sends the validators no chain-info queries (read from their
//! metrics); Ctrl-C ends it with success.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_ports, quorum, Validators, BIN};

/// The bound asserted on the payment's line: ten times the expected figure (about 0.1 s).
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

/// `quorum client --dir DIR ARGS…`, expecting success: its standard output, trimmed.
fn client(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["client", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    quorum(dir.parent().unwrap(), &all).trim().to_owned()
}

/// Chain-info queries a validator answered so far, from its metrics.
fn chain_info_queries(metrics: &str) -> f64 {
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .filter(|line| {
            line.starts_with("quorum_requests_total{") && line.contains("method=\"ChainInfoQuery\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A watcher killed when dropped, with its output lines.
struct Watcher {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    receiver
}

/// A committee of four validator processes from `ROOT/a` (each started with `extra(i)`), a
/// chain wallet A opened, and wallet B: an empty wallet in `ROOT/b` from the same genesis.
struct Setup {
    _root: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
    chain: String,
    validators: Validators,
}

fn setup(base: u16, extra: impl Fn(usize) -> Vec<String>) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    common::dev_genesis(&a, base);
    let validators = Validators(
        (0..4)
            .map(|i| {
                let config = a.join(format!("validator-{i}.toml"));
                let extra = extra(i);
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                common::start_validator_with(&config, &extra).0
            })
            .collect(),
    );
    let chain = client(&a, &["open-chain", "--from", "1"]);
    let genesis = a.join("genesis.bcs");
    client(&b, &["init", "--genesis", genesis.to_str().unwrap()]);
    Setup {
        _root: root,
        a,
        b,
        chain,
        validators,
    }
}

/// `quorum client --dir DIR watch --chain CHAIN EXTRA…`, once it listens to all four
/// validators.
fn start_watcher(dir: &Path, chain: &str, extra: &[&str]) -> Watcher {
    let mut child = Command::new(BIN)
        .args([
            "client",
            "--dir",
            dir.to_str().unwrap(),
            "watch",
            "--chain",
            chain,
        ])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watcher = Watcher {
        stdout: lines(child.stdout.take().unwrap()),
        stderr: lines(child.stderr.take().unwrap()),
        child,
    };
    let mut listening = 0;
    while listening < 4 {
        let line = watcher
            .stderr
            .recv_timeout(Duration::from_secs(30))
            .unwrap();
        listening += usize::from(line.ends_with(": listening"));
    }
    watcher
}

/// Waits (at most 20 s) for the watcher to exit.
fn exit_of(watcher: &mut Watcher) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(exit) = watcher.child.try_wait().unwrap() {
            return exit;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_watcher_prints_another_process_payment_and_stays_quiet_while_idle() {
    let base = free_ports(8);
    let metrics: Vec<String> = (0..4)
        .map(|i| format!("127.0.0.1:{}", base + 4 + i))
        .collect();
    // Wallet A opens a chain; wallet B, another directory, watches it read-only.
    let setup = setup(base, |i| vec!["--metrics".to_owned(), metrics[i].clone()]);
    let mut watcher = start_watcher(&setup.b, &setup.chain, &[]);

    let chain = setup.chain.as_str();
    client(
        &setup.a,
        &["transfer", "--from", "1", "--to", chain, "--amount", "9"],
    );
    let paid = Instant::now();
    let line = loop {
        let line = watcher
            .stdout
            .recv_timeout(Duration::from_secs(10))
            .expect("the watcher printed the payment");
        if line.contains(" payment ") {
            break line;
        }
    };
    assert!(
        paid.elapsed() <= SHOWN_WITHIN,
        "shown {:?} after the paying process ended",
        paid.elapsed()
    );
    assert!(line.contains(chain) && line.contains("amount=9"), "{line}");

    // Idle: no chain-info query reaches any validator.
    let before: Vec<f64> = metrics.iter().map(|m| chain_info_queries(m)).collect();
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<f64> = metrics.iter().map(|m| chain_info_queries(m)).collect();
    assert_eq!(after, before, "the idle watcher asked the validators");

    // Ctrl-C: success.
    let status = Command::new("kill")
        .args(["-INT", &watcher.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = exit_of(&mut watcher);
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_watcher_with_no_validator_left_fails_saying_so() {
    let setup = setup(free_ports(4), |_| Vec::new());
    let mut watcher = start_watcher(&setup.b, &setup.chain, &["--deadline-secs", "2"]);
    drop(setup.validators);
    let exit = exit_of(&mut watcher);
    assert!(!exit.success(), "{exit:?}");
    // The reader thread ends at the pipe's end: every line is in.
    let said: Vec<String> = watcher.stderr.iter().collect();
    assert!(
        said.iter()
            .any(|line| line.contains("no validator reachable")),
        "{said:?}"
    );
}
