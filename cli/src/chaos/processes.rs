//! The validator processes of a chaos run: `quorum validator` started from this very binary,
//! killed with SIGKILL, paused with SIGSTOP, resumed, and stopped with SIGTERM at the end.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::warn;

use crate::error::CliError;

/// Longest a validator may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a validator may take to exit after SIGTERM before it counts as left running.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One validator process (absent while killed).
#[derive(Debug)]
pub struct ValidatorProcess {
    /// `validator-N`.
    pub name: String,
    config: PathBuf,
    clock_file: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    byzantine: bool,
}

impl ValidatorProcess {
    /// A validator run from `config`, whose clock offset lives in `clock_file` and whose
    /// standard error goes to `log`, in the Byzantine testing mode when `byzantine`; not
    /// started yet.
    pub fn new(
        name: String,
        config: PathBuf,
        clock_file: PathBuf,
        log: PathBuf,
        byzantine: bool,
    ) -> Self {
        ValidatorProcess {
            name,
            config,
            clock_file,
            log,
            child: None,
            paused: false,
            byzantine,
        }
    }

    /// Starts it (from its database, if it ran before) and waits until it listens.
    pub async fn start(&mut self) -> Result<(), CliError> {
        if self.child.is_some() {
            return Ok(());
        }
        let program = std::env::current_exe().map_err(|source| CliError::File {
            path: PathBuf::from("quorum"),
            source,
        })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| CliError::File {
                path: self.log.clone(),
                source,
            })?;
        let mut command = Command::new(program);
        command
            .arg("validator")
            .arg("--config")
            .arg(&self.config)
            .arg("--testing-clock-offset-file")
            .arg(&self.clock_file);
        if self.byzantine {
            command.arg("--testing-byzantine");
        }
        let mut child = command
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CliError::Spawn {
                what: self.name.clone(),
                source,
            })?;
        let stdout = child.stdout.take();
        self.child = Some(child);
        let Some(stdout) = stdout else {
            return Err(self.not_started("no standard output"));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        match first {
            Ok(Ok(Some(line))) if line.starts_with("listening on") => {
                // Keep reading, so that the validator never writes into a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(())
            }
            Ok(Ok(line)) => Err(self.not_started(&format!("said {line:?}"))),
            Ok(Err(error)) => Err(self.not_started(&error.to_string())),
            Err(_) => Err(self.not_started("did not listen within 30 s")),
        }
    }

    /// The error of a start that failed; the process is killed.
    fn not_started(&mut self, why: &str) -> CliError {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        self.child = None;
        CliError::ValidatorDidNotStart {
            name: self.name.clone(),
            why: why.to_owned(),
            log: self.log.clone(),
        }
    }

    /// `kill -9`, and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(error) = child.kill().await {
                warn!(name = %self.name, %error, "could not kill validator");
            }
        }
        self.paused = false;
    }

    /// SIGSTOP: it hangs, its sockets open.
    pub fn pause(&mut self) {
        if self.signal("-STOP") {
            self.paused = true;
        }
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        if self.paused && self.signal("-CONT") {
            self.paused = false;
        }
    }

    /// Sends `signal` with the system's `kill` command; whether it was sent.
    fn signal(&self, signal: &str) -> bool {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return false;
        };
        match std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
        {
            Ok(status) if status.success() => true,
            Ok(status) => {
                warn!(name = %self.name, signal, %status, "kill failed");
                false
            }
            Err(error) => {
                warn!(name = %self.name, signal, %error, "cannot run kill");
                false
            }
        }
    }

    /// Stops it for good: resumed if paused, SIGTERM, then SIGKILL if it has not exited
    /// within 10 s. Whether it exited on its own.
    pub async fn stop(&mut self) -> bool {
        self.resume();
        if !self.signal("-TERM") {
            self.kill().await;
            return self.child.is_none();
        }
        let Some(child) = &mut self.child else {
            return true;
        };
        let exited = tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_ok();
        if !exited {
            warn!(name = %self.name, "validator did not exit on SIGTERM; killing it");
        }
        self.kill().await;
        exited
    }

    /// The first line of its log that says it panicked, if any.
    pub fn panic_line(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .find(|line| line.contains("panicked at"))
            .map(str::to_owned)
    }
}
