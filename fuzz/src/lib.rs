//! The decode path of the validator protocol, exactly as a server and a client run it, with the
//! properties that every input must satisfy (DESIGN §6, §6.1, §10).
//!
//! Shared by the libFuzzer targets of this crate (`fuzz_targets/`) and by the stable, seeded
//! mutation test `transport-tcp/tests/request_fuzz.rs`, which includes this file as a module, so
//! both exercise one decode path and check one set of properties. It uses the public API of
//! `quorum-transport-tcp` only.
//!
//! [`check_stream`] decodes a byte stream of frames twice:
//!
//! * as a server does: a length prefix through [`FrameCodec::body_length`], then the complete
//!   body through [`FrameCodec::decode_body`];
//! * as a client does: [`FrameCodec`] as a [`Decoder`] over a growing buffer, fed in chunks,
//!   then `decode_eof` at the end of the stream.
//!
//! and panics (a fuzzing finding) unless:
//!
//! * neither path panics;
//! * both paths decode the same envelopes and stop at the same error;
//! * the [`Decoder`] never grows the read buffer: a length prefix alone reserves nothing, so
//!   what the decoder holds is bounded by the bytes that arrived;
//! * every decoded envelope re-encodes to exactly the bytes it was decoded from (the encoding is
//!   canonical, so what was accepted is no larger than what was sent), and those bytes decode
//!   to the same value again;
//! * a frame is refused as too large only when its prefix exceeds the maximum.

use std::fmt::Debug;

use bytes::BytesMut;
use quorum_core::Limits;
use quorum_transport_tcp::{Envelope, FrameCodec, TransportError, LENGTH_PREFIX_LEN};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::Decoder;

/// Largest frame body the decoders accept, in bytes: the servers' and clients' default, the
/// frame the protocol's default limits derive.
pub const MAX_FRAME_BYTES: usize = Limits::DEFAULT.max_frame_length();

/// Smallest frame that can carry an envelope, in bytes: the length prefix, the 8-byte request
/// id and a one-byte variant index.
pub const MIN_ENVELOPE_FRAME_BYTES: usize = LENGTH_PREFIX_LEN + 8 + 1;

/// What decoding a stream of frames gave: the envelopes decoded before the first error, and
/// that error (`None` when the stream ended cleanly after a whole frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// The envelopes, in stream order.
    pub envelopes: Vec<Envelope<T>>,
    /// Why decoding stopped, unless the stream ended between frames.
    pub error: Option<TransportError>,
}

/// Decodes `wire` as a server and as a client would (the client reading it in chunks of
/// `chunk_len` bytes; `0` or anything at least `wire.len()` means all at once) and checks the
/// properties listed in the module documentation, panicking if one fails.
pub fn check_stream<T>(wire: &[u8], chunk_len: usize) -> Decoded<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let (server, bodies) = server_decode::<T>(wire);
    for (envelope, body) in server.envelopes.iter().zip(&bodies) {
        check_round_trip(envelope, body);
    }
    let client = client_decode::<T>(wire, chunk_len);
    assert_eq!(
        server, client,
        "the server's and the client's decoders disagree"
    );
    assert!(
        server.envelopes.len() * MIN_ENVELOPE_FRAME_BYTES <= wire.len(),
        "more envelopes decoded than the input can hold"
    );
    server
}

/// The server's path: a prefix, its length checked, then the whole body decoded. Returns the
/// bodies of the decoded envelopes too.
fn server_decode<T: DeserializeOwned>(wire: &[u8]) -> (Decoded<T>, Vec<&[u8]>) {
    let codec = FrameCodec::<T>::new(MAX_FRAME_BYTES);
    let mut envelopes = Vec::new();
    let mut bodies = Vec::new();
    let mut rest = wire;
    let error = loop {
        if rest.is_empty() {
            break None;
        }
        let Some((prefix, after)) = rest.split_first_chunk::<LENGTH_PREFIX_LEN>() else {
            break Some(TransportError::Truncated);
        };
        let length = match codec.body_length(*prefix) {
            Ok(length) => length,
            Err(error) => {
                let declared = u64::from(u32::from_be_bytes(*prefix));
                assert!(
                    declared > MAX_FRAME_BYTES as u64,
                    "a prefix of {declared} bytes, within the maximum, was refused: {error}"
                );
                break Some(error);
            }
        };
        assert!(length <= MAX_FRAME_BYTES, "body length above the maximum");
        let Some((body, after)) = after.split_at_checked(length) else {
            break Some(TransportError::Truncated);
        };
        match FrameCodec::<T>::decode_body(body) {
            Ok(envelope) => {
                envelopes.push(envelope);
                bodies.push(body);
            }
            Err(error) => break Some(error),
        }
        rest = after;
    };
    (Decoded { envelopes, error }, bodies)
}

/// The client's path: the codec as a [`Decoder`] over a buffer that the stream fills in chunks,
/// then the end of the stream.
fn client_decode<T: DeserializeOwned>(wire: &[u8], chunk_len: usize) -> Decoded<T> {
    let chunk_len = if chunk_len == 0 {
        wire.len().max(1)
    } else {
        chunk_len
    };
    let mut codec = FrameCodec::<T>::new(MAX_FRAME_BYTES);
    let mut buffer = BytesMut::new();
    let mut envelopes = Vec::new();
    for chunk in wire.chunks(chunk_len) {
        buffer.extend_from_slice(chunk);
        loop {
            match decode_without_reserving(&mut codec, &mut buffer, false) {
                Ok(Some(envelope)) => envelopes.push(envelope),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        envelopes,
                        error: Some(error),
                    }
                }
            }
        }
    }
    loop {
        match decode_without_reserving(&mut codec, &mut buffer, true) {
            Ok(Some(envelope)) => envelopes.push(envelope),
            Ok(None) => {
                return Decoded {
                    envelopes,
                    error: None,
                }
            }
            Err(error) => {
                return Decoded {
                    envelopes,
                    error: Some(error),
                }
            }
        }
    }
}

/// One `decode` (or `decode_eof`) call, checking that it did not grow the buffer.
fn decode_without_reserving<T: DeserializeOwned>(
    codec: &mut FrameCodec<T>,
    buffer: &mut BytesMut,
    eof: bool,
) -> Result<Option<Envelope<T>>, TransportError> {
    let capacity = buffer.capacity();
    let result = if eof {
        codec.decode_eof(buffer)
    } else {
        codec.decode(buffer)
    };
    assert!(
        buffer.capacity() <= capacity,
        "the decoder grew its buffer from {capacity} to {} bytes",
        buffer.capacity()
    );
    result
}

/// Checks that `envelope`, decoded from `body`, re-encodes to exactly `body` and decodes back to
/// itself.
fn check_round_trip<T>(envelope: &Envelope<T>, body: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let frame = FrameCodec::<T>::new(MAX_FRAME_BYTES)
        .encode_frame(envelope)
        .unwrap_or_else(|error| panic!("a decoded envelope does not re-encode: {error}"));
    let again = FrameCodec::<T>::decode_body(&frame[LENGTH_PREFIX_LEN..])
        .unwrap_or_else(|error| panic!("a re-encoded envelope does not decode: {error}"));
    assert_eq!(&again, envelope, "re-encoding changed the decoded value");
    assert!(
        frame[LENGTH_PREFIX_LEN..] == *body,
        "a decoded envelope re-encodes to other bytes than were accepted \
         ({} bytes accepted, {} re-encoded): the encoding is not canonical",
        body.len(),
        frame.len() - LENGTH_PREFIX_LEN
    );
}
