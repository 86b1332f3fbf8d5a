//! What one `quorum client` command works with: the committee's genesis and the wallet, the
//! client's local node on its redb database, a connection to every validator with the health
//! records kept between commands, and the updater's options for a command-line tool.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use quorum_core::{ChainId, Committee, Epoch, NodeError, Storage, ValidatorPublicKey};
use quorum_node::{Clock, Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_updater::{ChainClient, Options, RemoteNode, ValidatorSet, ValidatorUpdater};

use crate::address::Clients;
use crate::client::health_file;
use crate::error::CliError;
use crate::files::{self, GENESIS_FILE};
use crate::wallet::Wallet;

/// Name of the client's database in the committee directory, unless `--database` says
/// otherwise.
pub const DEFAULT_DATABASE_FILE: &str = "client.redb";
/// Default of `--request-timeout-ms`: one request to one validator (400 ms). Two of them fit
/// in the default update budget, so a validator that stopped answering is suspect by the
/// end of the first command that meets it; a suspect is waited on for at most the updater's
/// probe timeout (500 ms), or this if shorter.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 400;
/// Bound on one quorum call of a command (10 s): how long a command waits when no quorum
/// answers at all.
pub const QUORUM_DEADLINE: Duration = Duration::from_secs(10);

/// The settings of a command that do not come from the committee directory.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// The committee directory (genesis and wallet).
    pub dir: PathBuf,
    /// The client's database (default [`DEFAULT_DATABASE_FILE`] in `dir`).
    pub database: Option<PathBuf>,
    /// Timeout of one request to one validator.
    pub request_timeout: Duration,
    /// Longest the final update phase lasts.
    pub update_budget: Duration,
}

/// One command's client.
pub struct Session {
    /// The committee of the genesis (epoch 0), whose validators the client reaches.
    pub committee: Committee,
    /// The chains the client follows and the keys it holds.
    pub wallet: Wallet,
    /// The client's local node.
    pub local: Arc<Worker<RedbStorage>>,
    /// Every validator, with its health.
    pub validators: ValidatorSet,
    /// The updater's options.
    pub options: Arc<Options>,
    /// A client of the first wallet chain; the others are made from it (sharing statistics
    /// and catch-up workers).
    pub base: ChainClient<RedbStorage>,
    /// Longest the final update phase lasts.
    pub update_budget: Duration,
    health_path: PathBuf,
    /// How the validators are reached; their QUIC connections are closed at the end.
    clients: Clients,
}

/// The updater's options for a command-line tool: short request timeouts, a bounded quorum
/// call, and catch-up jobs no longer than the update phase.
pub fn options(request_timeout: Duration, update_budget: Duration) -> Options {
    Options {
        request_timeout,
        deadline: QUORUM_DEADLINE,
        background_catch_up: update_budget,
        ..Options::default()
    }
}

impl Session {
    /// Reads the committee directory, opens the database and connects (lazily) to every
    /// validator, then restores the health records the previous command left.
    pub async fn open(settings: &SessionSettings) -> Result<Self, CliError> {
        if settings.request_timeout.is_zero() {
            return Err(CliError::ZeroRequestTimeout);
        }
        let genesis_path = settings.dir.join(GENESIS_FILE);
        let read_genesis =
            || -> Result<Genesis, CliError> { files::read(&genesis_path, "genesis") };
        let wallet = Wallet::open(&settings.dir, || {
            read_genesis()?.admin_chain().ok_or(CliError::NoChains)
        })?;
        let admin = wallet.admin_chain()?;
        let database = settings
            .database
            .clone()
            .unwrap_or_else(|| settings.dir.join(DEFAULT_DATABASE_FILE));
        let storage = RedbStorage::open(&database)?;
        // The genesis is read and written into the client's database once, when the database
        // is new: a command then pays for no genesis chain but the ones it touches.
        let committee = match storage
            .read_committee(Epoch(0))
            .await
            .map_err(NodeError::from)?
        {
            Some(committee) => committee,
            None => {
                let genesis = read_genesis()?;
                if genesis.admin_chain() != Some(admin) {
                    return Err(CliError::GenesisMismatch(genesis_path));
                }
                genesis.initialize(&storage, SystemClock.now()).await?;
                genesis.committee
            }
        };
        let local = Arc::new(Worker::new(
            storage,
            None,
            Arc::new(SystemClock),
            WorkerConfig::new(admin),
        ));
        let validators = ValidatorSet::new();
        // Each validator over the transport its committee entry names (DESIGN §6.2).
        let clients = Clients::with_timeout(settings.request_timeout);
        for (key, info) in committee.validators() {
            validators.insert(*key, clients.node(key, info)?);
        }
        let options = options(settings.request_timeout, settings.update_budget);
        // The clients of the command's chains are made from this one (sharing statistics,
        // catch-up workers and received-log cursors).
        let base = ChainClient::new(
            admin,
            None,
            local.clone(),
            validators.clone(),
            options.clone(),
        );
        let session = Session {
            committee,
            wallet,
            local,
            validators,
            options: Arc::new(options),
            base,
            update_budget: settings.update_budget,
            health_path: health_file::path_beside(&database),
            clients,
        };
        session.restore_health();
        Ok(session)
    }

