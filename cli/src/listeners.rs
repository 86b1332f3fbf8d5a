//! A validator's listeners: one server per address its configuration names, TCP or QUIC
//! (DESIGN §6.2), serving the same node. `listen` names its transport (a bare `host:port`
//! is TCP); `listen_quic`, when present, adds a QUIC server, so that a validator can be
//! reached over both at once.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use quorum_core::ValidatorNode;
use quorum_transport_quic::QuicServer;
use quorum_transport_tcp::Server;

use crate::address::{self, Scheme};
use crate::config::ValidatorConfig;
use crate::error::CliError;
use crate::keys;
use crate::validator::{bind, serve_node};

/// Time QUIC servers give their peers to learn of a shutdown.
const QUIC_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The servers of one validator.
pub struct Listeners {
    tcp: Option<Server>,
    quic: Vec<QuicServer>,
}

impl Listeners {
    /// Serves `node` on every address of `config`.
    pub async fn start(
        node: Arc<dyn ValidatorNode>,
        config: &ValidatorConfig,
    ) -> Result<Self, CliError> {
        let mut listeners = Listeners {
            tcp: None,
            quic: Vec::new(),
        };
        let bad = |address: &String| CliError::BadListen(address.clone());
        let (scheme, host_port) =
            address::parse(&config.listen).ok_or_else(|| bad(&config.listen))?;
        let mut quic = Vec::new();
        match scheme {
            Scheme::Tcp => {
                let listener = bind(host_port).await?;
                let protocol = config.limits.protocol();
                let tcp = config.limits.server_config();
                listeners.tcp = Some(serve_node(node.clone(), &protocol, listener, tcp)?);
            }
            Scheme::Quic => quic.push((&config.listen, host_port)),
        }
        if let Some(extra) = &config.listen_quic {
            match address::parse(extra) {
                Some((_, host_port)) if !extra.starts_with(Scheme::Tcp.prefix()) => {
                    quic.push((extra, host_port));
                }
                _ => return Err(bad(extra)),
            }
        }
        for (named, host_port) in quic {
            let server = serve_quic(node.clone(), config, named, host_port).await?;
            listeners.quic.push(server);
        }
        Ok(listeners)
    }

    /// Every address served, with its transport: `host:port` for TCP (as before QUIC existed),
    /// `quic://host:port`.
    pub fn addresses(&self) -> Vec<String> {
        let tcp = self
            .tcp
            .iter()
            .map(|server| server.local_addr().to_string());
        let quic = self
            .quic
            .iter()
            .map(|server| format!("{}{}", Scheme::Quic.prefix(), server.local_addr()));
        tcp.chain(quic).collect()
    }

    /// Shuts every server down.
    pub async fn shutdown(self) {
        if let Some(server) = self.tcp {
            server.shutdown().await;
        }
        for server in self.quic {
            server.shutdown(QUIC_SHUTDOWN_GRACE).await;
        }
    }
}

/// A QUIC server of `node` on `host_port`, proving the configuration's network key, within
/// the same connection counts and frame as its TCP server.
async fn serve_quic(
    node: Arc<dyn ValidatorNode>,
    config: &ValidatorConfig,
    named: &str,
    host_port: &str,
) -> Result<QuicServer, CliError> {
    let key_file = config
        .network_key_file
        .as_ref()
        .ok_or_else(|| CliError::NoNetworkKeyFile(named.to_owned()))?;
    let key = keys::read_network_key(key_file)?;
    let address = tokio::net::lookup_host(host_port)
        .await
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| CliError::BadListen(named.to_owned()))?;
    let protocol = config.limits.protocol();
    let tcp = config.limits.server_config();
    let quic = quorum_transport_quic::ServerConfig {
        max_connections: tcp.max_connections,
        max_connections_per_ip: tcp.max_connections_per_ip,
        max_frame_length: tcp.max_frame_length,
        connection_budget: tcp.connection_budget.max(tcp.max_frame_length),
        ..quorum_transport_quic::ServerConfig::from_limits(&protocol)
    };
    let server = quorum_transport_quic::serve_validator(node, address, &key, quic).await?;
    info!(address = %server.local_addr(), network_key = %key.public(), "validator serving over QUIC");
    Ok(server)
}
