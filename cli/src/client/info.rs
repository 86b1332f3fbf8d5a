//! `quorum client info`: every wallet chain as the client knows it, what each validator says
//! of it, and each validator's health. Every validator is asked about every chain at once;
//! each question is bounded by the request timeout (the probe timeout for a suspect), and, as
//! for the updater's reads, nothing waits on the slow beyond a quorum and its grace: once
//! validators holding a quorum of the weight have answered about every chain, the others are
//! waited on only for a short grace. Validators found behind the client are then brought up
//! to date in the final update phase.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use quorum_core::{BlockHeight, ChainId, Committee, NodeError, Violation};
use quorum_updater::{HealthState, Options, RemoteNode};

use crate::client::probe;
use crate::client::session::Session;
use crate::client::update_phase;
use crate::demo::summary::quantile;
use crate::error::CliError;

/// Least time the slower validators are waited on once validators holding a quorum of the
/// weight have answered about every chain (20 ms); the wait is longer when the quorum was slow
/// (the updater's quorum grace fraction of the time it took).
pub const MIN_GRACE: Duration = Duration::from_millis(20);

/// What one validator said of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Its view of the chain.
    At {
        /// The next height it expects.
        height: BlockHeight,
        /// The chain's balance there.
        balance: u64,
    },
    /// It answered, refusing.
    Refused(NodeError),
    /// No answer: a timeout or a transport failure.
    Unreachable(NodeError),
    /// Not answered within the quorum and its grace: not waited for.
    NotWaited,
}

impl Answer {
    fn render(&self) -> String {
        match self {
            Answer::At { height, balance } => format!("height {} balance {balance}", height.0),
            Answer::Refused(error) => format!("refused ({error})"),
            Answer::Unreachable(error) => format!("unreachable ({error})"),
            Answer::NotWaited => "no answer yet (not waited for beyond a quorum)".to_string(),
        }
    }
}

/// Asks every validator of `remotes` about every chain of `chains` at once; the answers by
/// (validator index, chain index). Stops when all answered, or [`MIN_GRACE`] (or the quorum
/// grace, if longer) after validators holding a quorum of `committee`'s weight answered about
/// every chain; each question is bounded by its own timeout.
pub async fn ask_all(
    remotes: &[RemoteNode],
    chains: &[ChainId],
    committee: &Committee,
    options: &Options,
) -> BTreeMap<(usize, usize), Answer> {
    let start = Instant::now();
    let mut questions = JoinSet::new();
    for (v, remote) in remotes.iter().enumerate() {
        for (c, chain_id) in chains.iter().enumerate() {
            let (remote, options, chain_id) = (remote.clone(), options.clone(), *chain_id);
            questions.spawn(async move {
                let answer = match probe::query(&remote, chain_id, &options).await {
                    Ok(response) if response.info.chain_id != chain_id => {
                        Answer::Refused(NodeError::ProtocolViolation(Violation::WrongChain))
                    }
                    Ok(response) if response.check(&remote.public_key).is_err() => {
                        Answer::Refused(NodeError::ProtocolViolation(Violation::WrongVote))
                    }
                    Ok(response) => Answer::At {
                        height: response.info.next_block_height,
                        balance: response.info.balance,
                    },
                    Err(error) if probe::is_unanswered(&error) => Answer::Unreachable(error),
                    Err(error) => Answer::Refused(error),
                };
                (v, c, answer)
            });
        }
    }
    // Questions left per validator, and the weight of those that answered them all.
    let mut left = vec![chains.len(); remotes.len()];
    let mut weight = 0u64;
    let mut stop_at = None;
    let mut answers = BTreeMap::new();
    loop {
        let grace = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = questions.join_next() => match joined {
                None => break,
                Some(Ok((v, c, answer))) => {
                    answers.insert((v, c), answer);
                    left[v] -= 1;
                    if left[v] == 0 {
                        weight = weight.saturating_add(committee.weight(&remotes[v].public_key));
                        if stop_at.is_none() && weight >= committee.quorum_threshold() {
                            let grace = Duration::try_from_secs_f64(
                                start.elapsed().as_secs_f64() * options.quorum_grace,
                            )
                            .unwrap_or(Duration::ZERO);
                            stop_at = Some(Instant::now() + grace.max(MIN_GRACE));
                        }
                    }
                }
                // A question that panicked is shown as not answered.
                Some(Err(_)) => {}
            },
            () = grace => break,
        }
    }
    questions.abort_all();
    answers
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or("-".to_string(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    })
}

/// One line per validator: its health state, latency and success rate.
fn health_lines(session: &Session, remotes: &[RemoteNode]) -> String {
    let addresses = session.addresses();
    let mut out = String::from("validators\n");
    for remote in remotes {
        let record = remote.health.snapshot();
        let state = match record.state() {
            HealthState::Healthy => "healthy".to_string(),
            HealthState::Suspect { .. } => match remote.health.cooldown_left() {
                left if left.is_zero() => "suspect (to be probed)".to_string(),
                left => format!("suspect (cooling down {:.1} s)", left.as_secs_f64()),
            },
        };
        let samples = remote.health.snapshot().sorted_latencies();
        let address = addresses
            .get(&remote.public_key)
            .map_or("?", String::as_str);
        let _ = writeln!(
            out,
            "  {:?} at {address}: {state}, latency p50 {} p95 {}, success {:.0}%, {} failures in a row",
            remote.public_key,
            millis(quantile(&samples, 0.5)),
            millis(record.p95()),
            record.success_rate() * 100.0,
            record.consecutive_failures(),
        );
    }
    out
}

/// Runs `quorum client info`.
pub async fn info(session: &Session) -> Result<(), CliError> {
    let remotes = session.remotes();
    let chains: Vec<ChainId> = session.wallet.chains()?;
    // The local node's synchronization and the questions to the validators, at once.
    let (synchronized, answers) = tokio::join!(
        session.synchronize(&chains, false),
        ask_all(&remotes, &chains, &session.committee, &session.options)
    );
    // What could not be synchronized is shown as the local node has it.
    if let Err(error) = synchronized {
        eprintln!("warning: not every chain was synchronized: {error}");
    }
    let addresses = session.addresses();
    let catch_up = session.base.catch_up();
    let mut out = String::new();
    for (c, chain_id) in chains.iter().enumerate() {
        let state = session.local.chain_state(*chain_id).await?;
        let _ = writeln!(
            out,
            "chain {c} {chain_id} height {} balance {}",
            state.next_height().0,
            state.balance()
        );
        for (v, remote) in remotes.iter().enumerate() {
            let answer = answers.get(&(v, c)).cloned().unwrap_or(Answer::NotWaited);
            let address = addresses
                .get(&remote.public_key)
                .map_or("?", String::as_str);
            let _ = writeln!(
                out,
                "  validator {:?} at {address}: {}",
                remote.public_key,
                answer.render()
            );
            // Behind the client: brought up to date in the final update phase.
            if let Answer::At { height, .. } = answer {
                if height < state.next_height() {
                    catch_up.enqueue(
                        session.updater(remote.clone()),
                        *chain_id,
                        state.next_height(),
                    );
                }
            }
        }
    }
    print!("{out}");
    let left = update_phase::run(catch_up, &remotes, session.update_budget).await;
    update_phase::report(&left, session.update_budget);
    print!("{}", health_lines(session, &remotes));
    Ok(())
}
