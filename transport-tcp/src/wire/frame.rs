//! What travels on the wire: one frame per message.
//!
//! A frame is a [`LENGTH_PREFIX_LEN`]-byte big-endian unsigned length followed by that many bytes
//! of body; the body is the BCS encoding of an [`Envelope`]. Requests and responses use the same
//! envelope, and a response carries the `request_id` of the request it answers, so one connection
//! can carry many requests at once and answers may come back in any order.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Size of the length prefix in front of every frame body, in bytes (a big-endian `u32`).
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The largest maximum frame length that can be configured, in bytes: what a `u32` prefix can
/// express.
pub(crate) const MAX_FRAME_LENGTH_LIMIT: usize = u32::MAX as usize;

/// The body of every frame: a request or a response, tagged with the request it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Chosen by the client, unique among its outstanding requests; echoed in the response.
    pub request_id: u64,
    /// The request or response itself.
    pub body: T,
}

/// What a request or a response type must be to travel in a frame.
///
/// Implemented for every type that qualifies; never implement it by hand.
pub trait WireMessage: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> WireMessage for T {}
