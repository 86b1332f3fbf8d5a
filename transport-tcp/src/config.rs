//! Options of the client and of the server, each field with its unit and default.
//!
//! Both structs have public fields and a [`Default`]: start from the default and override what
//! you need, e.g. `ClientConfig { request_timeout: Duration::from_secs(2), ..Default::default() }`.
//! Values are checked when a client or server is created.

use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::TransportError;
use crate::frame::{DEFAULT_MAX_FRAME_LENGTH, MAX_FRAME_LENGTH_LIMIT};

/// Default [`ClientConfig::request_timeout`]: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ClientConfig::connect_timeout`]: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ClientConfig::pool_size`]: 2 connections per address.
pub const DEFAULT_POOL_SIZE: usize = 2;
/// Default bound on requests in flight on one connection, both sides: 256 requests.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default frame read timeout, both sides: 30 s.
pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::idle_timeout`]: 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default write timeout, both sides: 30 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::shutdown_grace`]: 10 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Options of a [`Client`](crate::Client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Largest frame body sent or accepted, in bytes. Default [`DEFAULT_MAX_FRAME_LENGTH`]
    /// (16 MiB); at most [`MAX_FRAME_LENGTH_LIMIT`]. A request that encodes larger fails with
    /// [`TransportError::FrameTooLarge`] without touching the connection.
    pub max_frame_length: usize,
    /// Time allowed for one whole request (getting a connection, waiting for an in-flight slot,
    /// sending, and receiving the response). Default [`DEFAULT_REQUEST_TIMEOUT`] (30 s).
    pub request_timeout: Duration,
    /// Time allowed to establish one TCP connection. Default [`DEFAULT_CONNECT_TIMEOUT`] (5 s).
    pub connect_timeout: Duration,
    /// Connections kept to the address, used round-robin. Default [`DEFAULT_POOL_SIZE`] (2);
    /// at least 1.
    pub pool_size: usize,
    /// Requests in flight at once on one connection; further callers wait for a slot (this is the
    /// backpressure). Default [`DEFAULT_MAX_IN_FLIGHT`] (256); at least 1.
    pub max_in_flight: usize,
    /// Time allowed for one write to the socket before the connection is declared broken.
    /// Default [`DEFAULT_WRITE_TIMEOUT`] (30 s).
    pub write_timeout: Duration,
    /// Once the first byte of a response frame has arrived, the whole frame must arrive within
    /// this time or the connection is closed as stalled (failing the requests waiting on it), so
    /// that a server stuck mid-frame does not wedge the connection. Disconnected between 1 and
    /// 1.5 times this after the frame began. Default [`DEFAULT_FRAME_READ_TIMEOUT`] (30 s).
    pub frame_read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            frame_read_timeout: DEFAULT_FRAME_READ_TIMEOUT,
        }
    }
}

impl ClientConfig {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), TransportError> {
        check_frame_length(self.max_frame_length)?;
        check_at_least_one("pool_size", self.pool_size)?;
        check_in_flight(self.max_in_flight)?;
        check_positive("request_timeout", self.request_timeout)?;
        check_positive("connect_timeout", self.connect_timeout)?;
        check_positive("frame_read_timeout", self.frame_read_timeout)?;
        check_positive("write_timeout", self.write_timeout)
    }
}

/// Options of a [`Server`](crate::Server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest frame body accepted or sent, in bytes. Default [`DEFAULT_MAX_FRAME_LENGTH`]
    /// (16 MiB); at most [`MAX_FRAME_LENGTH_LIMIT`]. A longer length prefix closes the connection.
    pub max_frame_length: usize,
    /// Requests of one connection handled at once; when all slots are taken the server stops
    /// reading that connection until one frees up. Default [`DEFAULT_MAX_IN_FLIGHT`] (256);
    /// at least 1.
    pub max_in_flight: usize,
    /// Once the first byte of a frame has arrived, the whole frame must arrive within this time
    /// or the connection is closed as stalled. Checked every quarter of this time, so a stalled
    /// peer is disconnected between 1 and 1.5 times this after its frame began. Time spent
    /// waiting for a free in-flight slot (not reading) does not count. Default
    /// [`DEFAULT_FRAME_READ_TIMEOUT`] (30 s).
    pub frame_read_timeout: Duration,
    /// A connection with no request in flight, no partial frame and no frame received for this
    /// long is closed (checked on the same schedule as `frame_read_timeout`). `None` keeps idle
    /// connections open forever. Default `Some(`[`DEFAULT_IDLE_TIMEOUT`]`)` (10 minutes).
    pub idle_timeout: Option<Duration>,
    /// Time allowed for one write to the socket; a peer that stops reading its responses for
    /// longer is disconnected. Default [`DEFAULT_WRITE_TIMEOUT`] (30 s).
    pub write_timeout: Duration,
    /// On [`Server::shutdown`](crate::Server::shutdown), how long requests in flight may take to
    /// finish and be answered before their connections are cut. Default
    /// [`DEFAULT_SHUTDOWN_GRACE`] (10 s).
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            frame_read_timeout: DEFAULT_FRAME_READ_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl ServerConfig {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), TransportError> {
        check_frame_length(self.max_frame_length)?;
        check_in_flight(self.max_in_flight)?;
        check_positive("frame_read_timeout", self.frame_read_timeout)?;
        if let Some(idle) = self.idle_timeout {
            check_positive("idle_timeout", idle)?;
        }
        check_positive("write_timeout", self.write_timeout)
    }
}

fn check_frame_length(max_frame_length: usize) -> Result<(), TransportError> {
    if (1..=MAX_FRAME_LENGTH_LIMIT).contains(&max_frame_length) {
        Ok(())
    } else {
        Err(TransportError::InvalidConfig(format!(
            "max_frame_length must be between 1 and {MAX_FRAME_LENGTH_LIMIT} bytes, \
             got {max_frame_length}"
        )))
    }
}

fn check_in_flight(max_in_flight: usize) -> Result<(), TransportError> {
    check_at_least_one("max_in_flight", max_in_flight)?;
    if max_in_flight > Semaphore::MAX_PERMITS {
        return Err(TransportError::InvalidConfig(format!(
            "max_in_flight must be at most {}, got {max_in_flight}",
            Semaphore::MAX_PERMITS
        )));
    }
    Ok(())
}

fn check_at_least_one(name: &str, value: usize) -> Result<(), TransportError> {
    if value == 0 {
        return Err(TransportError::InvalidConfig(format!(
            "{name} must be at least 1"
        )));
    }
    Ok(())
}

fn check_positive(name: &str, value: Duration) -> Result<(), TransportError> {
    if value.is_zero() {
        return Err(TransportError::InvalidConfig(format!(
            "{name} must be longer than zero"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ClientConfig::default().validate(), Ok(()));
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let zero_pool = ClientConfig {
            pool_size: 0,
            ..ClientConfig::default()
        };
        assert!(zero_pool.validate().is_err());
        let zero_frame = ServerConfig {
            max_frame_length: 0,
            ..ServerConfig::default()
        };
        assert!(zero_frame.validate().is_err());
        let zero_read_timeout = ServerConfig {
            frame_read_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert!(zero_read_timeout.validate().is_err());
    }
}
