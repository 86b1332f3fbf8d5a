//! What all connections of a server share and draw on: its options, the connection limits, the
//! receive budget, the handler and decoder permits, and the counters; and what the connections
//! of one peer address share ([`PeerShare`]).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::budget::{ConnectionBudget, ReceiveBudget};
use crate::config::ServerConfig;
use crate::limits::ConnectionLimits;
use crate::stats::{Recorder, ServerStats};

/// What the connections of one peer address share (each bound is a [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct PeerShare {
    /// [`ServerConfig::peer_budget`]: the address's memory, mirrored from its connections'
    /// budgets.
    pub(crate) budget: Arc<ConnectionBudget>,
    /// [`ServerConfig::receive_share_per_ip`]: bytes of the receive budget, as a semaphore.
    pub(crate) receive: Arc<Semaphore>,
    /// [`ServerConfig::max_handlers_per_ip`]: one permit per handler of the address running.
    pub(crate) handlers: Semaphore,
}

/// The bounded resources of one server (each bound is a [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct Resources {
    pub(crate) config: ServerConfig,
    pub(crate) limits: Arc<ConnectionLimits<PeerShare>>,
    /// Bytes of large frames, across all connections.
    pub(crate) receive: ReceiveBudget,
    /// One permit per handler running.
    pub(crate) handlers: Semaphore,
    /// One permit per large frame being decoded.
    pub(crate) decoders: Arc<Semaphore>,
    pub(crate) recorder: Arc<Recorder>,
}

impl Resources {
    /// The resources of a server with `config` (already validated).
    pub(crate) fn new(config: ServerConfig) -> Arc<Self> {
        let recorder = Arc::new(Recorder::default());
        let new_share = {
            let recorder = Arc::clone(&recorder);
            let (budget, receive, handlers) = (
                config.effective_peer_budget(),
                config.effective_receive_share(),
                config.max_handlers_per_ip,
            );
            move || {
                Arc::new(PeerShare {
                    budget: ConnectionBudget::new_peer(budget, Arc::clone(&recorder)),
                    receive: Arc::new(Semaphore::new(receive)),
                    handlers: Semaphore::new(handlers),
                })
            }
        };
        Arc::new(Resources {
            limits: ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_ip,
                new_share,
            ),
            receive: ReceiveBudget::new(config.effective_receive_budget(), Arc::clone(&recorder)),
            handlers: Semaphore::new(config.max_handlers),
            decoders: Arc::new(Semaphore::new(config.max_blocking_decodes)),
            recorder,
            config,
        })
    }

    /// A fresh budget for one connection of the address that has `share`.
    pub(crate) fn connection_budget(&self, share: &PeerShare) -> Arc<ConnectionBudget> {
        ConnectionBudget::new(
            self.config.effective_connection_budget(),
            Arc::clone(&self.recorder),
            Some(Arc::clone(&share.budget)),
        )
    }

    /// The counters and gauges now.
    pub(crate) fn stats(&self) -> ServerStats {
        let running = self
            .config
            .max_handlers
            .saturating_sub(self.handlers.available_permits());
        self.recorder.snapshot(self.limits.total(), running)
    }
}
