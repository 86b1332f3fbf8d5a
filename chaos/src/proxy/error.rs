//! [`ProxyError`]: why a [`FaultProxy`](super::FaultProxy) did not start.

use std::io;
use std::net::SocketAddr;

/// Why [`FaultProxy::start`](super::FaultProxy::start) failed. Failures of single
/// connections (the upstream refusing, a peer resetting) are not errors: the proxy logs and
/// counts them and the client sees its connection reset.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is not a loopback address. The proxy only ever runs on loopback, so that
    /// a test can never inject faults into a real network.
    #[error(
        "upstream {upstream} is not a loopback address: the fault proxy only runs on loopback"
    )]
    NotLoopback {
        /// The upstream that was asked for.
        upstream: SocketAddr,
    },
    /// The proxy could not listen on its loopback address.
    #[error("the fault proxy cannot listen on {addr}: {source}")]
    Bind {
        /// The address it tried to listen on.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// `Ok` when `upstream` is on loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`).
pub(crate) fn ensure_loopback(upstream: SocketAddr) -> Result<(), ProxyError> {
    if upstream.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(ProxyError::NotLoopback { upstream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_accepted() {
        for addr in [
            "127.0.0.1:9",
            "127.1.2.3:9",
            "[::1]:9",
            "[::ffff:127.0.0.1]:9",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert!(ensure_loopback(addr).is_ok(), "{addr}");
        }
    }

    #[test]
    fn other_addresses_are_refused() {
        for addr in [
            "0.0.0.0:9",
            "192.0.2.1:9",
            "10.0.0.1:9",
            "[::]:9",
            "[2001:db8::1]:9",
            "[::ffff:192.0.2.1]:9",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let error = ensure_loopback(addr).unwrap_err();
            assert!(
                matches!(error, ProxyError::NotLoopback { upstream } if upstream == addr),
                "{addr}"
            );
            assert!(error.to_string().contains("not a loopback address"));
        }
    }
}
