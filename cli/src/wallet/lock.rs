//! The wallet lock of a client directory: one command at a time.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::CliError;
use crate::files::SECRET_FILE_MODE;

/// Name of the lock file beside the wallet.
pub const WALLET_LOCK_FILE: &str = "wallet.lock";
/// How often a command waiting for the wallet lock tries again.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// The wallet lock of a directory, held while a command runs (an advisory lock on
/// [`WALLET_LOCK_FILE`], released when dropped or when the process ends, however it ends).
#[derive(Debug)]
pub struct WalletLock {
    _file: File,
}

impl WalletLock {
    /// Takes the lock of `dir`, waiting at most `wait` for another command to release it
    /// (`WalletBusy` then).
    pub fn acquire(dir: &Path, wait: Duration) -> Result<Self, CliError> {
        let path: PathBuf = dir.join(WALLET_LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(SECRET_FILE_MODE)
            .open(&path)
            .map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WalletLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(CliError::WalletBusy(dir.to_owned()))
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(CliError::File { path, source })
                }
            }
        }
    }
}
