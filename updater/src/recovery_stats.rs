//! Counters of what the updater had to repair, for summaries and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// A kind of repair the updater performs on a lagging validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecoveryKind {
    /// The validator was in an earlier round.
    WrongRound,
    /// The validator was behind in height.
    BlockHeight,
    /// The validator missed messages from another chain.
    CrossChain,
    /// The validator missed events.
    Events,
    /// The validator missed blobs.
    Blobs,
    /// The validator did not know the chain.
    InactiveChain,
    /// The validator's clock was behind.
    ClockSkew,
    /// The validator missed a new committee (admin chain epochs).
    Committee,
    /// The local node was behind a validator and caught up from it.
    LocalSync,
    /// Certificates sent in batches to bring a validator up to date (those it already had
    /// included: a batch reports how far it got, not what was new).
    CertificatesSent,
}

impl RecoveryKind {
    /// Every kind, in display order.
    pub const ALL: [RecoveryKind; 10] = [
        RecoveryKind::WrongRound,
        RecoveryKind::BlockHeight,
        RecoveryKind::CrossChain,
        RecoveryKind::Events,
        RecoveryKind::Blobs,
        RecoveryKind::InactiveChain,
        RecoveryKind::ClockSkew,
        RecoveryKind::Committee,
        RecoveryKind::LocalSync,
        RecoveryKind::CertificatesSent,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            RecoveryKind::WrongRound => "wrong round",
            RecoveryKind::BlockHeight => "behind in height",
            RecoveryKind::CrossChain => "cross-chain update",
            RecoveryKind::Events => "missing events",
            RecoveryKind::Blobs => "missing blobs",
            RecoveryKind::InactiveChain => "inactive chain",
            RecoveryKind::ClockSkew => "clock skew wait",
            RecoveryKind::Committee => "new committee",
            RecoveryKind::LocalSync => "local node caught up",
            RecoveryKind::CertificatesSent => "certs sent in batches",
        }
    }

    /// The label of the kind in metrics (snake case).
    pub fn label(self) -> &'static str {
        match self {
            RecoveryKind::WrongRound => "wrong_round",
            RecoveryKind::BlockHeight => "block_height",
            RecoveryKind::CrossChain => "cross_chain",
            RecoveryKind::Events => "events",
            RecoveryKind::Blobs => "blobs",
            RecoveryKind::InactiveChain => "inactive_chain",
            RecoveryKind::ClockSkew => "clock_skew",
            RecoveryKind::Committee => "committee",
            RecoveryKind::LocalSync => "local_sync",
            RecoveryKind::CertificatesSent => "certificates_sent",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts of repairs by kind; shared (`Arc`) between the updaters of a client.
#[derive(Debug)]
pub struct RecoveryStats {
    counts: [AtomicU64; 10],
    /// Largest clock skew reported by a validator, in µs, as an absolute value; `u64::MAX`
    /// stands for none yet.
    max_skew: AtomicU64,
}

impl Default for RecoveryStats {
    fn default() -> Self {
        RecoveryStats {
            counts: Default::default(),
            max_skew: AtomicU64::new(NO_SKEW),
        }
    }
}

/// Marker for "no skew reported" in [`RecoveryStats`].
const NO_SKEW: u64 = u64::MAX;

impl RecoveryStats {
    /// Counts one repair of `kind`.
    pub fn record(&self, kind: RecoveryKind) {
        self.add(kind, 1);
    }

    /// Counts `n` of `kind`.
    pub fn add(&self, kind: RecoveryKind, n: u64) {
        self.counts[kind.index()].fetch_add(n, Ordering::Relaxed);
        // Certificates sent are uploads, not repairs: a series of their own.
        if kind == RecoveryKind::CertificatesSent {
            metrics::counter!("quorum_certificates_uploaded_total").increment(n);
        } else {
            metrics::counter!("quorum_recoveries_total", "kind" => kind.label()).increment(n);
        }
    }

    /// The count of `kind`.
    pub fn get(&self, kind: RecoveryKind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Records a clock skew report, in µs (the sign only tells who is ahead).
    pub fn record_skew(&self, skew_micros: i64) {
        crate::metrics::clock_skew(skew_micros);
        let magnitude = skew_micros.unsigned_abs().min(NO_SKEW - 1);
        let _ = self
            .max_skew
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                (current == NO_SKEW || magnitude > current).then_some(magnitude)
            });
    }

    /// The largest clock skew reported, in µs, if any.
    pub fn max_skew(&self) -> Option<u64> {
        let value = self.max_skew.load(Ordering::Relaxed);
        (value != NO_SKEW).then_some(value)
    }

    /// Every non-zero count.
    pub fn snapshot(&self) -> Vec<(RecoveryKind, u64)> {
        RecoveryKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_largest_skew() {
        let stats = RecoveryStats::default();
        assert_eq!(stats.max_skew(), None);
        stats.record(RecoveryKind::Blobs);
        stats.add(RecoveryKind::CertificatesSent, 5);
        stats.record_skew(-300);
        stats.record_skew(200);
        assert_eq!(stats.max_skew(), Some(300));
        assert_eq!(
            stats.snapshot(),
            vec![
                (RecoveryKind::Blobs, 1),
                (RecoveryKind::CertificatesSent, 5)
            ]
        );
    }
}
