//! Errors of the `quorum` program.

use std::path::PathBuf;

use quorum_core::{CommitteeError, NodeError, ValidatorPublicKey};

/// What can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The metrics recorder could not be installed (one per process).
    #[error("metrics recorder: {0}")]
    MetricsRecorder(#[source] metrics_exporter_prometheus::BuildError),
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {address}: {source}")]
    MetricsBind {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is not what was expected.
    #[error("{path}: not a valid {what} file ({reason})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A TOML file (configuration or committee file) does not parse.
    #[error("{path}: invalid {what}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// The parser's report (line, column and what is wrong).
        source: Box<toml::de::Error>,
    },
    /// A value could not be rendered as TOML.
    #[error("cannot write {what} as TOML: {source}")]
    TomlWrite {
        /// What was being written.
        what: &'static str,
        /// The serializer's report.
        source: toml::ser::Error,
    },
    /// A file that must not be overwritten (a key, a wallet, a configuration) already exists.
    #[error("{path} already exists; refusing to overwrite it (move it away or write elsewhere)")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// A secret key file is readable or writable by group or others.
    #[error(
        "{path} is accessible by group or others (mode {mode:04o}); a secret key must be private \
         to its owner: run `chmod 600 {path}`"
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold a key.
    #[error("{path}: not a key file: {source}")]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: KeyFormatError,
    },
    /// A committee file names the same validator twice.
    #[error("{path}: validator {key} is listed twice")]
    DuplicateValidator {
        /// The committee file.
        path: PathBuf,
        /// The repeated key.
        key: ValidatorPublicKey,
    },
    /// A committee file gives a validator an address that is not `host:port`,
    /// `tcp://host:port` or `quic://host:port`.
    #[error(
        "{path}: validator {key}: address {address:?} is not host:port, tcp://host:port or \
         quic://host:port"
    )]
    BadAddress {
        /// The committee file.
        path: PathBuf,
        /// The validator.
        key: ValidatorPublicKey,
        /// The address given.
        address: String,
    },
    /// A committee file gives a validator a QUIC address but no network key to know it by.
    #[error(
        "{path}: validator {key}: address {address:?} is QUIC, which needs the validator's \
         network_key (from its `quorum keygen`); without one it is reachable over TCP only"
    )]
    QuicWithoutNetworkKey {
        /// The committee file.
        path: PathBuf,
        /// The validator.
        key: ValidatorPublicKey,
        /// The address given.
        address: String,
    },
    /// A committee's validator cannot be reached: its address names no transport we have, or
    /// QUIC without a network key.
    #[error("validator {key}: cannot reach {address:?}: {reason}")]
    Unreachable {
        /// The validator.
        key: ValidatorPublicKey,
        /// Its address.
        address: String,
        /// Why.
        reason: AddressError,
    },
    /// A validator's listening address is not `host:port`, `tcp://host:port` or
    /// `quic://host:port`.
    #[error("cannot listen on {0:?}: not host:port, tcp://host:port or quic://host:port")]
    BadListen(String),
    /// A QUIC listener needs the validator's network key file.
    #[error("listening on {0:?} needs network_key_file in validator.toml (from `quorum keygen`)")]
    NoNetworkKeyFile(String),
    /// The QUIC transport failed.
    #[error(transparent)]
    Quic(#[from] quorum_transport_quic::QuicError),
    /// A committee file's validators do not make a committee (weak key, no weight, …).
    #[error("{path}: not a valid committee: {source}")]
    Committee {
        /// The committee file.
        path: PathBuf,
        /// Why the committee was refused.
        source: CommitteeError,
    },
    /// A limit of a configuration file is out of range.
    #[error("{path}: [limits] {field} must be at least 1")]
    ZeroLimit {
        /// The configuration file.
        path: PathBuf,
        /// The field.
        field: &'static str,
    },
    /// A limit of a configuration file is above its maximum.
    #[error("{path}: [limits] {field} must be at most {max}")]
    LimitTooLarge {
        /// The configuration file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// The largest value allowed.
        max: u64,
    },
    /// `max_frame_bytes` is below the frame the protocol limits need.
    #[error(
        "{path}: [limits] max_frame_bytes must be at least {min}, the largest frame the protocol \
         limits need (twice the larger of max_blob_bytes and the download budget); leave it out \
         to use that"
    )]
    FrameTooSmall {
        /// The configuration file.
        path: PathBuf,
        /// The frame the protocol limits need, in bytes.
        min: usize,
    },
    /// The protocol limits of a configuration file are not consistent.
    #[error("{path}: invalid [limits]: {source}")]
    ProtocolLimits {
        /// The configuration file.
        path: PathBuf,
        /// What is inconsistent.
        source: quorum_core::LimitsError,
    },
    /// The transport limits of a configuration file are out of range.
    #[error("{path}: invalid [limits]: {source}")]
    TransportLimits {
        /// The configuration file.
        path: PathBuf,
        /// The transport's report.
        source: quorum_transport_tcp::TransportError,
    },
    /// The demo was asked for no validator, fewer than two chains or no block.
    #[error("the demo needs validators ≥ 1, chains ≥ 2 and blocks ≥ 1 (got {validators}, {chains} and {blocks})")]
    DemoTooSmall {
        /// Validators asked for.
        validators: usize,
        /// Chains asked for.
        chains: usize,
        /// Blocks asked for.
        blocks: usize,
    },
    /// More faulty validators than the committee tolerates.
    #[error("{faulty} faulty validators ({plan}) is more than f = {tolerated} for {validators} validators")]
    TooManyFaults {
        /// Faulty validators asked for.
        faulty: usize,
        /// The fault plan as given.
        plan: String,
        /// How many the committee tolerates (f).
        tolerated: usize,
        /// Validators in the committee.
        validators: usize,
    },
    /// A committee without validators.
    #[error("a committee needs at least one validator")]
    NoValidators,
    /// A genesis without chains.
    #[error("at least one chain (the admin chain) is needed")]
    NoChains,
    /// The validators made here do not form a committee.
    #[error("committee: {0}")]
    NewCommittee(#[from] CommitteeError),
    /// A validator's port past 65535.
    #[error("port {0} out of range")]
    PortOutOfRange(usize),
    /// `--request-timeout-ms 0`.
    #[error("--request-timeout-ms must be at least 1")]
    ZeroRequestTimeout,
    /// A chain index past the wallet's end.
    #[error("no chain {index} in the wallet ({chains} chains)")]
    NoSuchChain {
        /// The index asked for.
        index: usize,
        /// Chains in the wallet.
        chains: usize,
    },
    /// The wallet holds no owner key for the chain.
    #[error("the wallet does not own chain {0}")]
    NotOwned(String),
    /// The wallet database failed.
    #[error("wallet {}: {source}", path.display())]
    Wallet {
        /// The wallet database.
        path: PathBuf,
        /// What failed.
        source: Box<WalletDbError>,
    },
    /// The genesis file is not the committee the wallet belongs to.
    #[error("{} is not the genesis of this wallet's committee (another admin chain)", .0.display())]
    GenesisMismatch(PathBuf),
    /// A client directory without a wallet.
    #[error("no wallet in {} (make one with `quorum client --dir DIR init --genesis FILE`)", .0.display())]
    NoWallet(PathBuf),
    /// Another command holds the wallet's lock.
    #[error("the wallet in {} is busy: another command is using it", .0.display())]
    WalletBusy(PathBuf),
    /// An owner key written in hex is not one.
    #[error("owner key: {0}")]
    OwnerKey(#[from] KeyFormatError),
    /// An owner of `--owners` whose weight is not a whole number of at least 1.
    #[error("owner {0:?}: the weight after ':' must be a whole number of at least 1")]
    OwnerWeight(String),
    /// `follow` needs a chain id, not a wallet index.
    #[error("follow takes a chain id ({} hex digits), not a wallet index", quorum_core::HASH_LENGTH * 2)]
    FollowNeedsId,
    /// The storage failed to open.
    #[error("storage: {0}")]
    Storage(#[from] quorum_store_redb::Error),
    /// Writing the genesis state failed.
    #[error("genesis: {0}")]
    Genesis(#[from] quorum_node::GenesisError),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] quorum_transport_tcp::TransportError),
    /// A node refused.
    #[error("node: {0}")]
    Node(#[from] NodeError),
    /// A chain operation failed.
    #[error("chain: {0}")]
    Chain(#[from] quorum_updater::ChainClientError),
    /// Validators did not end in sync (their names).
    /// `watch` found no validator reachable for its deadline.
    #[error("no validator reachable for {0:?}: nothing can be watched")]
    NoValidatorReachable(std::time::Duration),
    #[error("validators out of sync: {}", .0.join(", "))]
    OutOfSync(Vec<String>),
    /// A database URL that carries a password.
    #[error("{what}: the database URL carries a password; put it in a file named by `password_file` in [storage.postgres] (mode 0600) or in the environment variable QUORUM_POSTGRES_PASSWORD, never in a URL")]
    PasswordInUrl {
        /// Where the URL was given.
        what: String,
    },
    /// `quorum demo --storage postgres` without `--database-url` or `QUORUM_POSTGRES_URL`.
    #[error("--storage postgres needs a database: --database-url URL (no password in it) or QUORUM_POSTGRES_URL")]
    NoDatabaseUrl,
    /// `quorum demo --storage postgres --transport mem`.
    #[error("--storage postgres runs validators over TCP only (leave --transport at tcp)")]
    DemoPostgresNeedsTcp,
    /// `[shards]` with a storage other than PostgreSQL.
    #[error("shards need PostgreSQL storage ([storage.postgres], or `quorum demo --storage postgres`): every shard and the proxy share one database")]
    ShardsNeedPostgres,
    /// `[shards]` lists no address (or more than 2^32).
    #[error("[shards] addresses lists no shard, or too many")]
    NoShards,
    /// `--shard` out of the range of `[shards]`'s addresses.
    #[error("shard {index} is out of range: [shards] lists {count} address(es)")]
    ShardOutOfRange {
        /// The index asked.
        index: u32,
        /// The number of addresses.
        count: usize,
    },
    /// `--shard` for a configuration without `[shards]`.
    #[error("--shard given, but {} has no [shards]", .0.display())]
    NotSharded(std::path::PathBuf),
    /// A testing option that only a single-process validator has.
    #[error("--testing-byzantine is for single-process validators only")]
    ShardedByzantine,
    /// The PostgreSQL store could not start or failed.
    #[error(transparent)]
    Postgres(#[from] quorum_store_postgres::PostgresError),
    /// A process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// What was being started.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A validator process did not come up.
    #[error("{name} did not start: {why} (its log: {log})")]
    ValidatorDidNotStart {
        /// The validator.
        name: String,
        /// What happened instead.
        why: String,
        /// Its standard error.
        log: PathBuf,
    },
    /// A chaos run's schedule could not be drawn.
    #[error("chaos: {0}")]
    Schedule(#[from] quorum_chaos::ScheduleError),
    /// A client's journal could not be written or read.
    #[error(transparent)]
    Journal(#[from] quorum_chaos::JournalError),
    /// The fault proxy could not start.
    #[error(transparent)]
    Proxy(#[from] quorum_chaos::proxy::ProxyError),
    /// `quorum chaos --clients 0`.
    #[error("chaos: the workload needs at least one client (--clients)")]
    NoClients,
    /// A chaos run found violations (its report says which).
    #[error("chaos run of seed {seed}: {violated} invariant(s) violated")]
    ChaosFailed {
        /// The seed, which replays the schedule.
        seed: u64,
        /// How many invariants failed.
        violated: usize,
    },
}

/// Why the content of a key file, or a key written in hex, is not a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFormatError {
    /// Not hexadecimal.
    #[error("not hexadecimal ({0})")]
    Hex(#[from] hex::FromHexError),
    /// Hexadecimal of the wrong length.
    #[error("expected {expected} bytes ({} hex digits), found {found} bytes", expected * 2)]
    Length {
        /// Bytes a key has.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
}

/// Why a committee entry's address cannot be reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `host:port` with one of the transports' prefixes, or none.
    #[error("not host:port, tcp://host:port or quic://host:port")]
    Malformed,
    /// A QUIC address, and no network key in the entry to know the validator by.
    #[error("QUIC needs the validator's network key, which its committee entry lacks")]
    NoNetworkKey,
}

/// What went wrong in the wallet database.
#[derive(Debug, thiserror::Error)]
pub enum WalletDbError {
    /// redb refused.
    #[error("{0}")]
    Redb(Box<redb::Error>),
    /// A stored value does not decode.
    #[error("a stored {0} does not decode")]
    Corrupted(&'static str),
    /// The wallet does not say which committee it belongs to.
    #[error("no admin chain recorded")]
    NoAdminChain,
}
