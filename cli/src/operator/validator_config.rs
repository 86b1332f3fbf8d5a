//! The configuration an operator edits: one validator's TOML file (listen address, storage,
//! key file, genesis, limits, metrics address).
//!
//! Relative paths in the file are relative to the directory holding the file, so a machine's
//! directory can be moved as a whole. Unknown fields are refused, so a misspelt field is an
//! error rather than a silently ignored setting.
//!
//! ```toml
//! listen = "0.0.0.0:9100"
//! storage = "validator.redb"
//! key_file = "validator.key"
//! genesis = "genesis.bcs"
//! # metrics = "127.0.0.1:9300"
//!
//! [limits]
//! # max_frame_bytes = 16777216   (default: the frame the protocol limits need)
//! max_in_flight_per_connection = 256
//! idle_timeout_secs = 600
//! frame_progress_timeout_secs = 5
//! max_blob_bytes = 4194304
//! max_uploaded_blobs = 1024
//! max_connections = 1024
//! max_connections_per_ip = 64
//! peer_budget_bytes = 67108864
//! receive_budget_bytes = 268435456
//! receive_share_per_ip_bytes = 33554432
//! max_handlers = 512
//! max_handlers_per_ip = 32
//! group_budget_bytes = 33554432
//! server_budget_bytes = 67108864
//! group_floor_bytes = 262144
//! address_floor_bytes = 262144
//! max_handlers_per_group = 64
//! handler_time_half_life_ms = 1000
//! # max_polling_handlers = 2   (default: the number of cores)
//! max_subscriptions_per_connection = 4
//! max_subscriptions_per_address = 16
//! max_subscribed_chains_per_connection = 100000
//! max_subscribed_chains_per_address = 100000
//! max_subscriptions = 2048
//! max_subscribed_chains = 200000
//! notification_queue_entries = 128
//! notification_queue_bytes = 32768
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use quorum_core::Limits as ProtocolLimits;
use quorum_core::{ChainId, CryptoHash};
use quorum_node::{NotificationConfig, WorkerConfig};
use quorum_transport_tcp::ServerConfig;

use crate::error::CliError;
use crate::files::GENESIS_FILE;
use crate::operator::shards_config::ShardsConfig;
use crate::operator::storage_config::StorageConfig;

/// What a configuration file is called in error messages.
const WHAT: &str = "validator configuration";

/// Explanations written at the top of every configuration file the program writes.
const HEADER: &str = "\
# Quorum validator configuration (`quorum validator --config THIS_FILE`).
# Relative paths are relative to this file's directory.
#   listen    address to serve on: host:port or tcp://host:port (TCP), quic://host:port
#   listen_quic  optional second address, QUIC, to serve on both transports at once
#   network_key_file  the network key a QUIC listener proves it holds (mode 0600)
#   storage   the redb database file, or a [storage.postgres] table (url without a
#             password, pool_size, schema, password_file or QUORUM_POSTGRES_PASSWORD)
#   key_file  the validator's secret key (mode 0600; the validator refuses a key file that
#             group or others can read)
#   genesis   the committee's genesis, the same file on every machine
#   metrics   optional address for a metrics endpoint (host:port)
#   [shards]  optional: a sharded validator (addresses of its shards, lease_ms,
#             outbox_poll_ms); needs [storage.postgres]; `quorum validator` runs the proxy,
#             `quorum validator --shard I` shard I
#   [limits]  sizes in bytes, times in seconds (idle_timeout_secs = 0: never close idle);
#             max_frame_bytes, when absent, is what the protocol limits need (twice the
#             larger of max_blob_bytes and the 8 MiB download budget: 16 MiB by default)
";

/// One validator's configuration, as written in its TOML file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    /// Address to listen on: `0.0.0.0:9100` or `tcp://0.0.0.0:9100` over TCP,
    /// `quic://0.0.0.0:9100` over QUIC (DESIGN §6.2).
    pub listen: String,
    /// A second address, QUIC, for a validator on both transports at once
    /// (`quic://0.0.0.0:9200` or `0.0.0.0:9200`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_quic: Option<String>,
    /// The network key file (see [`crate::keys`]): what a QUIC listener proves it holds, and
    /// whose public half the committee lists as the validator's `network_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key_file: Option<PathBuf>,
    /// Where the data lives: a redb file, or `[storage.postgres]` (see
    /// [`StorageConfig`]).
    pub storage: StorageConfig,
    /// The secret key file (see [`crate::keys`]).
    pub key_file: PathBuf,
    /// The genesis file (default [`GENESIS_FILE`] beside the configuration).
    #[serde(default = "default_genesis")]
    pub genesis: PathBuf,
    /// Address of a metrics endpoint, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    /// Resource limits; every field has a default.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// When present, the validator is sharded (DESIGN §7.1): `quorum validator` runs its
    /// proxy, `quorum validator --shard I` its shard `I` (see [`ShardsConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsConfig>,
}

