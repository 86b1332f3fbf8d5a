//! The workspace's shared test kit (DESIGN §2, §10): what several crates' tests use, written
//! once and kept out of the crates they test. Not published.
//!
//! * [`TestNetwork`] (with its two clocks, [`TestNet`] and [`TokioTestNet`]): the one builder of
//!   every test network of the workspace: validators over memory storage behind in-process
//!   transports, a client's local node, owned genesis chains.
//! * Fixtures: seeded keys ([`validator_keys`], [`committee_of`]), committees that certify anything ([`TestCommittee`]), chains
//!   whose blocks are executed by the pure rules ([`TestChain`]), sample blobs and states.
//! * [`crash`]: a writer child process killed with SIGKILL mid-write, for crash tests of
//!   storages.
//! * [`postgres`]: a database of a test's own on the test PostgreSQL server, or a loud skip.
//! * [`storage_conformance`]: the suite every [`Storage`](quorum_core::Storage) passes.
//! * [`transport_conformance`]: the suite every transport passes, differentially against a
//!   Worker called directly.
//! * [`Intercepted`]: an honest validator twisted by an [`Interceptor`] where a test says so
//!   (answers in its place, or changes its answers), every other request answered honestly.
//! * [`must()`] and [`some()`]: unwrapping with a message naming what failed.

#![warn(unreachable_pub)]

pub mod crash;
mod fixtures;
mod intercept;
mod must;
mod net;
pub mod postgres;
pub mod storage_conformance;
mod tokio_clock;
pub mod transport_conformance;

pub use fixtures::{
    committee_of, genesis_description, rich_chain_state, sample_blobs, validator_keys, TestChain,
    TestCommittee, START,
};
pub use intercept::{Intercepted, Interceptor};
pub use must::{must, some};
pub use net::{
    test_consensus, test_description, test_description_shared, test_options, NetClock, TestNet,
    TestNetwork, TestNetworkBuilder, TokioTestNet,
};
pub use tokio_clock::TokioClock;
