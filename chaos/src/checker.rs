//! [`check`]: the six invariants of a chaos run, over the [`Evidence`] gathered once every
//! fault is healed.
//!
//! 1. [`Invariant::NoFork`]: no two different blocks certified at one (chain, height), among
//!    all honest validators; and every block they hold is certified by a quorum.
//! 2. [`Invariant::AcknowledgedCommitted`]: every journaled acknowledgement is the block every
//!    honest validator holds at its (chain, height).
//! 3. [`Invariant::BalancesReplay`]: on every honest validator, each chain's balance is its
//!    genesis balance plus what its blocks consumed minus what they sent, its blocks are all
//!    there, and its tip is its last block.
//! 4. [`Invariant::SupplyConserved`]: on every honest validator, the balances plus what was
//!    sent and not yet consumed equal the genesis supply (a transfer a closed chain returned
//!    is a message like any other); and every bundle consumed was sent, as consumed, by the
//!    block it names.
//! 5. [`Invariant::Progress`]: every chain committed a new block within the bound after
//!    healing.
//! 6. [`Invariant::CleanProcesses`]: no process panicked or had to be killed at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use quorum_core::{BlockHeight, ChainId, CryptoHash};

use crate::evidence::{ChainView, Evidence, ValidatorView};

mod violation;

pub use violation::Violation;

/// One of the six invariants [`check`] judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// 1: no fork, every block certified.
    NoFork,
    /// 2: every acknowledged operation committed on every honest validator.
    AcknowledgedCommitted,
    /// 3: balances equal the replay of the certificates.
    BalancesReplay,
    /// 4: the total supply is unchanged.
    SupplyConserved,
    /// 5: every chain commits again after healing.
    Progress,
    /// 6: no process panicked or was left running.
    CleanProcesses,
}

impl Invariant {
    /// The six, in order.
    pub const ALL: [Invariant; 6] = [
        Invariant::NoFork,
        Invariant::AcknowledgedCommitted,
        Invariant::BalancesReplay,
        Invariant::SupplyConserved,
        Invariant::Progress,
        Invariant::CleanProcesses,
    ];

    /// Its number and what it says, as reports print it.
    pub fn title(&self) -> &'static str {
        match self {
            Invariant::NoFork => "1 no fork",
            Invariant::AcknowledgedCommitted => "2 acknowledged operations committed everywhere",
            Invariant::BalancesReplay => "3 balances replay the certificates",
            Invariant::SupplyConserved => "4 supply unchanged",
            Invariant::Progress => "5 progress after healing",
            Invariant::CleanProcesses => "6 no panic, nothing left running",
        }
    }
}

/// One invariant's verdict: its figures and what violated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The invariant.
    pub invariant: Invariant,
    /// What was looked at, in words and numbers.
    pub figures: String,
    /// What violated it; empty when it held.
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// Whether the invariant held.
    pub fn held(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Verdict {
    /// One line, then one indented line per violation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.held() { "held" } else { "VIOLATED" };
        write!(
            f,
            "invariant {}: {status} ({})",
            self.invariant.title(),
            self.figures
        )?;
        for violation in &self.violations {
            write!(f, "\n    {violation}")?;
        }
        Ok(())
    }
}

/// Checks the six invariants over `evidence`; one verdict each, in order:
///
/// 1. [`Invariant::NoFork`]: no two different blocks certified at one (chain, height), among
///    all honest validators; every block they hold is certified by a quorum; every honest
///    validator answered.
/// 2. [`Invariant::AcknowledgedCommitted`]: every journaled acknowledgement is the block every
///    honest validator holds at its (chain, height).
/// 3. [`Invariant::BalancesReplay`]: on every honest validator, each chain's balance is its
///    genesis balance plus what its blocks consumed minus what they sent, its blocks are all
///    there, and its tip is its last block.
/// 4. [`Invariant::SupplyConserved`]: on every honest validator, the balances plus what was
///    sent and not yet consumed equal the genesis supply; every bundle consumed was sent, as
///    consumed, by the block it names (one that was not is named, and shows in the supply).
/// 5. [`Invariant::Progress`]: every chain committed a new block within the bound after
///    healing.
/// 6. [`Invariant::CleanProcesses`]: no process panicked or had to be killed at the end.
pub fn check(evidence: &Evidence) -> Vec<Verdict> {
    vec![
        no_fork(evidence),
        acknowledged_committed(evidence),
        balances_replay(evidence),
        supply_conserved(evidence),
        progress(evidence),
        clean_processes(evidence),
    ]
}