fn default_genesis() -> PathBuf {
    PathBuf::from(GENESIS_FILE)
}

/// A validator's `[limits]`: the protocol bound an operator may set
/// ([`max_blob_bytes`](Self::max_blob_bytes), which every validator of the committee must
/// share; the others are [`quorum_core::Limits::DEFAULT`]'s, see [`LimitsConfig::protocol`]), and
/// this node's own transport and memory budgets, with the defaults of the transport and the
/// Worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request or response frame, in bytes. When absent (the default), the frame the
    /// protocol limits need ([`quorum_core::Limits::max_frame_length`], 16 MiB by default); a
    /// value below that is refused, as this validator could not carry every message the
    /// protocol allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_bytes: Option<usize>,
    /// Requests of one connection handled at once (default 256).
    pub max_in_flight_per_connection: usize,
    /// Seconds a connection with nothing in flight is kept open; 0 keeps it forever (default
    /// 600).
    pub idle_timeout_secs: u64,
    /// Largest blob accepted, in bytes (default 4 MiB): the protocol's
    /// [`quorum_core::Limits::max_blob_bytes`], the same on every validator of the committee.
    pub max_blob_bytes: usize,
    /// Most uploaded blobs held until a certificate uses them (default 1,024).
    pub max_uploaded_blobs: usize,
    /// Once a frame has begun, the longest it may go with no byte arriving and no memory
    /// granted, in seconds, before its connection is closed and what it held is freed
    /// (default 5).
    pub frame_progress_timeout_secs: u64,
    /// Connections open at once, from all peers (default 1,024); when full, the address
    /// holding the most gives one up to a newcomer holding at least two fewer.
    pub max_connections: usize,
    /// Connections open at once from one address (an IPv6 /64 counts as one) (default 64).
    pub max_connections_per_ip: usize,
    /// Memory all connections of one address may hold, requests and responses, in bytes
    /// (default 64 MiB).
    pub peer_budget_bytes: usize,
    /// Memory all connections may hold for large frames being received and handled, in bytes
    /// (default 256 MiB).
    pub receive_budget_bytes: usize,
    /// Bytes of the receive budget one address may hold (default 32 MiB).
    pub receive_share_per_ip_bytes: usize,
    /// Request handlers running at once, in all (default 512).
    pub max_handlers: usize,
    /// Request handlers running at once for one address (default 32).
    pub max_handlers_per_ip: usize,
    /// Memory all addresses of one group (an IPv4 /24, an IPv6 /48) may hold, in bytes
    /// (default 32 MiB).
    pub group_budget_bytes: usize,
    /// Memory all connections may hold, requests and responses, in bytes (default 64 MiB);
    /// beyond it only a group below its floor is served.
    pub server_budget_bytes: usize,
    /// Bytes a group is admitted up to however full the server is (default 256 KiB).
    pub group_floor_bytes: usize,
    /// Bytes an address is admitted up to however full its group is (default 256 KiB).
    pub address_floor_bytes: usize,
    /// Request handlers running at once for one group (default 64).
    pub max_handlers_per_group: usize,
    /// When every handler slot is taken, the next goes to the group that used the least
    /// handler time lately; that time halves every this many milliseconds (default 1,000).
    pub handler_time_half_life_ms: u64,
    /// Handlers polled at once; when all turns are taken, the next goes to the group that used
    /// the least handler time (default: the number of cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_polling_handlers: Option<usize>,
    /// Subscriptions to notifications open at once on one connection (default 4).
    pub max_subscriptions_per_connection: usize,
    /// Subscriptions open at once from one address (default 16).
    pub max_subscriptions_per_address: usize,
    /// Chains followed by the subscriptions of one connection (default 100,000).
    pub max_subscribed_chains_per_connection: usize,
    /// Chains followed by the subscriptions of one address (default 100,000).
    pub max_subscribed_chains_per_address: usize,
    /// Subscriptions open at the validator, all clients together (default 2,048).
    pub max_subscriptions: usize,
    /// Chains followed at the validator, once per subscription (default 200,000).
    pub max_subscribed_chains: usize,
    /// Notifications queued for one subscriber that does not keep up (default 128); beyond,
    /// it is told how many it missed.
    pub notification_queue_entries: usize,
    /// Bytes of notifications queued for one subscriber (default 32 KiB).
    pub notification_queue_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // The transport's defaults, one value each.
        let server = ServerConfig::default();
        LimitsConfig {
            max_frame_bytes: None,
            max_in_flight_per_connection: server.max_in_flight,
            idle_timeout_secs: server.idle_timeout.map_or(0, |idle| idle.as_secs()),
            max_blob_bytes: ProtocolLimits::DEFAULT.max_blob_bytes,
            // The Worker's default (the admin chain plays no part in it).
            max_uploaded_blobs: WorkerConfig::new(ChainId(CryptoHash([0; 32]))).max_uploaded_blobs,
            frame_progress_timeout_secs: server.frame_progress_timeout.as_secs(),
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            peer_budget_bytes: server.peer_budget,
            receive_budget_bytes: server.receive_budget,
            receive_share_per_ip_bytes: server.receive_share_per_ip,
            max_handlers: server.max_handlers,
            max_handlers_per_ip: server.max_handlers_per_ip,
            group_budget_bytes: server.group_budget,
            server_budget_bytes: server.server_budget,
            group_floor_bytes: server.group_floor,
            address_floor_bytes: server.address_floor,
            max_handlers_per_group: server.max_handlers_per_group,
            handler_time_half_life_ms: duration_ms(server.handler_time_half_life),
            max_polling_handlers: None,
            max_subscriptions_per_connection: ServerConfig::default()
                .max_subscriptions_per_connection,
            max_subscriptions_per_address: server.max_subscriptions_per_address,
            max_subscribed_chains_per_connection: ServerConfig::default()
                .max_subscribed_chains_per_connection,
            max_subscribed_chains_per_address: ServerConfig::default()
                .max_subscribed_chains_per_address,
            max_subscriptions: NotificationConfig::default().max_subscriptions,
            max_subscribed_chains: NotificationConfig::default().max_chains,
            notification_queue_entries: NotificationConfig::default().queue_entries,
            notification_queue_bytes: NotificationConfig::default().queue_bytes,
        }
    }
}

