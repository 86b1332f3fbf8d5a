//! What the storage crash tests share (redb's and PostgreSQL's): a writer child process (the
//! test binary itself, re-executed to run one ignored test) killed with SIGKILL once it has
//! acknowledged enough writes.
//!
//! A helper of tests: it panics, naming what failed, when anything goes wrong.
#![allow(clippy::expect_used)] // panicking is how a test helper fails

use std::io::{BufRead, BufReader};

use quorum_core::Blob;

use crate::{TestChain, TestCommittee};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts this test binary's ignored test `child_test` with `env` set to `path`, kills it with
/// SIGKILL once `kill_after` of its output lines parse as acknowledgements, and returns every
/// acknowledgement it printed before dying (those still in the pipe included). Panics if the
/// child stops on its own or acknowledges too few within `timeout`.
pub fn run_until_killed<T>(
    child_test: &str,
    env: &str,
    path: &Path,
    kill_after: usize,
    timeout: Duration,
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<T> {
    let executable = std::env::current_exe().expect("crash test helper");
    let mut child = Command::new(executable)
        .args([
            child_test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crash test helper");
    let stdout = child.stdout.take().expect("crash test helper");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let mut other = Vec::new();
    let deadline = Instant::now() + timeout;
    while acks.len() < kill_after {
        let wait = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(wait) {
            Ok(line) => match parse(&line) {
                Some(ack) => acks.push(ack),
                None => other.push(line),
            },
            Err(error) => {
                let _ = child.kill();
                let status = child.wait().expect("crash test helper");
                panic!(
                    "the writer stopped after {} acknowledgements ({error}; {status}); its \
                     output:\n{}",
                    acks.len(),
                    other.join("\n")
                );
            }
        }
    }
    // SIGKILL, most likely in the middle of a commit.
    child.kill().expect("crash test helper");
    let status = child.wait().expect("crash test helper");
    assert!(!status.success(), "the writer was killed: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }
    acks.extend(received.iter().filter_map(|line| parse(&line)));
    reader.join().expect("crash test helper");
    acks
}

/// The whitespace-separated fields after `prefix` on an output line of a child (the harness may
/// print its own text before it on the same line), or `None` if the line has no `prefix`.
pub fn ack_fields<'a>(line: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    Some(rest.split_whitespace().collect())
}

/// The committee and the chain a single-chain crash test's writer and checker both derive the
/// blocks from.
pub fn fixtures() -> (TestCommittee, TestChain) {
    (TestCommittee::new(4, 0xC0FFEE), TestChain::new(0, 0xC4A5))
}

/// The blob a crash test writes with the block at `height`: 16 KiB, so a batch spans several
/// pages.
pub fn blob(height: u64) -> Blob {
    let seed = height.to_le_bytes();
    Blob::data(seed.iter().copied().cycle().take(16 * 1024).collect())
}
