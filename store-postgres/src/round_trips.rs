//! Round trips to the database, counted for this process: what `quorum demo` reports per
//! committed block (DESIGN §7.1, goal: at most two per block per validator with group commit)
//! and what the `quorum_postgres_round_trips_total` metric counts.

use std::sync::atomic::{AtomicU64, Ordering};

static READS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Round trips to the database since the process started, by every store of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundTrips {
    /// Reads: one per query.
    pub reads: u64,
    /// Writes: two per write batch attempt (its statements pipelined, then `COMMIT`).
    pub writes: u64,
}

/// The round trips so far.
pub fn round_trips() -> RoundTrips {
    RoundTrips {
        reads: READS.load(Ordering::Relaxed),
        writes: WRITES.load(Ordering::Relaxed),
    }
}

/// Describes the crate's metrics to the installed recorder (HELP text and unit).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "quorum_postgres_round_trips_total",
        metrics::Unit::Count,
        "Round trips to the PostgreSQL database, by kind (read: a query; write: a pipelined write batch or its COMMIT)"
    );
}

pub(crate) fn count_read() {
    READS.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("quorum_postgres_round_trips_total", "kind" => "read").increment(1);
}

pub(crate) fn count_write() {
    WRITES.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("quorum_postgres_round_trips_total", "kind" => "write").increment(1);
}
