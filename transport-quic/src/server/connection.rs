//! One connection: its handshake within the first-request deadline, then a task per request
//! stream, until it stays idle, the peer leaves or the server shuts down. The subscriptions it
//! opened are closed with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use quinn::{Connection, Incoming, VarInt};
use quorum_core::SubscriptionId;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::debug;

use super::admission::Lease;
use super::{stream, Shared, CODE_IDLE, CODE_SHUTDOWN};
use crate::budget::{Budgets, WindowCredit};

/// What a connection owns: its budget and its subscriptions (each with its number of chains).
pub(crate) struct Owned {
    pub(crate) budgets: Budgets,
    pub(crate) subscriptions: Mutex<HashMap<SubscriptionId, usize>>,
    /// Held while a subscription is being opened: one at a time, so that two cannot both
    /// pass the caps.
    pub(crate) subscribing: tokio::sync::Mutex<()>,
}

impl Owned {
    /// The subscriptions, locked.
    pub(crate) fn subscriptions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SubscriptionId, usize>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves one admitted connection to its end.
pub(super) async fn serve(incoming: Incoming, shared: Arc<Shared>, lease: &Lease) {
    let peer = incoming.remote_address();
    let config = &shared.config;
    // The handshake counts against the first request's deadline.
    let first = Instant::now() + config.first_request_timeout;
    let connection = match incoming.accept() {
        Ok(connecting) => match timeout(config.first_request_timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                debug!(%peer, %error, "QUIC handshake failed");
                return closed("handshake");
            }
            Err(_) => return closed("handshake_timeout"),
        },
        Err(error) => {
            debug!(%peer, %error, "QUIC connection not accepted");
            return closed("handshake");
        }
    };
    let credits = raise_windows(&connection, &shared);
    let budgets = match &shared.memory {
        Some(memory) => Budgets::shared(&**memory, peer.ip(), config.connection_budget),
        None => Budgets::new(&shared.budget, config.connection_budget),
    };
    let owned = Arc::new(Owned {
        budgets,
        subscriptions: Mutex::new(HashMap::new()),
        subscribing: tokio::sync::Mutex::new(()),
    });
    run(&connection, &shared, &owned, lease, first).await;
    drop(credits);
    // Whatever it still follows ends with it.
    let open: Vec<SubscriptionId> = owned.subscriptions().drain().map(|(id, _)| id).collect();
    for id in open {
        let _ = shared.node.unsubscribe(id).await;
    }
}

/// Raises the connection's windows past their initial sizes, both ways, with credit from the
/// server's shared window budget (as much as is left); the credit is kept while it lives.
fn raise_windows(connection: &Connection, shared: &Shared) -> [WindowCredit; 2] {
    let config = &shared.config;
    let receive_initial = u64::from(config.initial_receive_window);
    let receive = shared
        .windows
        .take(u64::from(config.receive_window).saturating_sub(receive_initial));
    if receive.bytes() > 0 {
        let window = VarInt::from_u64(receive_initial + receive.bytes()).unwrap_or(VarInt::MAX);
        connection.set_receive_window(window);
    }
    let send = shared.windows.take(
        config
            .send_window
            .saturating_sub(config.initial_send_window),
    );
    if send.bytes() > 0 {
        connection.set_send_window(config.initial_send_window + send.bytes());
    }
    [receive, send]
}

/// Accepts request streams until the connection ends; it ends idle when no stream is open at
/// its deadline (the first request's, then `idle_timeout` after the last activity).
async fn run(
    connection: &Connection,
    shared: &Arc<Shared>,
    owned: &Arc<Owned>,
    lease: &Lease,
    first: Instant,
) {
    let mut deadline = first;
    let mut streams = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = connection.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(stream::serve(send, recv, shared.clone(), owned.clone()));
                    lease.streams_open(streams.len(), std::time::Instant::now());
                    deadline = Instant::now() + shared.config.idle_timeout;
                }
                Err(error) => {
                    debug!(peer = %connection.remote_address(), %error, "QUIC connection ended");
                    break;
                }
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {
                lease.streams_open(streams.len(), std::time::Instant::now());
                deadline = Instant::now() + shared.config.idle_timeout;
            }
            () = lease.evicted() => {
                closed("displaced");
                connection.close(VarInt::from_u32(CODE_IDLE), b"idle, displaced");
                break;
            }
            () = sleep_until(deadline) => {
                if streams.is_empty() {
                    closed("idle");
                    connection.close(VarInt::from_u32(CODE_IDLE), b"idle");
                    break;
                }
                deadline = Instant::now() + shared.config.idle_timeout;
            }
            _ = shutdown.changed() => {
                connection.close(VarInt::from_u32(CODE_SHUTDOWN), b"shutdown");
                break;
            }
        }
    }
    streams.abort_all();
    while streams.join_next().await.is_some() {}
}

/// Counts a connection the server closed, by reason.
fn closed(reason: &'static str) {
    metrics::counter!("quorum_quic_closed_total", "reason" => reason).increment(1);
}
