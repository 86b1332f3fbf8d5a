//! The frame codec: the one place that decides what a frame is, what is too big and what is
//! malformed.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::TransportError;
use crate::wire::frame::{Envelope, LENGTH_PREFIX_LEN, MAX_FRAME_LENGTH_LIMIT};

/// Encodes any [`Envelope`] and decodes envelopes whose body is an `In`.
///
/// A frame is a big-endian `u32` length prefix and that many bytes of BCS; the maximum body
/// length is enforced in both directions. Every failure is a [`TransportError`], never a panic:
/// after a decoding error the stream must be dropped, since the codec no longer knows where the
/// next frame starts.
///
/// A length prefix alone never makes the decoder reserve room for the body it announces: the
/// buffer grows only as the body's bytes arrive. The server, which reads frames under byte
/// budgets, uses the two halves of decoding directly: [`FrameCodec::body_length`] for a prefix
/// and [`FrameCodec::decode_body`] for a complete body.
#[derive(Debug)]
pub struct FrameCodec<In> {
    max_frame_length: usize,
    /// The length prefix of the current frame was read, its body is not complete yet.
    mid_frame: bool,
    _in: PhantomData<fn() -> In>,
}

impl<In> FrameCodec<In> {
    /// A codec that accepts frame bodies of at most `max_frame_length` bytes (values above
    /// `u32::MAX`, the most a length prefix states, are capped to it).
    pub fn new(max_frame_length: usize) -> Self {
        FrameCodec {
            max_frame_length: max_frame_length.min(MAX_FRAME_LENGTH_LIMIT),
            mid_frame: false,
            _in: PhantomData,
        }
    }

    /// The largest frame body accepted or produced, in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// Whether the length prefix of an incomplete frame has been read.
    ///
    /// Together with a non-empty read buffer, this tells that a frame is partly received.
    pub fn is_mid_frame(&self) -> bool {
        self.mid_frame
    }

    /// The body length announced by a length prefix, in bytes, or
    /// [`TransportError::FrameTooLarge`] if it exceeds the maximum.
    pub fn body_length(&self, prefix: [u8; LENGTH_PREFIX_LEN]) -> Result<usize, TransportError> {
        let declared = u32::from_be_bytes(prefix);
        match usize::try_from(declared) {
            Ok(length) if length <= self.max_frame_length => Ok(length),
            _ => Err(TransportError::FrameTooLarge {
                length: u64::from(declared),
                max: self.max_frame_length,
            }),
        }
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
}

impl<In: DeserializeOwned> FrameCodec<In> {
    /// Decodes a complete frame body (without its length prefix).
    pub fn decode_body(body: &[u8]) -> Result<Envelope<In>, TransportError> {
        bcs::from_bytes(body).map_err(TransportError::Decode)
    }
}

impl<In: DeserializeOwned> Decoder for FrameCodec<In> {
    type Item = Envelope<In>;
    type Error = TransportError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope<In>>, TransportError> {
        let Some(prefix) = src
            .get(..LENGTH_PREFIX_LEN)
            .and_then(|prefix| <[u8; LENGTH_PREFIX_LEN]>::try_from(prefix).ok())
        else {
            return Ok(None);
        };
        let length = self.body_length(prefix)?;
        if src.len() - LENGTH_PREFIX_LEN < length {
            // Wait for the body, without reserving room for it: the caller's reads grow the
            // buffer as bytes arrive.
            self.mid_frame = true;
            return Ok(None);
        }
        self.mid_frame = false;
        src.advance(LENGTH_PREFIX_LEN);
        let body = src.split_to(length);
        Self::decode_body(&body).map(Some)
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
        let body = bcs::to_bytes(envelope).map_err(TransportError::Encode)?;
        let too_large = || TransportError::FrameTooLarge {
            length: body.len() as u64,
            max: self.max_frame_length,
        };
        if body.len() > self.max_frame_length {
            return Err(too_large());
        }
        let prefix = u32::try_from(body.len()).map_err(|_| too_large())?;
        dst.reserve(LENGTH_PREFIX_LEN + body.len());
        dst.put_u32(prefix);
        dst.extend_from_slice(&body);
        Ok(())
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
    fn a_length_prefix_alone_reserves_nothing() {
        let mut codec = FrameCodec::<u64>::new(1 << 24);
        let mut buf = BytesMut::from(&[1, 0, 0, 0, 9][..]);
        let capacity = buf.capacity();
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert!(codec.is_mid_frame());
        assert_eq!(
            buf.capacity(),
            capacity,
            "no room was reserved for the body"
        );
    }

    #[test]
    fn body_length_checks_the_maximum() {
        let codec = FrameCodec::<u64>::new(16);
        assert_eq!(codec.body_length([0, 0, 0, 16]), Ok(16));
        assert_eq!(
            codec.body_length([0, 0, 0, 17]),
            Err(TransportError::FrameTooLarge {
                length: 17,
                max: 16
            })
        );
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
