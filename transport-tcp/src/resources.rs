//! What all connections of a server share and draw on: its options, the connection limits, the
//! receive budget, the handler and decoder permits, and the counters.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::budget::{ConnectionBudget, ReceiveBudget};
use crate::config::ServerConfig;
use crate::limits::ConnectionLimits;
use crate::stats::{Recorder, ServerStats};

/// The bounded resources of one server (each bound is a [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct Resources {
    pub(crate) config: ServerConfig,
    pub(crate) limits: Arc<ConnectionLimits>,
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
        Arc::new(Resources {
            limits: ConnectionLimits::new(config.max_connections, config.max_connections_per_ip),
            receive: ReceiveBudget::new(config.effective_receive_budget(), Arc::clone(&recorder)),
            handlers: Semaphore::new(config.max_handlers),
            decoders: Arc::new(Semaphore::new(config.max_blocking_decodes)),
            recorder,
            config,
        })
    }

    /// A fresh budget for one connection.
    pub(crate) fn connection_budget(&self) -> Arc<ConnectionBudget> {
        ConnectionBudget::new(
            self.config.effective_connection_budget(),
            Arc::clone(&self.recorder),
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