/// A chain as reports name it: the first 8 hex digits of its id.
fn short(chain: &ChainId) -> String {
    chain.0.to_string()[..8].to_owned()
}

/// A hash as reports name it: its first 8 hex digits.
fn short_hash(hash: &CryptoHash) -> String {
    hash.to_string()[..8].to_owned()
}

fn no_fork(evidence: &Evidence) -> Verdict {
    let mut violations = Vec::new();
    let mut held: BTreeMap<(ChainId, BlockHeight), BTreeMap<CryptoHash, Vec<String>>> =
        BTreeMap::new();
    for view in &evidence.validators {
        if let Some(error) = &view.unreachable {
            violations.push(Violation::Unreachable {
                validator: view.name.clone(),
                error: error.clone(),
            });
        }
        for (chain, chain_view) in &view.chains {
            for block in chain_view.blocks.values() {
                if !block.certified {
                    violations.push(Violation::Uncertified {
                        validator: view.name.clone(),
                        chain: short(chain),
                        height: block.height.0,
                    });
                }
                held.entry((*chain, block.height))
                    .or_default()
                    .entry(block.hash)
                    .or_default()
                    .push(view.name.clone());
            }
        }
    }
    for ((chain, height), hashes) in &held {
        if hashes.len() > 1 {
            violations.push(Violation::Fork {
                chain: short(chain),
                height: height.0,
                holders: hashes
                    .iter()
                    .flat_map(|(hash, names)| {
                        names.iter().map(|name| (name.clone(), short_hash(hash)))
                    })
                    .collect(),
            });
        }
    }
    let chains: BTreeSet<ChainId> = held.keys().map(|(chain, _)| *chain).collect();
    Verdict {
        invariant: Invariant::NoFork,
        figures: format!(
            "{} heights on {} chains compared across {} validators",
            held.len(),
            chains.len(),
            evidence.validators.len()
        ),
        violations,
    }
}

fn acknowledged_committed(evidence: &Evidence) -> Verdict {
    let mut violations = Vec::new();
    for acknowledgement in &evidence.journal {
        for view in &evidence.validators {
            let found = view
                .chains
                .get(&acknowledgement.chain)
                .and_then(|chain| chain.blocks.get(&acknowledgement.height));
            match found {
                None => violations.push(Violation::AcknowledgedMissing {
                    validator: view.name.clone(),
                    client: acknowledgement.client,
                    chain: short(&acknowledgement.chain),
                    height: acknowledgement.height.0,
                }),
                Some(block) if block.hash != acknowledgement.hash => {
                    violations.push(Violation::AcknowledgedReplaced {
                        validator: view.name.clone(),
                        client: acknowledgement.client,
                        chain: short(&acknowledgement.chain),
                        height: acknowledgement.height.0,
                        acknowledged: short_hash(&acknowledgement.hash),
                        found: short_hash(&block.hash),
                    })
                }
                Some(_) => {}
            }
        }
    }
    Verdict {
        invariant: Invariant::AcknowledgedCommitted,
        figures: format!(
            "{} acknowledged operations on {} validators",
            evidence.journal.len(),
            evidence.validators.len()
        ),
        violations,
    }
}

/// A chain's balance by its blocks: genesis plus consumed minus sent.
fn replayed_balance(genesis: u64, chain: &ChainView) -> i128 {
    chain
        .blocks
        .values()
        .fold(i128::from(genesis), |balance, block| {
            let consumed: i128 = block
                .consumed
                .iter()
                .map(|(_, _, amount)| i128::from(*amount))
                .sum();
            let sent: i128 = block
                .sent
                .iter()
                .map(|(_, amount)| i128::from(*amount))
                .sum();
            balance + consumed - sent
        })
}

fn balances_replay(evidence: &Evidence) -> Verdict {
    let mut violations = Vec::new();
    let mut chains = 0usize;
    for view in &evidence.validators {
        for (chain, chain_view) in &view.chains {
            chains += 1;
            let genesis = evidence.genesis.get(chain).copied().unwrap_or(0);
            let missing: Vec<u64> = (0..chain_view.next_height.0)
                .filter(|height| !chain_view.blocks.contains_key(&BlockHeight(*height)))
                .collect();
            for height in &missing {
                violations.push(Violation::BlockMissing {
                    validator: view.name.clone(),
                    chain: short(chain),
                    height: *height,
                });
            }
            if !missing.is_empty() {
                continue;
            }
            let replayed = replayed_balance(genesis, chain_view);
            if replayed != i128::from(chain_view.balance) {
                violations.push(Violation::BalanceMismatch {
                    validator: view.name.clone(),
                    chain: short(chain),
                    reported: chain_view.balance,
                    replayed,
                });
            }
            let last = chain_view
                .blocks
                .values()
                .next_back()
                .map(|block| block.hash);
            if last != chain_view.tip {
                violations.push(Violation::TipMismatch {
                    validator: view.name.clone(),
                    chain: short(chain),
                });
            }
        }
    }
    Verdict {
        invariant: Invariant::BalancesReplay,
        figures: format!("{chains} chain states replayed"),
        violations,
    }
}

