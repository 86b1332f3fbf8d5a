//! Errors of the `quorum` program.

use std::path::PathBuf;

use quorum_core::NodeError;

/// What can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
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
    /// Invalid command-line input.
    #[error("{0}")]
    Usage(String),
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
    /// Validators did not end in sync.
    #[error("validators out of sync: {0}")]
    OutOfSync(String),
}
