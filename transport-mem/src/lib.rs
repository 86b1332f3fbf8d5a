//! Quorum in process: a [`ValidatorNode`](quorum_core::ValidatorNode) that wraps another one
//! (normally a Worker) and can misbehave on demand (DESIGN §6).
//!
//! * [`MemoryNode`] passes every request to the wrapped node, optionally through a BCS
//!   encode→decode round trip of requests and responses ([`MemoryNode::with_bcs`],
//!   [`round_trip`]) so that state which would not survive a real wire is caught. It is a
//!   [`Carrier`](quorum_core::protocol::Carrier): calls become the protocol's
//!   [`Request`](quorum_core::protocol::Request)s, so new requests need no change here.
//! * [`Fault`]: what the node does wrong, per node and switchable at run time through a
//!   cloneable [`FaultHandle`]: offline, slow, hanging, flaky, crashing, and the Byzantine
//!   behaviours (bad signatures, votes signed with another key, equivocation, false
//!   `BlobsNotFound` claims, withheld votes, ignored validated certificates).
//! * [`NotificationFault`]: what happens to the notifications the node pushes (dropped,
//!   delayed, replayed, reordered, forged, corrupted, or false ones signed by the node).
//! * Deterministic: every random choice comes from a ChaCha generator seeded at construction,
//!   and delays use `tokio::time`, so tests with paused time behave the same on every run.
//! * [`CallStats`]: how many requests of each
//!   [`RequestKind`](quorum_core::protocol::RequestKind) the node received, so tests can assert
//!   what a node was asked.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use quorum_core::ValidatorNode;
//! # use quorum_core::protocol::RequestKind;
//! # use quorum_transport_mem::{Fault, MemoryNode};
//! # fn demo(worker: Arc<dyn ValidatorNode>, key: quorum_core::ValidatorSecretKey) {
//! let node = MemoryNode::new(worker, Some(key), 7).with_bcs(true);
//! let handle = node.handle();
//! handle.set_fault(Fault::Flaky(0.3));
//! // ... hand `node` to a client as `Arc<dyn ValidatorNode>`, run it, then:
//! handle.set_fault(Fault::Honest);
//! let proposals = handle.stats().calls(RequestKind::BlockProposal);
//! # let _ = proposals;
//! # }
//! ```

#![warn(unreachable_pub)]

mod call_stats;
mod fault;
mod handle;
mod node;
mod notify;
mod round_trip;
mod tamper;

pub use call_stats::CallStats;
pub use fault::{Fault, NotificationFault};
pub use handle::FaultHandle;
pub use node::MemoryNode;
pub use round_trip::round_trip;
