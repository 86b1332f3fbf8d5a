//! What all connections of a server share and draw on: its options, the connection limits, the
//! receive budget, the handler and decoder permits, and the counters; and what the connections
//! of one peer address share ([`PeerShare`]).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::budget::{ConnectionBudget, ReceiveBudget};
use crate::config::ServerConfig;
use crate::limits::ConnectionLimits;
use crate::refusal_log::RefusalLog;
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
    /// Refused connections, failed `accept`s and connections closed for misbehaviour, logged
    /// at most once per [`ServerConfig::log_interval`].
    pub(crate) log: Mutex<RefusalLog>,
    /// Notified when a closing is held back, so that the accept loop schedules its summary.
    pub(crate) log_held: Notify,
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
            log: Mutex::new(RefusalLog::new(config.log_interval)),
            log_held: Notify::new(),
            config,
        })
    }

    /// Notes that the connection from `peer` is closed because of `error`: quietly when the
    /// peer simply went away; otherwise counted, the first logged at once as a warning and the
    /// rest summarised at most once per [`ServerConfig::log_interval`] (never a line per
    /// attacker connection).
    pub(crate) fn report_closing(&self, peer: SocketAddr, error: &impl fmt::Display, gone: bool) {
        if gone {
            debug!(%peer, reason = %error, "connection lost");
            return;
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(summary) = log.closed(peer, error, Instant::now()) else {
            self.log_held.notify_one();
            return;
        };
        match summary.lone_closing() {
            Some((peer, reason)) => warn!(%peer, reason, "closing connection"),
            None => summary.log(log.interval()),
        }
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
