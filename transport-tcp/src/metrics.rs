//! The series the TCP server records through the `metrics` facade (DESIGN §5.7), described
//! once for an exporter's `# HELP` lines and units.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Describes every series the TCP server records (its help text and unit). Call it after a
/// recorder is installed; without one it does nothing.
pub fn describe_metrics() {
    describe_counter!(
        "quorum_requests_total",
        Unit::Count,
        "Requests answered, by method and outcome (ok, refused)."
    );
    describe_histogram!(
        "quorum_handler_seconds",
        Unit::Seconds,
        "Time to handle one request, by method."
    );
    describe_histogram!(
        "quorum_handler_slot_wait_seconds",
        Unit::Seconds,
        "Time a request waited for a handler slot when all were taken."
    );
    describe_gauge!(
        "quorum_connections_open",
        Unit::Count,
        "Connections open now."
    );
    describe_counter!(
        "quorum_connections_refused_total",
        Unit::Count,
        "Connections refused on arrival by the connection limits."
    );
    describe_counter!(
        "quorum_connections_closed_total",
        Unit::Count,
        "Connections closed for the peer's misbehaviour, by reason."
    );
    describe_counter!(
        "quorum_connections_evicted_total",
        Unit::Count,
        "Connections closed to make room for a newcomer from an address holding fewer."
    );
    describe_gauge!(
        "quorum_receive_buffered_bytes",
        Unit::Bytes,
        "Bytes of large frames being received and handled."
    );
    describe_gauge!(
        "quorum_server_held_bytes",
        Unit::Bytes,
        "Bytes charged to the server's budget: frames, requests with room for their answers, answers not yet written."
    );
    describe_gauge!(
        "quorum_queued_response_bytes",
        Unit::Bytes,
        "Bytes of encoded answers not yet written."
    );
}
