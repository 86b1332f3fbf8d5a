//! What the process tests share: running the `quorum` binary with a time bound, free loopback
//! ports, and validator processes that are killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod postgres;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_quorum");
/// Longest a command of the binary may take before the test kills it and fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a validator may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running command is checked for exit (also the resolution of the times
/// [`run_timed`] measures).
const POLL: Duration = Duration::from_millis(2);

/// What a finished command said.
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `quorum ARGS` in `dir`, killing it if it takes longer than [`COMMAND_TIMEOUT`].
pub fn run(dir: &Path, args: &[&str]) -> Output {
    run_timed(dir, args).0
}

/// Runs `quorum ARGS` in `dir` like [`run`], and says how long it took, from its start to its
/// exit (within [`POLL`]).
pub fn run_timed(dir: &Path, args: &[&str]) -> (Output, Duration) {
    run_within(dir, args, COMMAND_TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs `quorum ARGS` in `dir`, killing it (and saying so) if it takes longer than `timeout`;
/// otherwise its output and how long it took, from its start to its exit (within [`POLL`]).
pub fn run_within(
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<(Output, Duration), String> {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "error")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start quorum {args:?}: {error}"))?;
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("quorum {args:?} took longer than {timeout:?}"));
        }
        std::thread::sleep(POLL);
    };
    let elapsed = started.elapsed();
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    Ok((output, elapsed))
}

/// Runs `quorum ARGS` in `dir`, expecting success, and returns its standard output.
pub fn quorum(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(
        output.status.success(),
        "quorum {args:?} failed: {}\n{}",
        output.stdout,
        output.stderr
    );
    output.stdout
}

/// Runs `quorum ARGS` in `dir`, expecting failure, and returns its standard error.
pub fn quorum_fails(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(
        !output.status.success(),
        "quorum {args:?} succeeded: {}",
        output.stdout
    );
    output.stderr
}

/// A base port with `count` consecutive loopback ports after it, free for TCP and for UDP
/// (QUIC).
pub fn free_ports(count: u16) -> u16 {
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let base = 20_000 + (seed >> 33) as u16 % 30_000;
        let all_free = (0..count).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()
        });
        if all_free {
            return base;
        }
    }
    panic!("no free ports");
}

/// Validator processes; killed when dropped, so a failing test leaves none behind.
#[derive(Default)]
pub struct Validators(pub Vec<Child>);

impl Drop for Validators {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `quorum validator --config CONFIG` and waits (at most [`START_TIMEOUT`]) until it
/// listens.
pub fn start_validator(config: &Path) -> Child {
    start_validator_with(config, &[]).0
}

/// Starts `quorum validator --config CONFIG EXTRA…` and waits (at most [`START_TIMEOUT`]) until
/// it listens. Its standard output is read to the end on a thread of its own (so that it never
/// writes to a closed pipe); the lines after "listening on" arrive on the receiver.
pub fn start_validator_with(config: &Path, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["validator", "--config", config.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    match receiver.recv_timeout(START_TIMEOUT) {
        Ok(line) if line.starts_with("listening on") => (child, receiver),
        answer => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("validator {} did not start: {answer:?}", config.display());
        }
    }
}

/// `quorum dev-genesis` for four validators and three chains in `dir`, the validators on
/// consecutive loopback ports from `base`.
pub fn dev_genesis(dir: &Path, base: u16) {
    dev_genesis_with(dir, base, &[]);
}

/// [`dev_genesis`] with `extra` arguments (e.g. `--transport mixed`).
pub fn dev_genesis_with(dir: &Path, base: u16, extra: &[&str]) {
    let base = base.to_string();
    let mut args = vec![
        "dev-genesis",
        "--dir",
        dir.to_str().unwrap(),
        "--validators",
        "4",
        "--chains",
        "3",
        "--base-port",
        &base,
    ];
    args.extend_from_slice(extra);
    quorum(dir, &args);
}

/// Formats a duration in milliseconds (below 10 s) or seconds.
pub fn ms(duration: Duration) -> String {
    if duration < Duration::from_secs(10) {
        format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}