/// `duration` in whole milliseconds (saturating).
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl LimitsConfig {
    /// The protocol's bounds these limits give: [`max_blob_bytes`](Self::max_blob_bytes), the
    /// rest at [`quorum_core::Limits::DEFAULT`].
    pub fn protocol(&self) -> ProtocolLimits {
        ProtocolLimits {
            max_blob_bytes: self.max_blob_bytes,
            ..ProtocolLimits::DEFAULT
        }
    }

    /// The largest frame body, in bytes: [`max_frame_bytes`](Self::max_frame_bytes) if set,
    /// else what [`protocol`](Self::protocol) needs.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_bytes
            .unwrap_or_else(|| self.protocol().max_frame_length())
    }

    /// The server settings these limits give (other settings at their defaults).
    pub fn server_config(&self) -> ServerConfig {
        let server = ServerConfig::default();
        ServerConfig {
            max_frame_length: self.max_frame_length(),
            max_in_flight: self.max_in_flight_per_connection,
            idle_timeout: (self.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(self.idle_timeout_secs)),
            frame_progress_timeout: Duration::from_secs(self.frame_progress_timeout_secs),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            peer_budget: self.peer_budget_bytes,
            receive_budget: self.receive_budget_bytes,
            receive_share_per_ip: self.receive_share_per_ip_bytes,
            max_handlers: self.max_handlers,
            max_handlers_per_ip: self.max_handlers_per_ip,
            group_budget: self.group_budget_bytes,
            server_budget: self.server_budget_bytes,
            group_floor: self.group_floor_bytes,
            address_floor: self.address_floor_bytes,
            max_handlers_per_group: self.max_handlers_per_group,
            handler_time_half_life: Duration::from_millis(self.handler_time_half_life_ms),
            max_polling_handlers: self
                .max_polling_handlers
                .unwrap_or(server.max_polling_handlers),
            max_subscriptions_per_connection: self.max_subscriptions_per_connection,
            max_subscriptions_per_address: self.max_subscriptions_per_address,
            max_subscribed_chains_per_connection: self.max_subscribed_chains_per_connection,
            max_subscribed_chains_per_address: self.max_subscribed_chains_per_address,
            ..server
        }
    }

    /// `config` with these limits applied: the [`protocol`](Self::protocol) bounds and the
    /// Worker's own budget of uploaded blobs.
    pub fn apply(&self, config: WorkerConfig) -> WorkerConfig {
        WorkerConfig {
            limits: self.protocol(),
            max_uploaded_blobs: self.max_uploaded_blobs,
            notifications: NotificationConfig {
                queue_entries: self.notification_queue_entries,
                queue_bytes: self.notification_queue_bytes,
                max_subscriptions: self.max_subscriptions,
                max_chains: self.max_subscribed_chains,
                ..config.notifications.clone()
            },
            ..config
        }
    }

    /// Checks every limit is in range; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), CliError> {
        for (field, value) in [
            ("max_frame_bytes", self.max_frame_bytes.unwrap_or(1)),
            (
                "max_in_flight_per_connection",
                self.max_in_flight_per_connection,
            ),
            ("max_blob_bytes", self.max_blob_bytes),
            ("max_uploaded_blobs", self.max_uploaded_blobs),
            (
                "notification_queue_entries",
                self.notification_queue_entries,
            ),
            ("notification_queue_bytes", self.notification_queue_bytes),
        ] {
            if value == 0 {
                return Err(CliError::ZeroLimit {
                    path: path.to_owned(),
                    field,
                });
            }
        }
        let protocol = self.protocol();
        protocol
            .validate()
            .map_err(|source| CliError::ProtocolLimits {
                path: path.to_owned(),
                source,
            })?;
        let too_large = |field, max: usize| CliError::LimitTooLarge {
            path: path.to_owned(),
            field,
            max: max as u64,
        };
        // The frame the blob bound needs must fit a frame's length prefix too: a `u32`.
        let prefix_max = u32::MAX as usize;
        let needed = protocol.max_frame_length();
        if needed > prefix_max {
            let max = prefix_max / ProtocolLimits::FRAME_HEADROOM;
            return Err(too_large("max_blob_bytes", max));
        }
        if self.max_frame_length() > prefix_max {
            return Err(too_large("max_frame_bytes", prefix_max));
        }
        if self.max_frame_length() < needed {
            return Err(CliError::FrameTooSmall {
                path: path.to_owned(),
                min: needed,
            });
        }
        // The transport's own checks, for whatever the ones above do not cover.
        self.server_config()
            .validate()
            .map_err(|source| CliError::TransportLimits {
                path: path.to_owned(),
                source,
            })
    }
}

