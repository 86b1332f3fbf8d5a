//! The server's memory budgets as a [`MemoryBudget`] that the validator's other servers
//! charge (DESIGN §6.2): a connection of theirs gets a budget of its own under its address
//! group's share and the server's budget, the same shares this server's connections draw on,
//! so that the bounds against many addresses hold across transports.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use quorum_core::{ConnectionMemory, MemoryBudget, MemoryCharge};

use crate::server::budget::ConnectionBudget;
use crate::server::resources::{GroupShare, Resources};

/// [`Resources`] seen from another server.
pub(crate) struct SharedMemory {
    pub(crate) resources: Arc<Resources>,
}

impl MemoryBudget for SharedMemory {
    fn connection(&self, peer: IpAddr, bytes: usize) -> Arc<dyn ConnectionMemory> {
        let group = self.resources.groups.share_of(peer);
        let budget = ConnectionBudget::new(
            bytes,
            Arc::clone(&self.resources.recorder),
            Some(Arc::clone(&group.budget)),
        );
        Arc::new(SharedConnection {
            budget,
            _group: group,
        })
    }
}

/// Another server's connection: its budget, and its group's share kept alive with it.
struct SharedConnection {
    budget: Arc<ConnectionBudget>,
    _group: Arc<GroupShare>,
}

#[async_trait]
impl ConnectionMemory for SharedConnection {
    async fn charge(&self, bytes: usize) -> MemoryCharge {
        MemoryCharge::new(self.budget.charge(bytes).await)
    }
}
