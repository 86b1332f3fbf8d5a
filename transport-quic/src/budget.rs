//! Bytes the server holds for its peers: what requests brought in and room for their answers,
//! charged to the connection's budget and to the server's as the bytes arrive (a length
//! prefix alone reserves nothing).

use std::sync::Arc;

use std::net::IpAddr;

use quorum_core::{ConnectionMemory, MemoryBudget, MemoryCharge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budgets one connection charges: its own and the server's, or a budget under the
/// memory budget this server shares with the validator's other servers.
#[derive(Clone)]
pub(crate) enum Budgets {
    /// This server's own budgets.
    Own {
        connection: Arc<Semaphore>,
        connection_bytes: usize,
        server: Arc<Semaphore>,
        server_bytes: usize,
    },
    /// A connection's budget under a shared [`MemoryBudget`].
    Shared(Arc<dyn ConnectionMemory>),
}

/// Bytes held on the budgets, given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    permits: Vec<OwnedSemaphorePermit>,
    shared: Vec<MemoryCharge>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budgets::Own { .. } => f.write_str("Budgets::Own"),
            Budgets::Shared(_) => f.write_str("Budgets::Shared"),
        }
    }
}

impl Budgets {
    /// The budgets of a new connection of `connection_bytes`, under the server's.
    pub(crate) fn new(server: &ServerBudget, connection_bytes: usize) -> Self {
        Budgets::Own {
            connection: Arc::new(Semaphore::new(connection_bytes)),
            connection_bytes,
            server: server.semaphore.clone(),
            server_bytes: server.bytes,
        }
    }

    /// The budget of a new connection from `peer` of `connection_bytes`, under `memory`.
    pub(crate) fn shared(memory: &dyn MemoryBudget, peer: IpAddr, connection_bytes: usize) -> Self {
        Budgets::Shared(memory.connection(peer, connection_bytes))
    }

    /// Adds `bytes` to `charge` once the budgets have room for them (a charge larger than a
    /// budget takes the whole budget). Waits while they are full: the caller bounds the wait.
    pub(crate) async fn charge(&self, charge: &mut Charge, bytes: usize) {
        let (connection, connection_bytes, server, server_bytes) = match self {
            Budgets::Shared(memory) => {
                charge.shared.push(memory.charge(bytes).await);
                return;
            }
            Budgets::Own {
                connection,
                connection_bytes,
                server,
                server_bytes,
            } => (connection, *connection_bytes, server, *server_bytes),
        };
        for (semaphore, total) in [(connection, connection_bytes), (server, server_bytes)] {
            let wanted = u32::try_from(bytes.min(total)).unwrap_or(u32::MAX);
            if wanted == 0 {
                continue;
            }
            // The semaphores are never closed.
            if let Ok(permit) = semaphore.clone().acquire_many_owned(wanted).await {
                charge.permits.push(permit);
            }
        }
    }

    /// Bytes the server's own budget holds now.
    #[cfg(test)]
    pub(crate) fn server_held(&self) -> usize {
        match self {
            Budgets::Own {
                server,
                server_bytes,
                ..
            } => server_bytes.saturating_sub(server.available_permits()),
            Budgets::Shared(_) => 0,
        }
    }
}

/// The server-wide byte budget that every connection's budget sits under.
#[derive(Clone, Debug)]
pub(crate) struct ServerBudget {
    semaphore: Arc<Semaphore>,
    bytes: usize,
}

impl ServerBudget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Self {
        ServerBudget {
            semaphore: Arc::new(Semaphore::new(bytes)),
            bytes,
        }
    }
}

/// Flow-control credit beyond each connection's initial window, shared by every connection.
///
/// What a peer sends within its credit is buffered by QUIC before the server reads it, and
/// credit once granted cannot be taken back. So each connection starts at a small window
/// (`initial_receive_window`, announced in the handshake) and is raised towards
/// `receive_window` only with credit taken here; the bytes QUIC can hold unread are then at
/// most `max_connections × initial_receive_window + receive_window_budget`.
#[derive(Debug)]
pub(crate) struct WindowBudget {
    available: std::sync::Mutex<u64>,
}

/// Credit taken from a [`WindowBudget`], given back when dropped (when its connection ends).
#[derive(Debug)]
pub(crate) struct WindowCredit {
    budget: Arc<WindowBudget>,
    bytes: u64,
}

impl WindowBudget {
    /// A budget of `bytes` of credit.
    pub(crate) fn new(bytes: u64) -> Arc<Self> {
        Arc::new(WindowBudget {
            available: std::sync::Mutex::new(bytes),
        })
    }

    /// Takes up to `wanted` bytes of credit (what is left, if less).
    pub(crate) fn take(self: &Arc<Self>, wanted: u64) -> WindowCredit {
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = wanted.min(*available);
        *available -= bytes;
        WindowCredit {
            budget: self.clone(),
            bytes,
        }
    }
}

impl WindowCredit {
    /// The bytes of credit held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for WindowCredit {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *available = available.saturating_add(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_wait_for_room_and_give_it_back() {
        let server = ServerBudget::new(100);
        let a = Budgets::new(&server, 80);
        let b = Budgets::new(&server, 80);
        let mut first = Charge::default();
        a.charge(&mut first, 70).await;
        assert_eq!(a.server_held(), 70);
        let mut second = Charge::default();
        // 30 of the server's 100 are left: the charge waits until the first is given back.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            b.charge(&mut second, 40),
        )
        .await;
        assert!(waiting.is_err());
        drop(first);
        b.charge(&mut second, 40).await;
        assert_eq!(b.server_held(), 40);
        // Larger than a budget: takes all of it, never waits forever.
        drop(second);
        let mut whole = Charge::default();
        a.charge(&mut whole, 1_000).await;
        assert_eq!(a.server_held(), 100);
        drop(whole);
        assert_eq!(a.server_held(), 0);
    }

    #[test]
    fn window_credit_is_shared_and_given_back() {
        let budget = WindowBudget::new(10);
        let first = budget.take(6);
        let second = budget.take(6);
        assert_eq!((first.bytes(), second.bytes()), (6, 4));
        assert_eq!(budget.take(1).bytes(), 0);
        drop(first);
        assert_eq!(budget.take(8).bytes(), 6);
    }
}
