//! The series the Worker records through the `metrics` facade (DESIGN §5.7), described once
//! for an exporter's `# HELP` lines and units.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Describes every series the Worker records (its help text and unit). Call it after a
/// recorder is installed; without one it does nothing.
pub fn describe_metrics() {
    describe_counter!(
        "quorum_blocks_committed_total",
        Unit::Count,
        "Blocks this node committed."
    );
    describe_histogram!(
        "quorum_block_apply_seconds",
        Unit::Seconds,
        "Time to take in one confirmed certificate: execution and commit."
    );
    describe_histogram!(
        "quorum_commit_seconds",
        Unit::Seconds,
        "Time of one group commit to storage, until durable."
    );
    describe_histogram!(
        "quorum_commit_group_size",
        Unit::Count,
        "Blocks written by one group commit."
    );
    describe_histogram!(
        "quorum_signature_batch_size",
        Unit::Count,
        "Signatures verified together in one batch (those of concurrent requests)."
    );
    describe_gauge!(
        "quorum_subscriptions_open",
        Unit::Count,
        "Subscriptions to this node's notifications open now."
    );
    describe_counter!(
        "quorum_notifications_sent_total",
        Unit::Count,
        "Notifications queued for subscribers (one per subscriber), by kind."
    );
    describe_counter!(
        "quorum_notifications_lagged_total",
        Unit::Count,
        "Notifications dropped because a subscriber's queue was full."
    );
    describe_counter!(
        "quorum_subscriptions_refused_total",
        Unit::Count,
        "Subscriptions, or changes of one, refused by a cap, by cap."
    );
}
