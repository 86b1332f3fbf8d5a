//! Loopback addresses with free ports for the demo's validators: bound now to learn the
//! ports; each listener is bound again when its server starts.

use crate::address::Scheme;
use crate::error::CliError;
use crate::operator::validator;

/// A loopback TCP address with a free port.
pub(crate) async fn free_tcp_address() -> Result<String, CliError> {
    let listener = validator::bind("127.0.0.1:0").await?;
    let address = listener
        .local_addr()
        .map_err(quorum_transport_tcp::TransportError::from)?;
    Ok(address.to_string())
}

/// A loopback QUIC address (`quic://`) with a free UDP port.
pub(crate) fn free_quic_address() -> Result<String, CliError> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map_err(quorum_transport_tcp::TransportError::from)?;
    Ok(format!("{}{socket}", Scheme::Quic.prefix()))
}

/// `count` loopback TCP addresses with free ports.
pub(crate) async fn free_addresses(count: usize) -> Result<Vec<String>, CliError> {
    let mut addresses = Vec::with_capacity(count);
    for _ in 0..count {
        addresses.push(free_tcp_address().await?);
    }
    Ok(addresses)
}
