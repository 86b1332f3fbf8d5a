//! Finding everything sent to a chain (DESIGN §4.2.1, §5.8): the received logs of validators
//! holding at least a quorum of the weight are read from this client's cursor on, their union
//! is taken, and each certificate they name is downloaded from a validator that named it,
//! verified, and its bundle for the chain taken into the local inbox. A wallet thus finds a
//! payment from a chain it never heard of, without that chain's history.
//!
//! What a validator can do to it: withhold entries (the union covers it while one validator
//! asked has them), or name entries no valid certificate backs (each costs it a protocol
//! violation in its health record, and the wallet nothing but the request).

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use tracing::warn;

use quorum_core::{
    ChainId, ChainInfoQuery, ConfirmedBlockCertificate, NodeError, ReceivedEntry, Storage,
    ValidatorPublicKey, Violation,
};

use crate::hedge::{by_health, hedged};
use crate::quorum::gather;
use crate::recovery_stats::RecoveryKind;
use crate::remote::RemoteNode;

use super::{ChainClient, ChainClientError};

/// What a received-log sync found ([`ChainClient::synchronize_received_log`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedLogSync {
    /// Entries whose bundle this sync took into the local inbox (those it had already are
    /// not listed).
    pub received: Vec<ReceivedEntry>,
    /// Entries that no validator naming them could back with a valid certificate paying the
    /// chain (each such validator's health record counts a violation).
    pub refuted: Vec<ReceivedEntry>,
    /// Entries not settled this time, with the last error: read again by the next sync.
    pub pending: Vec<(ReceivedEntry, NodeError)>,
}

/// One validator's part of a received-log sync: where its log was read from, and what it
/// named, in its log's order.
struct LogRead {
    remote: RemoteNode,
    from: u64,
    entries: Vec<ReceivedEntry>,
}

/// How an entry ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Its bundle was taken into the local inbox now.
    Received,
    /// The local inbox had its bundle already (or consumed it).
    Known,
    /// No validator that named it backed it with a valid certificate paying the chain.
    Refuted,
    /// Not settled (no answer, or the local node could not take it in yet): read again next
    /// time.
    Open,
}

