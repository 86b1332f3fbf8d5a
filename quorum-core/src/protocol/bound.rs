//! How large an answer can be: the bound a server sets aside for a [`Request`]'s
//! [`Response`](super::Response) before the node answers, derived from the protocol's
//! [`Limits`].

use super::Request;
use crate::limits::Limits;
use crate::ReceivedEntry;

impl Request {
    /// Bound on the bytes of an ordinary response (chain information without pending values,
    /// a vote, an id, an error): 64 KiB. A chain's information carries its description, which
    /// a block of at most [`Limits::max_block_bytes`] made; a transport still sends a larger
    /// one, charged as it is built.
    pub const ORDINARY_RESPONSE_BYTES: usize = 64 << 10;

    /// The most bytes the BCS encoding of the answer to this request takes under `limits`:
    /// what a server sets aside before the node answers.
    ///
    /// * chain information: [`Self::ORDINARY_RESPONSE_BYTES`] plus the hashes and the page of
    ///   the received log it asks for, plus two certificates when it asks for pending values;
    /// * a blob download: the largest blob;
    /// * missing blob ids: one id per certificate of a batch;
    /// * a certificate download: one largest certificate (its block, an outcome no larger, and
    ///   the signatures of a largest committee);
    /// * a download by heights: its byte budget plus one largest certificate (a download
    ///   always gives at least one);
    /// * anything else: [`Self::ORDINARY_RESPONSE_BYTES`].
    pub fn response_bound(&self, limits: &Limits) -> usize {
        let ordinary = Self::ORDINARY_RESPONSE_BYTES;
        let certificate = limits
            .max_block_bytes
            .saturating_mul(2)
            .saturating_add(ordinary);
        match self {
            Request::ChainInfoQuery(query) => {
                let hashes = usize::try_from(limits.max_certificate_hashes_per_query)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(32);
                let log = limits
                    .max_received_log_entries_per_query
                    .saturating_mul(ReceivedEntry::ENCODED_BYTES);
                // A proposal and a locking block, each a block with a little more.
                let values = if query.request_manager_values {
                    certificate.saturating_mul(2)
                } else {
                    0
                };
                ordinary
                    .saturating_add(hashes)
                    .saturating_add(log)
                    .saturating_add(values)
            }
            Request::DownloadBlob(_) => limits.max_blob_bytes.saturating_add(ordinary),
            Request::MissingBlobIds(_) => limits
                .max_certificates_per_batch
                .saturating_mul(33)
                .saturating_add(ordinary),
            Request::DownloadCertificate(_) => certificate,
            Request::DownloadCertificatesByHeights { .. } => {
                limits.max_download_bytes.saturating_add(certificate)
            }
            _ => ordinary,
        }
    }
}
