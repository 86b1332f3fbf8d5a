//! Validator addresses name their transport (DESIGN §6.2): `tcp://host:port`,
//! `quic://host:port`, or a bare `host:port`, which stays TCP. A client picks the transport of
//! each validator from its committee entry; a QUIC entry must list the validator's network key.

use std::sync::Arc;

use quorum_core::{ValidatorInfo, ValidatorNode, ValidatorPublicKey};
use quorum_transport_quic::QuicValidatorNode;
use quorum_transport_tcp::TcpValidatorNode;

use crate::error::{AddressError, CliError};

/// A transport an address can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `tcp://host:port` or a bare `host:port`.
    Tcp,
    /// `quic://host:port`.
    Quic,
}

impl Scheme {
    /// The prefix an address of this transport starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Tcp => "tcp://",
            Scheme::Quic => "quic://",
        }
    }
}

/// Which transport each validator of a committee made in one place is reached over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// Every validator over TCP.
    #[default]
    Tcp,
    /// Every validator over QUIC.
    Quic,
    /// The first half over TCP, the others over QUIC.
    Mixed,
}

impl Layout {
    /// The transport of validator `index` of `count`.
    pub fn scheme(self, index: usize, count: usize) -> Scheme {
        match self {
            Layout::Tcp => Scheme::Tcp,
            Layout::Quic => Scheme::Quic,
            Layout::Mixed if index < count / 2 => Scheme::Tcp,
            Layout::Mixed => Scheme::Quic,
        }
    }

    /// `host:port` as validator `index` of `count` is addressed: bare for TCP, as before
    /// QUIC existed, `quic://host:port` for QUIC.
    pub fn address(self, index: usize, count: usize, host_port: &str) -> String {
        match self.scheme(index, count) {
            Scheme::Tcp => host_port.to_owned(),
            Scheme::Quic => format!("{}{host_port}", Scheme::Quic.prefix()),
        }
    }
}

/// The transport `address` names and its `host:port`, if it is well formed.
pub fn parse(address: &str) -> Option<(Scheme, &str)> {
    let (scheme, rest) = if let Some(rest) = address.strip_prefix(Scheme::Quic.prefix()) {
        (Scheme::Quic, rest)
    } else if let Some(rest) = address.strip_prefix(Scheme::Tcp.prefix()) {
        (Scheme::Tcp, rest)
    } else {
        (Scheme::Tcp, address)
    };
    let well_formed = rest.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok()
    });
    well_formed.then_some((scheme, rest))
}

/// Time given to QUIC endpoints to send their connections' closes before the program goes on
/// (and usually ends).
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_millis(10);

/// How a client reaches validators: the settings of each transport, and the QUIC nodes made,
/// to be closed when the program is done with them ([`Clients::close`]).
#[derive(Debug, Default)]
pub struct Clients {
    /// Over TCP.
    pub tcp: quorum_transport_tcp::ClientConfig,
    /// Over QUIC.
    pub quic: quorum_transport_quic::ClientConfig,
    made: std::sync::Mutex<Vec<QuicValidatorNode>>,
}

impl Clients {
    /// Both transports with this request timeout, and connections made within it.
    pub fn with_timeout(timeout: std::time::Duration) -> Self {
        Clients {
            tcp: quorum_transport_tcp::ClientConfig {
                request_timeout: timeout,
                connect_timeout: timeout,
                ..Default::default()
            },
            quic: quorum_transport_quic::ClientConfig {
                request_timeout: timeout,
                connect_timeout: timeout,
                ..Default::default()
            },
            made: std::sync::Mutex::default(),
        }
    }

    /// Closes the connections of every QUIC node made, telling their servers (a server
    /// cannot see over UDP that a client process ended).
    pub async fn close(&self) {
        let made = std::mem::take(
            &mut *self
                .made
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if made.is_empty() {
            return;
        }
        for node in made {
            node.close().await;
        }
        // The endpoints' tasks send the closes.
        tokio::time::sleep(CLOSE_FLUSH).await;
    }

    /// The node that reaches validator `key` as its committee entry says.
    pub fn node(
        &self,
        key: &ValidatorPublicKey,
        info: &ValidatorInfo,
    ) -> Result<Arc<dyn ValidatorNode>, CliError> {
        let unreachable = |reason| CliError::Unreachable {
            key: *key,
            address: info.address.clone(),
            reason,
        };
        match parse(&info.address) {
            Some((Scheme::Tcp, host_port)) => Ok(Arc::new(TcpValidatorNode::new(
                host_port,
                self.tcp.clone(),
            )?)),
            Some((Scheme::Quic, host_port)) => {
                let network_key = info
                    .network_key
                    .ok_or_else(|| unreachable(AddressError::NoNetworkKey))?;
                let node = QuicValidatorNode::new(host_port, network_key, self.quic.clone())?;
                self.made
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(node.clone());
                Ok(Arc::new(node))
            }
            None => Err(unreachable(AddressError::Malformed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_entry_is_reached_over_its_transport_and_quic_needs_a_key() {
        use quorum_core::ValidatorSecretKey;
        use rand::rngs::OsRng;

        let key = ValidatorSecretKey::generate(&mut OsRng).public();
        let clients = Clients::default();
        let entry = |address: &str, network_key| ValidatorInfo {
            votes: 1,
            address: address.to_owned(),
            network_key,
        };
        assert!(clients.node(&key, &entry("127.0.0.1:1", None)).is_ok());
        assert!(clients
            .node(&key, &entry("tcp://127.0.0.1:1", None))
            .is_ok());
        let network = crate::keys::generate_network_key(&mut OsRng).public();
        assert!(clients
            .node(&key, &entry("quic://127.0.0.1:1", Some(network)))
            .is_ok());
        assert!(matches!(
            clients.node(&key, &entry("quic://127.0.0.1:1", None)),
            Err(CliError::Unreachable {
                reason: AddressError::NoNetworkKey,
                ..
            })
        ));
        assert!(matches!(
            clients.node(&key, &entry("udp://127.0.0.1:1", None)),
            Err(CliError::Unreachable {
                reason: AddressError::Malformed,
                ..
            })
        ));
        // The QUIC node made is closed with the others.
        clients.close().await;
    }

    #[test]
    fn addresses_name_their_transport() {
        assert_eq!(parse("10.0.0.1:9100"), Some((Scheme::Tcp, "10.0.0.1:9100")));
        assert_eq!(parse("tcp://h:1"), Some((Scheme::Tcp, "h:1")));
        assert_eq!(parse("quic://[::1]:9"), Some((Scheme::Quic, "[::1]:9")));
        for bad in [
            "h",
            ":1",
            "quic://h",
            "tcp://:1",
            "udp://h:1",
            "h:70000",
            "quic://",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
