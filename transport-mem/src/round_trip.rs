//! The optional BCS round trip of requests and responses, which catches state that does not
//! survive the wire.

use quorum_core::{NodeError, TransportErrorKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes `value` with BCS and decodes the bytes again, as a real transport would.
///
/// A value that fails to encode or to decode becomes
/// `NodeError::Transport(TransportErrorKind::Codec)` (and is logged at warn level).
pub fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> Result<T, NodeError> {
    let bytes = bcs::to_bytes(value).map_err(|error| {
        tracing::warn!(%error, type_name = std::any::type_name::<T>(), "BCS encoding failed");
        NodeError::Transport(TransportErrorKind::Codec)
    })?;
    bcs::from_bytes(&bytes).map_err(|error| {
        tracing::warn!(%error, type_name = std::any::type_name::<T>(), "BCS decoding failed");
        NodeError::Transport(TransportErrorKind::Codec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serializer};

    /// Encodes as the byte 2, but decodes as a `bool`, which BCS only accepts as 0 or 1.
    #[derive(Debug, Deserialize)]
    struct Liar {
        _flag: bool,
    }

    impl Serialize for Liar {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_u8(2)
        }
    }

    /// Refuses to be encoded.
    #[derive(Debug, Deserialize)]
    struct Unencodable;

    impl Serialize for Unencodable {
        fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("not encodable"))
        }
    }

    #[test]
    fn decode_failure_is_a_codec_error() {
        assert_eq!(
            round_trip(&Liar { _flag: true }).unwrap_err(),
            NodeError::Transport(TransportErrorKind::Codec)
        );
    }

    #[test]
    fn encode_failure_is_a_codec_error() {
        assert_eq!(
            round_trip(&Unencodable).unwrap_err(),
            NodeError::Transport(TransportErrorKind::Codec)
        );
    }

    #[test]
    fn errors_and_results_survive() {
        let value: Result<Vec<u64>, NodeError> = Err(NodeError::MissingCertificateValue);
        assert_eq!(round_trip(&value).unwrap(), value);
        let value: Result<Vec<u64>, NodeError> = Ok(vec![1, 2, 3]);
        assert_eq!(round_trip(&value).unwrap(), value);
    }
}
