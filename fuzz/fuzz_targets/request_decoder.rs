//! libFuzzer target: arbitrary bytes as a stream of request frames, through both decode paths of
//! the transport (a server's and a client's; see `quorum_fuzz::check_stream`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use quorum_fuzz::check_stream;
use quorum_core::protocol::Request;

/// The client-side decoder also reads the input in chunks of this many bytes, so that frames
/// split across reads are exercised.
const CHUNK_BYTES: usize = 7;

fuzz_target!(|data: &[u8]| {
    let whole = check_stream::<Request>(data, 0);
    let chunked = check_stream::<Request>(data, CHUNK_BYTES);
    assert_eq!(
        whole, chunked,
        "the result depends on how the input was split"
    );
});