    /// Ends the session: its QUIC connections are closed, so that the validators do not count
    /// them against this machine's address until they time out.
    pub async fn close(&self) {
        self.clients.close().await;
    }

    /// The admin chain (every validator knows it).
    pub fn admin_chain(&self) -> ChainId {
        self.local.config().admin_chain
    }

    /// Every voting validator of the committee, with its health.
    pub fn remotes(&self) -> Vec<RemoteNode> {
        self.validators.remotes(&self.committee)
    }

    /// Each validator's address, as the genesis gives it.
    pub fn addresses(&self) -> BTreeMap<ValidatorPublicKey, String> {
        self.committee
            .validators()
            .map(|(key, info)| (*key, info.address.clone()))
            .collect()
    }

    /// An updater for `remote` sharing the session's local node, options and statistics, for
    /// the catch-up workers.
    pub fn updater(&self, remote: RemoteNode) -> ValidatorUpdater<RedbStorage> {
        self.base.updater(remote)
    }

    /// Brings the local node up to date on `chains`, all at once: learns what other clients
    /// committed, and, with `received`, what other chains sent them (their received logs).
    /// Only the chains named: a command does the work of its chains, not of the wallet. A
    /// chain that cannot be synchronized fails the command.
    pub async fn synchronize(&self, chains: &[ChainId], received: bool) -> Result<(), CliError> {
        let mut syncs = JoinSet::new();
        if received {
            // Each validator's received log is read from where the last command stopped.
            for chain_id in chains {
                let cursors = self.wallet.cursors(*chain_id)?;
                self.base.restore_received_cursors(*chain_id, &cursors);
            }
        }
        for chain_id in chains {
            let client = self.base.for_chain(*chain_id, None);
            let chain_id = *chain_id;
            syncs.spawn(async move {
                let result = if received {
                    client.synchronize_from_validators().await
                } else {
                    client.synchronize_chain(chain_id).await
                };
                (chain_id, result)
            });
        }
        let mut failure = None;
        while let Some(joined) = syncs.join_next().await {
            let Ok((chain_id, result)) = joined else {
                continue;
            };
            if let Err(error) = result {
                warn!(%chain_id, %error, "chain not synchronized");
                failure.get_or_insert(error);
            }
        }
        if received {
            for chain_id in chains {
                let cursors = self.base.received_cursors(*chain_id);
                self.wallet.save_cursors(*chain_id, &cursors)?;
            }
        }
        failure.map_or(Ok(()), |error| Err(error.into()))
    }

    /// Restores the records the previous command saved; a missing or unreadable file is a
    /// fresh start.
    fn restore_health(&self) {
        match health_file::load(&self.health_path, SystemTime::now()) {
            Ok(Some(loaded)) => {
                let known: Vec<_> = loaded
                    .records
                    .into_iter()
                    .filter(|(key, _)| self.committee.weight(key) > 0)
                    .collect();
                self.validators.restore_health(&known, loaded.elapsed);
            }
            Ok(None) => info!(
                path = %self.health_path.display(),
                "no validator health records yet: starting fresh"
            ),
            Err(error) => warn!(%error, "validator health records ignored: starting fresh"),
        }
    }

    /// Saves the health records for the next command; failing to is only a warning.
    pub fn save_health(&self) {
        let records = self
            .validators
            .save_health()
            .into_iter()
            .filter(|(key, _)| self.committee.weight(key) > 0)
            .collect();
        match health_file::save(&self.health_path, records, SystemTime::now()) {
            Ok(()) => debug!(path = %self.health_path.display(), "validator health records saved"),
            Err(error) => warn!(%error, "validator health records not saved"),
        }
    }
}
