//! Per-method call counts of a [`MemoryNode`](crate::MemoryNode), so tests can assert what a
//! node was asked.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A method of [`ValidatorNode`](quorum_core::ValidatorNode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `handle_block_proposal`.
    HandleBlockProposal,
    /// `handle_lite_certificate`.
    HandleLiteCertificate,
    /// `handle_confirmed_certificate`.
    HandleConfirmedCertificate,
    /// `handle_validated_certificate`.
    HandleValidatedCertificate,
    /// `handle_timeout_certificate`.
    HandleTimeoutCertificate,
    /// `handle_confirmed_certificates`.
    HandleConfirmedCertificates,
    /// `handle_chain_info_query`.
    HandleChainInfoQuery,
    /// `upload_blob`.
    UploadBlob,
    /// `handle_pending_blob`.
    HandlePendingBlob,
    /// `download_blob`.
    DownloadBlob,
    /// `missing_blob_ids`.
    MissingBlobIds,
    /// `download_certificate`.
    DownloadCertificate,
    /// `download_certificates_by_heights`.
    DownloadCertificatesByHeights,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 13] = [
        Method::HandleBlockProposal,
        Method::HandleLiteCertificate,
        Method::HandleConfirmedCertificate,
        Method::HandleValidatedCertificate,
        Method::HandleTimeoutCertificate,
        Method::HandleConfirmedCertificates,
        Method::HandleChainInfoQuery,
        Method::UploadBlob,
        Method::HandlePendingBlob,
        Method::DownloadBlob,
        Method::MissingBlobIds,
        Method::DownloadCertificate,
        Method::DownloadCertificatesByHeights,
    ];

    /// The method's name in the trait.
    pub fn name(self) -> &'static str {
        match self {
            Method::HandleBlockProposal => "handle_block_proposal",
            Method::HandleLiteCertificate => "handle_lite_certificate",
            Method::HandleConfirmedCertificate => "handle_confirmed_certificate",
            Method::HandleValidatedCertificate => "handle_validated_certificate",
            Method::HandleTimeoutCertificate => "handle_timeout_certificate",
            Method::HandleConfirmedCertificates => "handle_confirmed_certificates",
            Method::HandleChainInfoQuery => "handle_chain_info_query",
            Method::UploadBlob => "upload_blob",
            Method::HandlePendingBlob => "handle_pending_blob",
            Method::DownloadBlob => "download_blob",
            Method::MissingBlobIds => "missing_blob_ids",
            Method::DownloadCertificate => "download_certificate",
            Method::DownloadCertificatesByHeights => "download_certificates_by_heights",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of what a node was asked, read with
/// [`FaultHandle::stats`](crate::FaultHandle::stats).
///
/// Every call is counted when it starts, whatever the fault does with it: a call that fails
/// because the node is offline, or that hangs, still counts as asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallStats {
    calls: [u64; Method::ALL.len()],
    /// Calls that a transport fault ([`Fault::Offline`](crate::Fault::Offline),
    /// [`Fault::Flaky`](crate::Fault::Flaky), a crash) failed before they reached the node.
    pub failed: u64,
    /// Calls that [`Fault::Hang`](crate::Fault::Hang) left unanswered.
    pub hung: u64,
}

impl CallStats {
    /// How many calls of `method` were made.
    pub fn calls(&self, method: Method) -> u64 {
        self.calls[method.index()]
    }

    /// How many calls were made, all methods together.
    pub fn total(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// The methods that were called at least once, with their counts, in declaration order.
    pub fn called(&self) -> Vec<(Method, u64)> {
        Method::ALL
            .iter()
            .map(|&method| (method, self.calls(method)))
            .filter(|&(_, count)| count > 0)
            .collect()
    }
}

/// The live counters behind [`CallStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: [AtomicU64; Method::ALL.len()],
    failed: AtomicU64,
    hung: AtomicU64,
}

impl Counters {
    pub(crate) fn record_call(&self, method: Method) {
        self.calls[method.index()].fetch_add(1, Ordering::Relaxed);
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
    fn methods_index_their_slot() {
        for (i, method) in Method::ALL.iter().enumerate() {
            assert_eq!(method.index(), i);
        }
    }

    #[test]
    fn counters_snapshot_and_reset() {
        let counters = Counters::default();
        counters.record_call(Method::UploadBlob);
        counters.record_call(Method::UploadBlob);
        counters.record_call(Method::DownloadCertificate);
        counters.record_failed();
        let stats = counters.snapshot();
        assert_eq!(stats.calls(Method::UploadBlob), 2);
        assert_eq!(stats.calls(Method::DownloadCertificate), 1);
        assert_eq!(stats.calls(Method::HandleBlockProposal), 0);
        assert_eq!(stats.total(), 3);
        assert_eq!(stats.failed, 1);
        assert_eq!(
            stats.called(),
            vec![(Method::UploadBlob, 2), (Method::DownloadCertificate, 1)]
        );
        counters.reset();
        assert_eq!(counters.snapshot(), CallStats::default());
    }
}
