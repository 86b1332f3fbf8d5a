//! The writing half of a connection, shared by client and server: a task that writes encoded
//! frames in order, batching whatever is queued into one flush.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::error::TransportError;

/// Capacity of the write buffer in front of the socket, in bytes: small frames queued together
/// leave in one system call.
const WRITE_BUFFER_CAPACITY: usize = 64 * 1024;

/// Writes every frame received on `frames` until the channel is closed and drained, then flushes
/// and shuts the write side down. Each write or flush must complete within `write_timeout`.
///
/// A frame is dropped as soon as it has been handed to the socket (or to the write buffer), so
/// whatever it carries along (the server's memory charge for it) is released then.
///
/// Returns the error that stopped it; the caller decides how loudly to report it.
pub(crate) async fn write_frames<W: AsyncWrite + Unpin, F: AsRef<[u8]>>(
    socket: W,
    mut frames: mpsc::Receiver<F>,
    write_timeout: Duration,
) -> Result<(), TransportError> {
    let mut socket = BufWriter::with_capacity(WRITE_BUFFER_CAPACITY, socket);
    while let Some(frame) = frames.recv().await {
        within(write_timeout, socket.write_all(frame.as_ref())).await?;
        drop(frame);
        while let Ok(frame) = frames.try_recv() {
            within(write_timeout, socket.write_all(frame.as_ref())).await?;
        }
        within(write_timeout, socket.flush()).await?;
    }
    within(write_timeout, socket.shutdown()).await
}

async fn within(
    limit: Duration,
    operation: impl std::future::Future<Output = io::Result<()>>,
) -> Result<(), TransportError> {
    match timeout(limit, operation).await {
        Ok(result) => result.map_err(TransportError::from),
        Err(_) => Err(TransportError::Io {
            kind: io::ErrorKind::TimedOut,
            message: format!("peer did not accept data for {limit:?}"),
        }),
    }
}
