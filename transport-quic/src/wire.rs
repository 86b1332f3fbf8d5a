//! Messages on a QUIC stream: each a big-endian `u32` length, then its BCS encoding. A request
//! stream carries one request from the client and one answer back; a subscription's stream
//! carries the first answer, then one notification after another.

use quinn::{ReadError, ReadExactError, RecvStream, SendStream, WriteError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::budget::{Budgets, Charge};
use crate::error::QuicError;

/// Bytes of a message's length prefix.
const LENGTH_PREFIX: usize = 4;

/// Writes `message` as one length-prefixed frame of at most `max` bytes.
pub(crate) async fn write_message<T: Serialize>(
    send: &mut SendStream,
    message: &T,
    max: usize,
) -> Result<(), QuicError> {
    let body = bcs::to_bytes(message).map_err(QuicError::Encode)?;
    if body.len() > max {
        return Err(QuicError::TooLarge {
            length: body.len(),
            max,
        });
    }
    let length = u32::try_from(body.len()).map_err(|_| QuicError::TooLarge {
        length: body.len(),
        max,
    })?;
    let mut frame = Vec::with_capacity(LENGTH_PREFIX + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    send.write_all(&frame).await.map_err(written)
}

/// A message received, and the bytes it holds on the server's budgets.
pub(crate) struct Received<T> {
    pub(crate) message: T,
    pub(crate) charge: Charge,
}

/// Reads one frame of at most `max` bytes and decodes it; `None` if the stream ended cleanly
/// before one began. With `budgets`, the bytes are charged as they arrive.
pub(crate) async fn read_message<T: DeserializeOwned>(
    recv: &mut RecvStream,
    max: usize,
    budgets: Option<&Budgets>,
) -> Result<Option<Received<T>>, QuicError> {
    let mut header = [0u8; LENGTH_PREFIX];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(QuicError::Truncated),
        Err(ReadExactError::ReadError(error)) => return Err(read(error)),
    }
    let length = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if length > max {
        return Err(QuicError::TooLarge { length, max });
    }
    // Grown as bytes arrive: a length alone reserves nothing.
    let mut body = Vec::new();
    let mut charge = Charge::default();
    while body.len() < length {
        match recv.read_chunk(length - body.len(), true).await {
            Ok(Some(chunk)) => {
                if let Some(budgets) = budgets {
                    budgets.charge(&mut charge, chunk.bytes.len()).await;
                }
                body.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => return Err(QuicError::Truncated),
            Err(error) => return Err(read(error)),
        }
    }
    let message = bcs::from_bytes(&body).map_err(QuicError::Decode)?;
    Ok(Some(Received { message, charge }))
}

/// A failed read, as the transport's error.
fn read(error: ReadError) -> QuicError {
    match error {
        ReadError::ConnectionLost(error) => QuicError::ConnectionLost(error),
        _ => QuicError::StreamClosed,
    }
}

/// A failed write, as the transport's error.
fn written(error: WriteError) -> QuicError {
    match error {
        WriteError::ConnectionLost(error) => QuicError::ConnectionLost(error),
        _ => QuicError::StreamClosed,
    }
}
