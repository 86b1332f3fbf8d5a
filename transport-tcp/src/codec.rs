//! The frame codec: the one place that decides what a frame is, what is too big and what is
//! malformed.

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::error::TransportError;
use crate::frame::{Envelope, LENGTH_PREFIX_LEN};

/// Encodes any [`Envelope`] and decodes envelopes whose body is an `In`.
///
/// Wraps a [`LengthDelimitedCodec`] (big-endian `u32` length prefix, maximum body length enforced
/// on both directions) and (de)serializes the body with BCS. Every failure is a
/// [`TransportError`], never a panic: after a decoding error the stream must be dropped, since the
/// codec no longer knows where the next frame starts.
#[derive(Debug)]
pub struct FrameCodec<In> {
    inner: LengthDelimitedCodec,
    /// The length prefix of the current frame was consumed, its body is not complete yet.
    mid_frame: bool,
    _in: PhantomData<fn() -> In>,
}

impl<In> FrameCodec<In> {
    /// A codec that accepts frame bodies of at most `max_frame_length` bytes (values above
    /// [`MAX_FRAME_LENGTH_LIMIT`](crate::MAX_FRAME_LENGTH_LIMIT) are capped to it).
    pub fn new(max_frame_length: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(LENGTH_PREFIX_LEN)
            .big_endian()
            .max_frame_length(max_frame_length)
            .new_codec();
        FrameCodec {
            inner,
            mid_frame: false,
            _in: PhantomData,
        }
    }

    /// The largest frame body accepted or produced, in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.inner.max_frame_length()
    }

    /// Whether bytes of an incomplete frame have been consumed from the buffer.
    ///
    /// Together with a non-empty read buffer, this tells that a frame is partly received.
    pub fn is_mid_frame(&self) -> bool {
        self.mid_frame
    }

    /// Encodes one envelope into a complete frame (length prefix included).
    pub fn encode_frame<T: Serialize>(
        &mut self,
        envelope: &Envelope<T>,
    ) -> Result<Bytes, TransportError> {
        let mut dst = BytesMut::new();
        self.encode(envelope, &mut dst)?;
        Ok(dst.freeze())
    }

    /// Maps an error of the inner codec, whose only decoding failure is an oversize length
    /// prefix still at the front of `src`.
    fn oversize(&self, src: &BytesMut) -> TransportError {
        let length = src
            .get(..LENGTH_PREFIX_LEN)
            .and_then(|prefix| <[u8; LENGTH_PREFIX_LEN]>::try_from(prefix).ok())
            .map_or(u64::MAX, |prefix| u64::from(u32::from_be_bytes(prefix)));
        TransportError::FrameTooLarge {
            length,
            max: self.max_frame_length(),
        }
    }
}

impl<In: DeserializeOwned> Decoder for FrameCodec<In> {
    type Item = Envelope<In>;
    type Error = TransportError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope<In>>, TransportError> {
        let before = src.len();
        let frame = match self.inner.decode(src) {
            Ok(frame) => frame,
            Err(_) => return Err(self.oversize(src)),
        };
        match frame {
            Some(body) => {
                self.mid_frame = false;
                bcs::from_bytes(&body)
                    .map(Some)
                    .map_err(|error| TransportError::Decode(error.to_string()))
            }
            None => {
                // The inner codec consumes input without yielding a frame only when it takes a
                // length prefix and waits for the body.
                self.mid_frame |= src.len() < before;
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Envelope<In>>, TransportError> {
        match self.decode(src)? {
            Some(envelope) => Ok(Some(envelope)),
            None if self.mid_frame || !src.is_empty() => Err(TransportError::Truncated),
            None => Ok(None),
        }
    }
}

impl<In, T: Serialize> Encoder<&Envelope<T>> for FrameCodec<In> {
    type Error = TransportError;

    fn encode(&mut self, envelope: &Envelope<T>, dst: &mut BytesMut) -> Result<(), TransportError> {
        let body =
            bcs::to_bytes(envelope).map_err(|error| TransportError::Encode(error.to_string()))?;
        let length = body.len();
        // The inner codec refuses only bodies longer than the maximum.
        self.inner
            .encode(Bytes::from(body), dst)
            .map_err(|_| TransportError::FrameTooLarge {
                length: length as u64,
                max: self.max_frame_length(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_one_buffer() {
        let mut codec = FrameCodec::<String>::new(64);
        let mut buf = BytesMut::new();
        for (id, text) in [(1, "one"), (2, "two")] {
            let envelope = Envelope {
                request_id: id,
                body: text.to_string(),
            };
            codec.encode(&envelope, &mut buf).unwrap();
        }
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().body, "one");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().request_id, 2);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(!codec.is_mid_frame());
    }

    #[test]
    fn oversize_prefix_reports_declared_length() {
        let mut codec = FrameCodec::<u64>::new(16);
        let mut buf = BytesMut::from(&[0, 0, 1, 0, 9][..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(TransportError::FrameTooLarge {
                length: 256,
                max: 16
            })
        );
    }

    #[test]
    fn oversize_outgoing_frame_is_refused() {
        let mut codec = FrameCodec::<()>::new(8);
        let envelope = Envelope {
            request_id: 7,
            body: vec![0u8; 100],
        };
        assert!(matches!(
            codec.encode_frame(&envelope),
            Err(TransportError::FrameTooLarge { max: 8, .. })
        ));
    }

    #[test]
    fn truncation_is_detected_after_and_before_the_prefix() {
        let mut codec = FrameCodec::<u64>::new(64);
        let mut buf = BytesMut::from(&[0, 0, 0, 16, 1, 2][..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert!(codec.is_mid_frame());
        assert_eq!(codec.decode_eof(&mut buf), Err(TransportError::Truncated));

        let mut codec = FrameCodec::<u64>::new(64);
        let mut buf = BytesMut::from(&[0, 0][..]);
        assert_eq!(codec.decode_eof(&mut buf), Err(TransportError::Truncated));
    }

    #[test]
    fn undecodable_body_is_an_error() {
        let mut codec = FrameCodec::<u64>::new(64);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(TransportError::Decode(_))
        ));
    }
}