impl ValidatorConfig {
    /// A configuration with default limits and no metrics endpoint.
    pub fn new(listen: String, storage: PathBuf, key_file: PathBuf, genesis: PathBuf) -> Self {
        ValidatorConfig {
            listen,
            listen_quic: None,
            network_key_file: None,
            storage: StorageConfig::Redb(storage),
            key_file,
            genesis,
            metrics: None,
            limits: LimitsConfig::default(),
            shards: None,
        }
    }

    /// The configuration as TOML, with a header explaining each field.
    pub fn to_toml(&self) -> Result<String, CliError> {
        let body =
            toml::to_string(self).map_err(|source| CliError::TomlWrite { what: WHAT, source })?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// Reads and checks the configuration at `path`; its relative paths are returned resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let mut config: ValidatorConfig = read_toml(path, WHAT)?;
        config.limits.validate(path)?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        config.storage.resolve(base);
        let network_key = config.network_key_file.iter_mut();
        for field in [&mut config.key_file, &mut config.genesis]
            .into_iter()
            .chain(network_key)
        {
            if field.is_relative() {
                *field = base.join(&*field);
            }
        }
        Ok(config)
    }
}

/// Reads a TOML file into `T`; errors name the file, what it should hold, and where and what
/// the parser found wrong.
pub fn read_toml<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| CliError::Toml {
        path: path.to_owned(),
        what,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ValidatorConfig {
        ValidatorConfig {
            listen: "127.0.0.1:9100".into(),
            listen_quic: Some("quic://127.0.0.1:9200".into()),
            network_key_file: Some("network.key".into()),
            storage: StorageConfig::Redb("data/validator.redb".into()),
            key_file: "validator.key".into(),
            genesis: "genesis.bcs".into(),
            metrics: Some("127.0.0.1:9300".parse().unwrap()),
            limits: LimitsConfig {
                max_frame_bytes: Some(32 << 20),
                max_connections_per_ip: 8,
                peer_budget_bytes: 8 << 20,
                ..LimitsConfig::default()
            },
            shards: None,
        }
    }

    #[test]
    fn round_trip() {
        let config = sample();
        let text = config.to_toml().unwrap();
        assert_eq!(toml::from_str::<ValidatorConfig>(&text).unwrap(), config);
        let minimal = ValidatorConfig::new(
            "127.0.0.1:1".into(),
            "a.redb".into(),
            "a.key".into(),
            "genesis.bcs".into(),
        );
        let text = minimal.to_toml().unwrap();
        assert!(!text.contains("metrics ="), "{text}");
        assert_eq!(toml::from_str::<ValidatorConfig>(&text).unwrap(), minimal);
    }

    #[test]
    fn optional_fields_default_and_paths_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nstorage = \"v.redb\"\nkey_file = \"/keys/v.key\"\n",
        )
        .unwrap();
        let config = ValidatorConfig::load(&path).unwrap();
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.metrics, None);
        assert_eq!(
            config.storage,
            StorageConfig::Redb(dir.path().join("v.redb"))
        );
        assert_eq!(config.genesis, dir.path().join(GENESIS_FILE));
        assert_eq!(config.key_file, PathBuf::from("/keys/v.key"));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let cases = [
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\nlisten_port = 3\n", "listen_port"),
            ("listen = \"x\"\nstorage = \"s\"\n", "key_file"),
            ("listen = 5\nstorage = \"s\"\nkey_file = \"k\"\n", "listen"),
            (
                "listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\nmetrics = \"nowhere\"\n",
                "metrics",
            ),
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\n[limits]\nmax_blob_bytes = 0\n", "max_blob_bytes"),
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\n[limits]\nmax_frame_bytes = 0\n", "max_frame_bytes"),
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\n[limits]\nmax_frame_bytes = 1099511627776\n", "max_frame_bytes"),
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\n[limits]\nmax_frame_bytes = 1048576\n", "max_frame_bytes must be at least 16777216"),
            ("listen = \"x\"\nstorage = \"s\"\nkey_file = \"k\"\n[limits]\nmax_blob_bytes = 4294967296\n", "max_blob_bytes"),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let error = ValidatorConfig::load(&path).unwrap_err().to_string();
            assert!(error.contains("bad.toml"), "{error}");
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }

    #[test]
    fn the_frame_is_derived_from_the_protocol_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.toml");
        let base = "listen = \"127.0.0.1:1\"\nstorage = \"v.redb\"\nkey_file = \"v.key\"\n";
        // Written by an earlier version: every field, the frame at its old default.
        let old = "[limits]\nmax_frame_bytes = 16777216\nmax_blob_bytes = 4194304\n";
        std::fs::write(&path, format!("{base}{old}")).unwrap();
        let limits = ValidatorConfig::load(&path).unwrap().limits;
        assert_eq!(limits.max_frame_length(), 16 << 20);
        assert_eq!(limits.protocol(), ProtocolLimits::DEFAULT);

        // Left out: what the protocol limits need, following a larger blob bound.
        let larger = "[limits]\nmax_blob_bytes = 33554432\n";
        std::fs::write(&path, format!("{base}{larger}")).unwrap();
        let limits = ValidatorConfig::load(&path).unwrap().limits;
        assert_eq!(limits.max_frame_bytes, None);
        assert_eq!(limits.protocol().max_blob_bytes, 32 << 20);
        assert_eq!(limits.server_config().max_frame_length, 64 << 20);
        let worker = limits.apply(WorkerConfig::new(quorum_core::ChainId(
            quorum_core::CryptoHash([0; 32]),
        )));
        assert_eq!(worker.limits, limits.protocol());
        let written = toml::to_string(&LimitsConfig::default()).unwrap();
        assert!(!written.contains("max_frame_bytes"), "{written}");
    }
}
