//! [`MemoryBudget`]: the bytes peers make a validator's servers hold, shared by all of its
//! servers whatever their transport (DESIGN §6.2).
//!
//! A validator may listen on TCP and QUIC at once. The bounds that make a server safe against
//! many attacking addresses (DESIGN §6.1: a budget for the whole server, one per address group
//! with a floor for each of its addresses) only hold if every server charges the same
//! budgets: one server's implementation is handed to the others, which charge what their
//! connections hold to it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::net::IpAddr;

use async_trait::async_trait;

/// The memory budgets a server shares with the other servers of its validator.
pub trait MemoryBudget: Send + Sync {
    /// A budget of `bytes` for one new connection from `peer`, mirrored on the shares of its
    /// address group and of the whole validator.
    fn connection(&self, peer: IpAddr, bytes: usize) -> Arc<dyn ConnectionMemory>;
}

/// One connection's budget under a [`MemoryBudget`].
#[async_trait]
pub trait ConnectionMemory: Send + Sync {
    /// Waits until `bytes` more fit this connection's budget and every share above it, then
    /// charges them until the returned [`MemoryCharge`] is dropped. The caller bounds the wait.
    async fn charge(&self, bytes: usize) -> MemoryCharge;
}

/// Bytes charged to a [`ConnectionMemory`], given back when dropped.
pub struct MemoryCharge(#[allow(dead_code)] Box<dyn Send + Sync>);

impl MemoryCharge {
    /// A charge that gives its bytes back when `held` is dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        MemoryCharge(Box::new(held))
    }
}

impl core::fmt::Debug for MemoryCharge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MemoryCharge")
    }
}