impl<S: Storage + 'static> ChainClient<S> {
    /// Takes into the local inbox of `chain_id` every bundle that the received logs of
    /// validators holding at least a quorum of the weight name and the local node lacks (see
    /// the module's documentation). Each validator's log is read from where the last call
    /// stopped, at most [`Options::max_received_log_entries_per_sync`] entries per call.
    ///
    /// Says what became of each entry named: taken in (or there already), refuted, or not
    /// settled this time (no validator that named it answered): those are read again by the
    /// next call, and do not fail this one, so that a validator that names entries and then
    /// does not answer cannot make every sync of the wallet fail.
    ///
    /// [`Options::max_received_log_entries_per_sync`]: crate::Options::max_received_log_entries_per_sync
    pub async fn synchronize_received_log(
        &self,
        chain_id: ChainId,
    ) -> Result<ReceivedLogSync, ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let (committee, remotes) = self.committee_and_remotes(state.epoch()).await?;
        let reads: Vec<LogRead> =
            gather(&remotes, &committee, &self.options, |remote| async move {
                self.read_received_log(chain_id, remote).await
            })
            .await
            .into_iter()
            .map(|(_, read)| read)
            .collect();

        // The union: each entry with the validators that named it.
        let mut named: BTreeMap<ReceivedEntry, Vec<RemoteNode>> = BTreeMap::new();
        for read in &reads {
            for entry in &read.entries {
                let namers = named.entry(*entry).or_default();
                if !namers
                    .iter()
                    .any(|r| r.public_key == read.remote.public_key)
                {
                    namers.push(read.remote.clone());
                }
            }
        }
        let in_flight = self.options.received_log_downloads_in_flight.max(1);
        let outcomes: BTreeMap<ReceivedEntry, (Outcome, Option<NodeError>)> = stream::iter(named)
            .map(|(entry, namers)| {
                let remotes = &remotes;
                async move {
                    let outcome = self.settle_entry(chain_id, entry, namers, remotes).await;
                    (entry, outcome)
                }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;

        // Each validator's cursor moves past the entries of its log that are settled, up to
        // the first that is not.
        for read in &reads {
            let settled = read
                .entries
                .iter()
                .take_while(|entry| {
                    outcomes
                        .get(entry)
                        .is_some_and(|(outcome, _)| *outcome != Outcome::Open)
                })
                .count() as u64;
            self.set_received_cursor(
                chain_id,
                read.remote.public_key,
                read.from.saturating_add(settled),
            );
        }
        let mut sync = ReceivedLogSync::default();
        for (entry, (outcome, error)) in outcomes {
            match outcome {
                Outcome::Received => sync.received.push(entry),
                Outcome::Known => {}
                Outcome::Refuted => sync.refuted.push(entry),
                Outcome::Open => {
                    let error = error.unwrap_or(NodeError::NotFound);
                    warn!(?chain_id, ?entry, %error, "received-log entry not settled; read again next time");
                    sync.pending.push((entry, error));
                }
            }
        }
        Ok(sync)
    }

    /// Reads `remote`'s received log of `chain_id` from this client's cursor, page by page,
    /// up to the per-sync bound. Every page is a signed answer about the chain asked.
    async fn read_received_log(
        &self,
        chain_id: ChainId,
        remote: RemoteNode,
    ) -> Result<LogRead, NodeError> {
        let updater = self.updater(remote.clone());
        let most = self.options.max_received_log_entries_per_sync;
        let page_limit = self
            .local
            .config()
            .limits
            .max_received_log_entries_per_query;
        let mut from = self.received_cursor(chain_id, remote.public_key);
        let mut entries = Vec::new();
        loop {
            let next = from.saturating_add(entries.len() as u64);
            let query = ChainInfoQuery::new(chain_id).with_received_log_from(next);
            let response = updater
                .call_remote(|| remote.node.handle_chain_info_query(query.clone()))
                .await?;
            if response.info.chain_id != chain_id || remote.check_info(&response).is_err() {
                return Err(NodeError::ProtocolViolation(Violation::WrongVote));
            }
            let info = response.info;
            if info.received_log_len < from {
                // The log is shorter than where this client stopped: the validator lost its
                // storage (or lies). Its log is read again from the start.
                from = 0;
                entries.clear();
                continue;
            }
            let page = info.requested_received_log;
            if page.len() > page_limit {
                return Err(NodeError::ProtocolViolation(Violation::BadCertificate));
            }
            let page_len = page.len();
            entries.extend(page);
            let read = from.saturating_add(entries.len() as u64);
            if page_len == 0 || read >= info.received_log_len || entries.len() >= most {
                entries.truncate(most);
                return Ok(LogRead {
                    remote,
                    from,
                    entries,
                });
            }
        }
    }

    /// Settles one entry: nothing to do if the local inbox has its bundle; else its
    /// certificate from the validators that named it (best first), then from the other
    /// validators of `remotes` as a fallback, checked to be the block it names and to pay the
    /// chain, then taken in by the local node (which verifies it). The fallback is skipped
    /// when every validator that named the entry was caught lying before: a liar's entries
    /// cost nobody else a request.
    async fn settle_entry(
        &self,
        chain_id: ChainId,
        entry: ReceivedEntry,
        namers: Vec<RemoteNode>,
        remotes: &[RemoteNode],
    ) -> (Outcome, Option<NodeError>) {
        match self.local.has_received(chain_id, &entry).await {
            Ok(true) => return (Outcome::Known, None),
            Ok(false) => {}
            Err(error) => return (Outcome::Open, Some(error)),
        }
        let named_by: BTreeSet<ValidatorPublicKey> =
            namers.iter().map(|remote| remote.public_key).collect();
        let any_honest_namer = namers.iter().any(|remote| !remote.health.is_byzantine());
        let mut candidates = by_health(namers);
        if any_honest_namer {
            candidates.extend(by_health(
                remotes
                    .iter()
                    .filter(|remote| !named_by.contains(&remote.public_key))
                    .cloned()
                    .collect(),
            ));
        }
        let named_by = &named_by;
        let refuted = std::sync::Mutex::new(BTreeSet::new());
        let download = hedged(&candidates, candidates.len(), |remote| {
            let refuted = &refuted;
            async move {
                let updater = self.updater(remote.clone());
                let answer = updater
                    .call_remote(|| {
                        remote
                            .node
                            .download_certificates_by_heights(entry.origin, vec![entry.height])
                    })
                    .await;
                let checked = match answer {
                    Ok(mut certificates) if certificates.len() == 1 => {
                        let certificate = certificates.remove(0);
                        self.take_in(chain_id, entry, certificate).await
                    }
                    Ok(certificates) if certificates.is_empty() => Err(NodeError::NotFound),
                    Ok(_) => Err(NodeError::ProtocolViolation(Violation::BadCertificate)),
                    Err(error) => Err(error),
                };
                if let Err(error) = &checked {
                    // Only a validator that named the entry is held to it.
                    if refutes(error) && named_by.contains(&remote.public_key) {
                        // It named an entry it cannot back: a protocol violation.
                        warn!(validator = ?remote.public_key, ?entry, %error, "received-log entry not backed");
                        remote.health.record_violation();
                        if let Ok(mut refuted) = refuted.lock() {
                            refuted.insert(remote.public_key);
                        }
                    }
                }
                checked
            }
        })
        .await;
        match download {
            Ok((_, ())) => (Outcome::Received, None),
            Err(error) => {
                let refuted_by_all = refuted
                    .lock()
                    .is_ok_and(|refuted| named_by.iter().all(|key| refuted.contains(key)));
                if refuted_by_all {
                    (Outcome::Refuted, None)
                } else {
                    (Outcome::Open, Some(error))
                }
            }
        }
    }

    /// Checks that `certificate` is the block `entry` names and that it pays `chain_id`, then
    /// has the local node take in its bundle. An epoch the local node does not know yet makes
    /// it learn the admin chain first, once.
    async fn take_in(
        &self,
        chain_id: ChainId,
        entry: ReceivedEntry,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<(), NodeError> {
        let block = certificate.value().block();
        if block.chain_id != entry.origin || block.height != entry.height {
            return Err(NodeError::ProtocolViolation(Violation::WrongChain));
        }
        let pays = certificate
            .value()
            .outcome()
            .messages
            .iter()
            .any(|bundle| bundle.recipient == chain_id);
        if !pays {
            return Err(NodeError::ProtocolViolation(Violation::WrongChain));
        }
        let taken = match self
            .local
            .handle_certificate_for_recipient(certificate.clone(), chain_id)
            .await
        {
            Err(NodeError::EventsNotFound(ids)) if self.is_admin_epoch_claim(&ids) => {
                self.stats.record(RecoveryKind::LocalSync);
                self.synchronize_chain_once(self.admin_chain())
                    .await
                    .map_err(|_| NodeError::EventsNotFound(ids))?;
                match self
                    .local
                    .handle_certificate_for_recipient(certificate, chain_id)
                    .await
                {
                    // The admin chain is now where validators holding f+1 of the weight have
                    // it: an epoch it never announced is not one a quorum certified in.
                    Err(NodeError::EventsNotFound(_)) => {
                        Err(NodeError::ProtocolViolation(Violation::BadCertificate))
                    }
                    other => other,
                }
            }
            other => other,
        };
        match taken {
            Ok(_) => Ok(()),
            Err(NodeError::InvalidCertificate(_)) => {
                Err(NodeError::ProtocolViolation(Violation::BadCertificate))
            }
            Err(error) => Err(error),
        }
    }

    /// Where this client stopped reading each validator's received log of `chain_id`, for a
    /// process to keep between runs ([`ChainClient::restore_received_cursors`]).
    pub fn received_cursors(&self, chain_id: ChainId) -> Vec<(ValidatorPublicKey, u64)> {
        self.received_cursors
            .lock()
            .map(|cursors| {
                cursors
                    .iter()
                    .filter(|((chain, _), _)| *chain == chain_id)
                    .map(|((_, validator), at)| (*validator, *at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Restores cursors kept by [`ChainClient::received_cursors`]. A cursor past the end of
    /// a validator's log (it lost its storage) only makes the next sync read that log again.
    pub fn restore_received_cursors(
        &self,
        chain_id: ChainId,
        cursors: &[(ValidatorPublicKey, u64)],
    ) {
        for (validator, at) in cursors {
            self.set_received_cursor(chain_id, *validator, *at);
        }
    }

    /// Where this client stopped reading `validator`'s received log of `chain_id`.
    fn received_cursor(&self, chain_id: ChainId, validator: ValidatorPublicKey) -> u64 {
        self.received_cursors
            .lock()
            .ok()
            .and_then(|cursors| cursors.get(&(chain_id, validator)).copied())
            .unwrap_or(0)
    }

    fn set_received_cursor(&self, chain_id: ChainId, validator: ValidatorPublicKey, at: u64) {
        if let Ok(mut cursors) = self.received_cursors.lock() {
            cursors.insert((chain_id, validator), at);
        }
    }
}

/// Whether a failed download proves that the validator named an entry it cannot back (as
/// opposed to a failure to answer, which proves nothing).
fn refutes(error: &NodeError) -> bool {
    matches!(
        error,
        NodeError::NotFound
            | NodeError::ProtocolViolation(_)
            | NodeError::CertificateNotApplicable(_)
    )
}
