//! The wire: what crosses a connection, for client and server alike.
//!
//! * `frame`: a frame's [`Envelope`](frame::Envelope) and its length prefix.
//! * `codec`: [`FrameCodec`](codec::FrameCodec), which cuts bytes into frames and frames into
//!   envelopes, within a maximum length.
//! * `writer`: the task that writes a connection's frames in order.

pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod writer;
