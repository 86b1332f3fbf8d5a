//! Shared fixtures of Quorum's benches (DESIGN §9).
//!
//! Every bench measures our code beside its *floor*: the same essential work done without our
//! layers, in the same run. The fixtures here build the inputs both sides share, so that the
//! two sides of a comparison always work on the very same bytes:
//!
//! * [`settings`]: criterion settings that keep a whole `cargo bench -p quorum-benches` run to a
//!   few minutes on 2 cores.
//! * [`fixtures`]: committees, partial certificates and the raw ed25519 inputs of a certificate.
//! * [`sync`]: a client's local node holding a chain of 1,000 blocks and fresh validators that
//!   lag by all of them.
//! * [`quorum`]: the delay scenarios of the `communicate_with_quorum` bench, their ideal latency,
//!   and a committee of Workers behind delayed in-process transports.
//!
//! The fixtures panic on failure: they only run inside benches.

pub mod fixtures;
pub mod quorum;
pub mod settings;
pub mod sync;
pub mod throughput;

use quorum_testkit::must;

/// A tokio runtime with every driver, on as many worker threads as the machine has cores.
pub fn runtime() -> tokio::runtime::Runtime {
    must(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        "building the tokio runtime",
    )
}

/// Runs `future` as a task on `rt`'s worker threads, as a program's client code runs, and waits
/// for its output. (Driving a bench's future with `block_on` from the bench thread instead would
/// add a wake-up across threads to every answer it awaits: tens of microseconds per round trip
/// on this machine.)
pub fn run_spawned<F>(rt: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    must(
        rt.block_on(async { tokio::spawn(future).await }),
        "a bench task",
    )
}

/// Where criterion writes its results: `$CARGO_TARGET_DIR/criterion`, else the workspace's
/// `target/criterion`.
pub fn criterion_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let benches = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            benches.parent().unwrap_or(benches).join("target")
        });
    target.join("criterion")
}
