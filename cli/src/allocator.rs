//! The allocator the `quorum` program runs on, and the settings a validator runs it with
//! (DESIGN §6.1): so that memory an attack made it hold goes back to the system once the
//! attack ends.
//!
//! On Linux with glibc, the program's allocator is jemalloc. glibc's own allocator kept what
//! an attack had made a validator hold: +150 MiB stayed after the attack, and with a fixed
//! mapping threshold and two arenas still 51–158 MiB (`BENCHMARKS.md`, attack 8). jemalloc
//! gives freed pages back on a timer: a validator runs it with a background thread that
//! purges pages unused for about a second (`dirty_decay_ms:1000`), straight back to the
//! system rather than kept lazily (`muzzy_decay_ms:0`, so they leave the RSS at once). The
//! settings are read only when the process starts, so `quorum validator` starts itself
//! again with them set, unless the environment already names them (an operator's choice
//! wins). mimalloc was measured too and kept more.

use std::ffi::OsString;

use tracing::warn;

/// jemalloc on Linux with glibc (elsewhere the system's allocator).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings for a validator: a background thread purges pages unused for 1,000 ms
/// (`dirty_decay_ms`), returning them to the system at once (`muzzy_decay_ms` 0).
const VALIDATOR_MALLOC_CONF: &str = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// The settings, as environment variables (the build's jemalloc reads `_RJEM_MALLOC_CONF`).
const SETTINGS: [(&str, &str); 1] = [("_RJEM_MALLOC_CONF", VALIDATOR_MALLOC_CONF)];

/// Starts this program again with the allocator settings, unless the environment already
/// names one of them; returns only if it does, or if starting again failed (logged: the
/// validator then runs with the allocator as it is).
pub fn restart_with_validator_settings() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    if SETTINGS
        .iter()
        .any(|(name, _)| std::env::var_os(name).is_some())
    {
        return;
    }
    let error = restart(std::env::args_os().skip(1).collect());
    warn!(%error, "could not restart with the allocator's settings; running without them");
}

#[cfg(unix)]
fn restart(args: Vec<OsString>) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(program) => std::process::Command::new(program)
            .args(args)
            .envs(SETTINGS)
            .exec(),
        Err(error) => error,
    }
}

#[cfg(not(unix))]
fn restart(_args: Vec<OsString>) -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::Unsupported)
}
