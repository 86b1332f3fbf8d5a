//! What the client side records through the `metrics` facade (DESIGN §5.7). No exporter and
//! no global state here: a program installs a recorder (the `quorum` binary serves them in
//! Prometheus text format); without one, recording costs next to nothing.
//!
//! Every series, its unit and labels (also listed in the README):
//!
//! | series | kind | unit | labels |
//! |---|---|---|---|
//! | `quorum_call_seconds` | histogram | seconds | — |
//! | `quorum_time_to_quorum_seconds` | histogram | seconds | — |
//! | `quorum_answers_total` | counter | answers | `phase` = `before_quorum` \| `after_quorum` |
//! | `quorum_validator_errors_total` | counter | errors | `validator`, `kind` |
//! | `quorum_recoveries_total` | counter | recoveries | `kind` |
//! | `quorum_certificates_uploaded_total` | counter | certificates | — |
//! | `quorum_validator_suspect` | gauge | 0 or 1 | `validator` |
//! | `quorum_clock_skew_seconds` | histogram | seconds | — |

use std::time::Duration;

use quorum_core::{NodeError, ValidatorPublicKey};

/// The label of a validator: the first eight hex digits of its key.
pub(crate) fn validator_label(key: &ValidatorPublicKey) -> String {
    key.as_bytes()[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The label of an error: its variant.
pub(crate) fn error_kind(error: &NodeError) -> &'static str {
    match error {
        NodeError::Timeout => "timeout",
        NodeError::Transport(_) => "transport",
        NodeError::ProtocolViolation(_) => "protocol_violation",
        NodeError::InvalidCertificate(_) => "invalid_certificate",
        NodeError::WrongRound(_) => "wrong_round",
        NodeError::UnexpectedBlockHeight { .. } => "unexpected_block_height",
        NodeError::MissingCrossChainUpdate { .. } => "missing_cross_chain_update",
        NodeError::EventsNotFound(_) => "events_not_found",
        NodeError::BlobsNotFound(_) => "blobs_not_found",
        NodeError::InactiveChain(_) => "inactive_chain",
        NodeError::InvalidTimestamp { .. } => "invalid_timestamp",
        NodeError::LimitExceeded(_) => "limit_exceeded",
        _ => "other",
    }
}

/// One quorum call: its duration, the time to its quorum (if reached) and how many answers
/// came before and after the quorum.
pub(crate) fn quorum_call(total: Duration, to_quorum: Option<Duration>, before: u64, after: u64) {
    metrics::histogram!("quorum_call_seconds").record(total.as_secs_f64());
    if let Some(to_quorum) = to_quorum {
        metrics::histogram!("quorum_time_to_quorum_seconds").record(to_quorum.as_secs_f64());
    }
    metrics::counter!("quorum_answers_total", "phase" => "before_quorum").increment(before);
    metrics::counter!("quorum_answers_total", "phase" => "after_quorum").increment(after);
}

/// A validator answered with `error`.
pub(crate) fn validator_error(key: &ValidatorPublicKey, error: &NodeError) {
    metrics::counter!(
        "quorum_validator_errors_total",
        "validator" => validator_label(key),
        "kind" => error_kind(error)
    )
    .increment(1);
}

/// Whether `key` is suspect now.
pub(crate) fn suspect(key: &ValidatorPublicKey, suspect: bool) {
    metrics::gauge!("quorum_validator_suspect", "validator" => validator_label(key))
        .set(if suspect { 1.0 } else { 0.0 });
}

/// A clock skew report, in microseconds.
pub(crate) fn clock_skew(micros: i64) {
    metrics::histogram!("quorum_clock_skew_seconds").record(micros as f64 / 1e6);
}

/// Describes every series the client side records (its help text and unit). Call it after a
/// recorder is installed; without one it does nothing.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "quorum_call_seconds",
        Unit::Seconds,
        "Duration of one call to the committee, until its quorum and grace period."
    );
    describe_histogram!(
        "quorum_time_to_quorum_seconds",
        Unit::Seconds,
        "Time until a call had answers from a quorum."
    );
    describe_counter!(
        "quorum_answers_total",
        Unit::Count,
        "Answers to calls, before or after their quorum."
    );
    describe_counter!(
        "quorum_validator_errors_total",
        Unit::Count,
        "Errors from validators, by validator and kind."
    );
    describe_counter!(
        "quorum_recoveries_total",
        Unit::Count,
        "Recoveries the updater performed, by kind."
    );
    describe_counter!(
        "quorum_certificates_uploaded_total",
        Unit::Count,
        "Certificates sent to validators that missed them."
    );
    describe_gauge!(
        "quorum_validator_suspect",
        Unit::Count,
        "1 while a validator is suspect (in its cooldown), else 0."
    );
    describe_histogram!(
        "quorum_clock_skew_seconds",
        Unit::Seconds,
        "Clock skew a validator showed by refusing a block as from the future."
    );
    describe_counter!(
        "quorum_notifications_invalid_total",
        Unit::Count,
        "Notifications that made the listener resubscribe or mark a validator Byzantine, by reason."
    );
    describe_counter!(
        "quorum_notifications_ignored_total",
        Unit::Count,
        "Hints of a validator in its Byzantine cooldown, ignored."
    );
    describe_histogram!(
        "quorum_notification_latency_seconds",
        Unit::Seconds,
        "From a new block's timestamp to the listener's verified report of it."
    );
}
