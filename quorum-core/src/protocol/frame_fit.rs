//! The largest messages the protocol's limits allow fit the frame those limits derive
//! ([`Limits::max_frame_length`]): a test beside the messages, so that the limits need not
//! know them.

use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;

use crate::hash::CryptoHash;
use crate::limits::Limits;
use crate::protocol::{Request, Response};
use crate::ConfirmedBlockCertificate;
use crate::{Blob, BlobId, BlobType, BlockHeight, ChainId};

/// BCS size of `body` in a transport envelope (a `u64` request id, then the body).
fn framed<T: Serialize>(body: &T) -> usize {
    bcs::serialized_size(&(u64::MAX, body)).unwrap()
}

/// Bytes of a ULEB128 length prefix for `length`.
fn uleb_len(mut length: usize) -> usize {
    let mut bytes = 1;
    while length >= 0x80 {
        length >>= 7;
        bytes += 1;
    }
    bytes
}

#[test]
fn the_largest_bounded_messages_fit_the_frame() {
    let limits = Limits::DEFAULT;
    let bound = limits.max_bounded_message_bytes();
    let chain_id = ChainId(CryptoHash([7; 32]));

    // A largest blob, in each message that carries one.
    let blob = Blob::data(vec![0xab; limits.max_blob_bytes]);
    let blob_messages = [
        framed(&Request::UploadBlob(blob.clone())),
        framed(&Request::PendingBlob {
            chain_id,
            blob: blob.clone(),
        }),
        framed(&Response::DownloadBlob(Ok(blob))),
    ];
    for bytes in blob_messages {
        assert!(bytes <= limits.max_blob_bytes + Limits::MESSAGE_OVERHEAD);
        assert!(bytes <= bound);
    }

    // A download answer: `max_download_bytes` of certificates, in a list of at most a
    // batch's length (BCS: the list's length prefix, then the certificates one after
    // another), around which the answer adds what an empty answer weighs.
    let empty: Result<Vec<ConfirmedBlockCertificate>, _> = Ok(Vec::new());
    let empty = framed(&Response::DownloadCertificatesByHeights(empty));
    let answer = empty - uleb_len(0)
        + uleb_len(limits.max_certificates_per_batch)
        + limits.max_download_bytes;
    assert!(answer <= limits.max_download_bytes + Limits::MESSAGE_OVERHEAD);
    assert!(answer <= bound);

    // The lists a batch bounds.
    let ids = vec![
        BlobId {
            hash: CryptoHash([1; 32]),
            blob_type: BlobType::Data,
        };
        limits.max_certificates_per_batch
    ];
    let heights = vec![BlockHeight(u64::MAX); limits.max_certificates_per_batch];
    let lists = [
        framed(&Request::MissingBlobIds(ids.clone())),
        framed(&Response::MissingBlobIds(Ok(ids))),
        framed(&Request::DownloadCertificatesByHeights { chain_id, heights }),
    ];
    for bytes in lists {
        assert!(bytes <= bound);
    }
    assert!(bound <= limits.max_frame_length());
}
