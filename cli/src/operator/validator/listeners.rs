//! A validator's listeners: one server per address its configuration names, TCP or QUIC
//! (DESIGN §6.2), serving the same node. `listen` names its transport (a bare `host:port`
//! is TCP); `listen_quic`, when present, adds a QUIC server, so that a validator can be
//! reached over both at once.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use quorum_core::{MemoryBudget, ValidatorNode};
use quorum_transport_quic::QuicServer;
use quorum_transport_tcp::Server;

use super::{bind, serve_node};
use crate::address::{self, Scheme};
use crate::error::CliError;
use crate::keys;
use crate::operator::validator_config::ValidatorConfig;

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
        // A validator on both transports holds one set of budgets: QUIC charges TCP's.
        let memory = listeners.tcp.as_ref().map(Server::memory_budget);
        for (named, host_port) in quic {
            let server = serve_quic(node.clone(), config, named, host_port, memory.clone()).await?;
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
/// the same connection counts and frame as its TCP server, and charging `memory` (the TCP
/// server's budgets) when the validator has one.
async fn serve_quic(
    node: Arc<dyn ValidatorNode>,
    config: &ValidatorConfig,
    named: &str,
    host_port: &str,
    memory: Option<Arc<dyn MemoryBudget>>,
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
    let server = match memory {
        Some(memory) => {
            quorum_transport_quic::serve_validator_sharing(node, address, &key, quic, memory)
                .await?
        }
        None => quorum_transport_quic::serve_validator(node, address, &key, quic).await?,
    };
    info!(address = %server.local_addr(), network_key = %key.public(), "validator serving over QUIC");
    Ok(server)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use quorum_node::ManualClock;
    use quorum_testkit::transport_conformance::TestValidator;
    use quorum_testkit::START;
    use quorum_transport_quic::{ClientConfig, QuicValidatorNode};

    use super::*;

    /// Bytes the stalled QUIC request sends of the 1 MiB it announces.
    const STALLED_BYTES: usize = 512 << 10;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quic_charges_the_tcp_servers_budgets() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let key = crate::keys::generate_network_key(&mut rand::rngs::OsRng);
        let key_file = dir.path().join("network.key");
        keys::write_network_key(&key_file, &key).unwrap_or_else(|error| panic!("{error}"));
        let mut config = ValidatorConfig::new(
            "127.0.0.1:0".into(),
            PathBuf::from("unused.redb"),
            PathBuf::from("unused.key"),
            PathBuf::from("unused.bcs"),
        );
        config.listen_quic = Some("quic://127.0.0.1:0".into());
        config.network_key_file = Some(key_file);
        let validator = TestValidator::new(ManualClock::new(START)).await;
        let listeners = Listeners::start(validator.node(), &config)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let (Some(tcp), Some(quic)) = (&listeners.tcp, listeners.quic.first()) else {
            panic!("both servers run");
        };
        let before = tcp.stats().connection_bytes;
        let client = QuicValidatorNode::new(
            quic.local_addr().to_string(),
            key.public(),
            ClientConfig::default(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let connection = client
            .connect()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let (mut send, _recv) = connection
            .open_bi()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let mut stalled = (1u32 << 20).to_be_bytes().to_vec();
        stalled.resize(4 + STALLED_BYTES, 0);
        send.write_all(&stalled)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        // The QUIC server charges what arrives to the TCP server's budgets.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tcp.stats().connection_bytes < before + STALLED_BYTES {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the TCP server's budgets hold {} bytes, not the QUIC request's {STALLED_BYTES}",
                tcp.stats().connection_bytes
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(tcp.stats().peak_server_bytes >= STALLED_BYTES);
        drop(send);
        client.close().await;
        listeners.shutdown().await;
    }
}
