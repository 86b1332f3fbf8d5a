//! Per-request call counts of a [`MemoryNode`](crate::MemoryNode), by [`RequestKind`], so tests
//! can assert what a node was asked.

use std::sync::atomic::{AtomicU64, Ordering};

use quorum_core::protocol::RequestKind;

/// A snapshot of what a node was asked, read with
/// [`FaultHandle::stats`](crate::FaultHandle::stats).
///
/// Every call is counted when it starts, whatever the fault does with it: a call that fails
/// because the node is offline, or that hangs, still counts as asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallStats {
    calls: [u64; RequestKind::ALL.len()],
    /// Calls that a transport fault ([`Fault::Offline`](crate::Fault::Offline),
    /// [`Fault::Flaky`](crate::Fault::Flaky), a crash) failed before they reached the node.
    pub failed: u64,
    /// Calls that [`Fault::Hang`](crate::Fault::Hang) left unanswered.
    pub hung: u64,
}

impl CallStats {
    /// How many requests of `kind` were made.
    pub fn calls(&self, kind: RequestKind) -> u64 {
        self.calls[kind.index()]
    }

    /// How many calls were made, all kinds together.
    pub fn total(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// The kinds of request made at least once, with their counts, in the order of
    /// [`RequestKind::ALL`].
    pub fn called(&self) -> Vec<(RequestKind, u64)> {
        RequestKind::ALL
            .iter()
            .map(|&kind| (kind, self.calls(kind)))
            .filter(|&(_, count)| count > 0)
            .collect()
    }
}

/// The live counters behind [`CallStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: [AtomicU64; RequestKind::ALL.len()],
    failed: AtomicU64,
    hung: AtomicU64,
}

impl Counters {
    pub(crate) fn record_call(&self, kind: RequestKind) {
        self.calls[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_hung(&self) {
        self.hung.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        let mut stats = CallStats {
            failed: self.failed.load(Ordering::Relaxed),
            hung: self.hung.load(Ordering::Relaxed),
            ..CallStats::default()
        };
        for (count, counter) in stats.calls.iter_mut().zip(&self.calls) {
            *count = counter.load(Ordering::Relaxed);
        }
        stats
    }

    pub(crate) fn reset(&self) {
        for counter in &self.calls {
            counter.store(0, Ordering::Relaxed);
        }
        self.failed.store(0, Ordering::Relaxed);
        self.hung.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_snapshot_and_reset() {
        let counters = Counters::default();
        counters.record_call(RequestKind::UploadBlob);
        counters.record_call(RequestKind::UploadBlob);
        counters.record_call(RequestKind::DownloadCertificate);
        counters.record_failed();
        let stats = counters.snapshot();
        assert_eq!(stats.calls(RequestKind::UploadBlob), 2);
        assert_eq!(stats.calls(RequestKind::DownloadCertificate), 1);
        assert_eq!(stats.calls(RequestKind::BlockProposal), 0);
        assert_eq!(stats.total(), 3);
        assert_eq!(stats.failed, 1);
        assert_eq!(
            stats.called(),
            vec![
                (RequestKind::UploadBlob, 2),
                (RequestKind::DownloadCertificate, 1)
            ]
        );
        counters.reset();
        assert_eq!(counters.snapshot(), CallStats::default());
    }
}
