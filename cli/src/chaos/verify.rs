//! After healing: the checker's client brings every validator up to date, commits a block on
//! every chain (progress), and asks every honest validator what it holds.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use tracing::debug;

use quorum_chaos::{observe, Acknowledgement, ChainProgress, GatherConfig, Journal, ValidatorView};
use quorum_core::{ChainId, Committee, ValidatorPublicKey};
use quorum_node::{MemoryStorage, Worker};
use quorum_transport_tcp::TcpValidatorNode;
use quorum_updater::{ChainClient, ValidatorSet};

use super::committee::{ChainPlan, Member};
use super::{client_config, client_options};
use crate::demo::in_sync;
use crate::error::CliError;

/// The pause between two rounds of syncs while the checker follows the run.
const FOLLOW_PAUSE: Duration = Duration::from_secs(2);
/// How often catch-up looks again whether every validator is in sync.
const CATCH_UP_PAUSE: Duration = Duration::from_millis(250);

/// The checker's client: a fresh local node, reaching every validator directly (not through
/// its proxy).
pub struct Checker {
    local: Arc<Worker<MemoryStorage>>,
    base: ChainClient<MemoryStorage>,
    validators: ValidatorSet,
    committee: Committee,
    honest: Vec<ValidatorPublicKey>,
}

impl Checker {
    /// A checker on `genesis` reaching `members` at their own addresses (the Byzantine one
    /// too, as any client would; only the honest ones are checked).
    pub async fn new(
        genesis: &quorum_node::Genesis,
        members: &[Member],
    ) -> Result<Checker, CliError> {
        let admin = genesis.admin_chain().ok_or(CliError::NoChains)?;
        let local = crate::demo::keyless_local(genesis, admin).await?;
        let validators = ValidatorSet::new();
        for member in members {
            let node = TcpValidatorNode::new(member.listen.to_string(), client_config())?;
            validators.insert(member.key.public(), Arc::new(node));
        }
        let base = ChainClient::new(
            admin,
            None,
            local.clone(),
            validators.clone(),
            client_options(),
        );
        Ok(Checker {
            local,
            base,
            validators,
            committee: genesis.committee.clone(),
            honest: members
                .iter()
                .filter(|member| !member.byzantine)
                .map(|member| member.key.public())
                .collect(),
        })
    }

    /// Keeps the local node up to date on `chains`, one sync of each every
    /// [`FOLLOW_PAUSE`], until the task is aborted. Failures (a faulty validator) are skipped.
    pub async fn follow(self: Arc<Self>, chains: Vec<ChainId>) {
        loop {
            for chain in &chains {
                let client = self.base.for_chain(*chain, None);
                if let Err(error) = client.synchronize_chain(*chain).await {
                    debug!(%chain, %error, "following: sync failed");
                }
            }
            tokio::time::sleep(FOLLOW_PAUSE).await;
        }
    }

    /// Learns every chain from the validators and brings each validator up to the highest
    /// height, again and again until all hold every chain as the local node does or `window`
    /// has passed; how long it took, if it succeeded.
    pub async fn catch_up(&self, chains: &[ChainId], window: Duration) -> Option<Duration> {
        let started = Instant::now();
        let remotes: Vec<_> = self
            .validators
            .remotes(&self.committee)
            .into_iter()
            .filter(|remote| self.honest.contains(&remote.public_key))
            .collect();
        while started.elapsed() < window {
            for chain in chains {
                let client = self.base.for_chain(*chain, None);
                if let Err(error) = client.synchronize_chain(*chain).await {
                    debug!(%chain, %error, "catch-up: sync failed");
                }
                if let Err(error) = client.update_validators(*chain).await {
                    debug!(%chain, %error, "catch-up: update failed");
                }
            }
            let checks = remotes
                .iter()
                .map(|remote| in_sync(&self.local, remote, chains));
            if join_all(checks).await.into_iter().all(|synced| synced) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(CATCH_UP_PAUSE).await;
        }
        None
    }

    /// Commits one transfer on every chain at once, each with its first owner's key, within
    /// `bound`; journals what was acknowledged (as client `client`) into `journal`.
    pub async fn progress(
        &self,
        chains: &[ChainPlan],
        bound: Duration,
        client: usize,
        journal: &mut Journal,
    ) -> Result<Vec<ChainProgress>, CliError> {
        let attempts = chains.iter().enumerate().map(|(index, chain)| {
            let recipient = chains[(index + 1) % chains.len()].id;
            let owner = chain.owners.first().cloned();
            let client = self.base.for_chain(chain.id, owner);
            async move {
                let started = Instant::now();
                let outcome = tokio::time::timeout(bound, client.transfer(recipient, 1)).await;
                (chain.id, started.elapsed(), outcome)
            }
        });
        let mut progress = Vec::new();
        for (chain, took, outcome) in join_all(attempts).await {
            match outcome {
                Ok(Ok(certificate)) => {
                    let block = certificate.value().inner().block();
                    journal.append(&Acknowledgement {
                        client,
                        chain,
                        height: block.height,
                        hash: certificate.hash(),
                    })?;
                    progress.push(ChainProgress {
                        chain,
                        took: Some(took),
                        error: None,
                    });
                }
                Ok(Err(error)) => progress.push(ChainProgress {
                    chain,
                    took: None,
                    error: Some(error.to_string()),
                }),
                Err(_) => progress.push(ChainProgress {
                    chain,
                    took: None,
                    error: Some(format!("no commit within {} s", bound.as_secs_f64())),
                }),
            }
        }
        Ok(progress)
    }

    /// What each honest one of `members` holds of `chains`.
    pub async fn observe_all(&self, members: &[Member], chains: &[ChainId]) -> Vec<ValidatorView> {
        let views = members
            .iter()
            .filter(|member| !member.byzantine)
            .map(|member| {
                let name = member.process.name.clone();
                let node = TcpValidatorNode::new(member.listen.to_string(), client_config());
                async move {
                    match node {
                        Ok(node) => {
                            observe(
                                name,
                                &node,
                                chains,
                                &self.committee,
                                GatherConfig::default(),
                            )
                            .await
                        }
                        Err(error) => ValidatorView {
                            name,
                            unreachable: Some(error.to_string()),
                            ..ValidatorView::default()
                        },
                    }
                }
            });
        join_all(views).await
    }
}