/// What `view`'s blocks sent, by (origin, height, recipient).
fn sent_by(view: &ValidatorView) -> BTreeMap<(ChainId, BlockHeight, ChainId), u64> {
    let mut sent = BTreeMap::new();
    for (chain, chain_view) in &view.chains {
        for block in chain_view.blocks.values() {
            for (recipient, amount) in &block.sent {
                *sent
                    .entry((*chain, block.height, *recipient))
                    .or_insert(0u64) += amount;
            }
        }
    }
    sent
}

fn supply_conserved(evidence: &Evidence) -> Verdict {
    let expected = evidence
        .genesis
        .values()
        .fold(0u64, |total, b| total.saturating_add(*b));
    let mut violations = Vec::new();
    let mut in_flight_figures = Vec::new();
    for view in &evidence.validators {
        let sent = sent_by(view);
        let mut balances: i128 = 0;
        let mut consumed_total: i128 = 0;
        for (chain, chain_view) in &view.chains {
            balances += i128::from(chain_view.balance);
            for block in chain_view.blocks.values() {
                for (origin, height, amount) in &block.consumed {
                    if sent.get(&(*origin, *height, *chain)) == Some(amount) {
                        consumed_total += i128::from(*amount);
                    } else {
                        // Tokens from nowhere: not taken off what is in flight, so the
                        // supply shows them too.
                        violations.push(Violation::ConsumedNeverSent {
                            validator: view.name.clone(),
                            chain: short(chain),
                            origin: short(origin),
                            height: height.0,
                            amount: *amount,
                        });
                    }
                }
            }
        }
        // Chains no validator reports still count their genesis balance.
        let unreported: i128 = evidence
            .genesis
            .iter()
            .filter(|(chain, _)| !view.chains.contains_key(chain))
            .map(|(_, balance)| i128::from(*balance))
            .sum();
        // What was sent and not consumed (as sent) yet.
        let sent_total: i128 = sent.values().map(|amount| i128::from(*amount)).sum();
        let in_flight = sent_total - consumed_total;
        in_flight_figures.push(in_flight);
        let found = balances + unreported + in_flight;
        if found != i128::from(expected) {
            violations.push(Violation::SupplyChanged {
                validator: view.name.clone(),
                expected,
                found,
            });
        }
    }
    Verdict {
        invariant: Invariant::SupplyConserved,
        figures: format!("supply {expected}; in flight per validator {in_flight_figures:?}"),
        violations,
    }
}

fn progress(evidence: &Evidence) -> Verdict {
    let mut violations = Vec::new();
    let mut slowest = std::time::Duration::ZERO;
    for chain in &evidence.progress {
        match chain.took {
            Some(took) if took <= evidence.progress_bound => slowest = slowest.max(took),
            _ => violations.push(Violation::NoProgress {
                chain: short(&chain.chain),
                bound_ms: u64::try_from(evidence.progress_bound.as_millis()).unwrap_or(u64::MAX),
                error: chain
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("took {:?}", chain.took)),
            }),
        }
    }
    Verdict {
        invariant: Invariant::Progress,
        figures: format!(
            "{} chains, slowest {:.3} s, bound {} s",
            evidence.progress.len(),
            slowest.as_secs_f64(),
            evidence.progress_bound.as_secs_f64()
        ),
        violations,
    }
}

fn clean_processes(evidence: &Evidence) -> Verdict {
    let outcome = &evidence.processes;
    let mut violations: Vec<Violation> = outcome
        .panicked
        .iter()
        .map(|(process, line)| Violation::Panicked {
            process: process.clone(),
            line: line.clone(),
        })
        .collect();
    violations.extend(
        outcome
            .left_running
            .iter()
            .map(|process| Violation::LeftRunning {
                process: process.clone(),
            }),
    );
    Verdict {
        invariant: Invariant::CleanProcesses,
        figures: format!(
            "{} panicked, {} left running",
            outcome.panicked.len(),
            outcome.left_running.len()
        ),
        violations,
    }
}

#[cfg(test)]
mod tests;
