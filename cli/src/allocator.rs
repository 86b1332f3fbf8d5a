//! The C library allocator's settings a validator runs with (DESIGN §6.1): so that memory an
//! attack made it hold goes back to the system once the attack ends.
//!
//! glibc's allocator keeps freed memory for reuse: a validator that peaked at +150 MiB under
//! an attack stayed there after it. Two of its settings fix that, measured in
//! `BENCHMARKS.md` (attack 8): a fixed mapping threshold, so that every block of 128 KiB or
//! more (frame buffers, encoded answers) is its own mapping, unmapped when freed; and two
//! arenas, so that freed small blocks are not spread over one arena per thread. They are read
//! only when the process starts, so `quorum validator` starts itself again with them set,
//! unless the environment already names any of them (an operator's choice wins).
//! mimalloc was measured too and kept more (`BENCHMARKS.md`).

use std::ffi::OsString;

use tracing::warn;

/// glibc's mapping threshold, in bytes: blocks of at least 128 KiB are mapped on their own.
const MMAP_THRESHOLD_BYTES: &str = "131072";
/// glibc's number of arenas: two.
const ARENAS: &str = "2";

/// The settings, as environment variables.
const SETTINGS: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD_BYTES),
    ("MALLOC_ARENA_MAX", ARENAS),
];

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
