//! The `communicate_with_quorum` bench: delay scenarios, their ideal latency, and a committee of
//! Workers behind in-process transports that delay every call.

use std::sync::Arc;
use std::time::Duration;

use quorum_core::{ChainId, Committee};
use quorum_node::SystemClock;
use quorum_testkit::{TestChain, TestNetwork};
use quorum_transport_mem::Fault;
use quorum_updater::{Options, RemoteNode};

use crate::fixtures::COMMITTEE_SEED;

/// Committee sizes measured.
pub const SIZES: [usize; 3] = [4, 10, 100];
/// Delay of every validator in the equal scenario, and of the fast ones in the skewed one.
pub const FAST: Duration = Duration::from_millis(10);
/// Delay of the slow third in the skewed scenario.
pub const SLOW: Duration = Duration::from_millis(40);
/// What a call may take beyond its ideal (target 3 of issue 6).
pub const ALLOWANCE: Duration = Duration::from_millis(1);

/// How the validators' delays are spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// Every validator answers after [`FAST`].
    Equal,
    /// Every third validator (⌊n/3⌋ of them) answers after [`SLOW`], the others after [`FAST`].
    SlowThird,
}

impl Spread {
    /// Both spreads.
    pub const ALL: [Spread; 2] = [Spread::Equal, Spread::SlowThird];

    /// The name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Equal => "equal",
            Spread::SlowThird => "slow_third",
        }
    }

    /// The delay of each of `n` validators, in committee order.
    pub fn delays(self, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|index| match self {
                Spread::SlowThird if index % 3 == 2 => SLOW,
                _ => FAST,
            })
            .collect()
    }
}

/// The bench id of a scenario: `<spread>_n<size>`.
pub fn scenario_id(spread: Spread, n: usize) -> String {
    format!("{}_n{n}", spread.name())
}

/// The ideal latencies of a call with these delays (every validator of weight 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ideal {
    /// Issue 6's ideal: the quorum-th fastest delay × (1 + grace).
    pub quorum_plus_grace: Duration,
    /// What a perfect driver would take: that, or the slowest delay if every validator has
    /// answered before the grace period ends.
    pub best: Duration,
}

/// The ideal latencies of a call to validators of weight 1 with `delays` and the default grace.
pub fn ideal(delays: &[Duration]) -> Ideal {
    let mut sorted = delays.to_vec();
    sorted.sort();
    let quorum = 2 * delays.len() / 3 + 1;
    let quorum_delay = sorted[quorum - 1];
    let quorum_plus_grace = quorum_delay.mul_f64(1.0 + Options::default().quorum_grace);
    let slowest = sorted.last().copied().unwrap_or_default();
    Ideal {
        quorum_plus_grace,
        best: quorum_plus_grace.min(slowest),
    }
}

/// `n` validators (Workers over memory storage) each behind a [`MemoryNode`](quorum_transport_mem::MemoryNode) that delays every
/// call by its scenario's delay.
pub struct QuorumNet {
    /// The committee.
    pub committee: Committee,
    /// The validators as the client reaches them.
    pub remotes: Vec<RemoteNode>,
    /// The genesis chain the calls ask about.
    pub chain_id: ChainId,
    /// The delays, in committee order.
    pub delays: Vec<Duration>,
}

impl QuorumNet {
    /// The network of scenario (`spread`, `n`).
    pub async fn new(spread: Spread, n: usize) -> Self {
        let chain = TestChain::new(0, 20);
        let net = TestNetwork::<SystemClock>::builder()
            .validators(n)
            .validator_seed(COMMITTEE_SEED)
            .genesis_chains(std::slice::from_ref(&chain))
            .bcs(false)
            .build()
            .await;
        let delays = spread.delays(n);
        let remotes = net
            .secrets
            .iter()
            .zip(&net.nodes)
            .zip(&delays)
            .map(|((key, node), delay)| {
                node.set_fault(Fault::Slow(*delay));
                RemoteNode::new(key.public(), Arc::new(node.clone()))
            })
            .collect();
        QuorumNet {
            committee: net.committee.clone(),
            remotes,
            chain_id: chain.id(),
            delays,
        }
    }
}
