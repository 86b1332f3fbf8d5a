//! What all connections of a server share and draw on: its options, the connection limits, the
//! receive budget, the handler slots and decoder permits, and the counters; and what the connections
//! of one peer address share ([`PeerShare`]).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::ServerConfig;
use crate::server::budget::{ConnectionBudget, ReceiveBudget};
use crate::server::connection_caps::{ConnectionLimits, GroupKey};
use crate::server::handler_slots::{HandlerSlots, SlotGroup};
use crate::server::poll_gate::PollGate;
use crate::server::refusal_log::RefusalLog;
use crate::server::server_stats::{Recorder, ServerStats};
use crate::server::streams::AddressStreams;

/// What the addresses of one group (an IPv4 /24, an IPv6 /48) share (each bound is a
/// [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct GroupShare {
    /// [`ServerConfig::group_budget`]: the group's memory, mirrored from its addresses'
    /// budgets, and mirrored on the server's.
    pub(crate) budget: Arc<ConnectionBudget>,
    /// [`ServerConfig::max_handlers_per_group`]: one permit per handler of the group running.
    pub(crate) handlers: Semaphore,
    /// Bytes of large frames the group holds beyond the receive budget, within its floor
    /// ([`ServerConfig::group_floor`]).
    pub(crate) receive_floor: Arc<AtomicUsize>,
    /// The group's handler time, by which the server's handler slots are shared
    /// ([`ServerConfig::handler_time_half_life`]).
    pub(crate) slots: Arc<SlotGroup>,
}

/// The live group shares, by group: entries whose group has no connection left are dropped
/// as new groups come.
#[derive(Debug, Default)]
struct Groups {
    live: HashMap<GroupKey, Weak<GroupShare>>,
}

impl Groups {
    /// The share of `ip`'s group, made with `make` if it has none alive.
    fn share_of(&mut self, ip: IpAddr, make: impl FnOnce() -> GroupShare) -> Arc<GroupShare> {
        let key = GroupKey::of(ip);
        if let Some(share) = self.live.get(&key).and_then(Weak::upgrade) {
            return share;
        }
        if self.live.len() >= GROUPS_BEFORE_PRUNING {
            self.live.retain(|_, share| share.strong_count() > 0);
        }
        let share = Arc::new(make());
        self.live.insert(key, Arc::downgrade(&share));
        share
    }
}

/// Makes and keeps the share of each address group, under the server's budget.
#[derive(Debug)]
pub(crate) struct GroupMaker {
    live: Mutex<Groups>,
    budget: usize,
    address_floor: usize,
    handlers: usize,
    half_life: std::time::Duration,
    recorder: Arc<Recorder>,
    server: Arc<ConnectionBudget>,
}

impl GroupMaker {
    /// The share of `ip`'s group, made if it has none alive.
    pub(crate) fn share_of(&self, ip: IpAddr) -> Arc<GroupShare> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .share_of(ip, || GroupShare {
                budget: ConnectionBudget::new_group(
                    self.budget,
                    self.address_floor,
                    Arc::clone(&self.recorder),
                    Arc::clone(&self.server),
                ),
                handlers: Semaphore::new(self.handlers),
                receive_floor: Arc::new(AtomicUsize::new(0)),
                slots: Arc::new(SlotGroup::new(self.half_life)),
            })
    }
}

/// Entries of the group map (live or not) above which dead ones are dropped: at most about
/// twice the number of groups with a connection, each an entry of a few dozen bytes.
const GROUPS_BEFORE_PRUNING: usize = 1_024;

/// What the connections of one peer address share (each bound is a [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct PeerShare {
    /// The address's group.
    pub(crate) group: Arc<GroupShare>,
    /// [`ServerConfig::peer_budget`]: the address's memory, mirrored from its connections'
    /// budgets.
    pub(crate) budget: Arc<ConnectionBudget>,
    /// [`ServerConfig::receive_share_per_ip`]: bytes of the receive budget, as a semaphore.
    pub(crate) receive: Arc<Semaphore>,
    /// [`ServerConfig::max_handlers_per_ip`]: one permit per handler of the address running.
    pub(crate) handlers: Semaphore,
    /// The streams of the address's connections (subscriptions and what they follow).
    pub(crate) streams: Arc<AddressStreams>,
}

/// The bounded resources of one server (each bound is a [`ServerConfig`] field).
#[derive(Debug)]
pub(crate) struct Resources {
    pub(crate) config: ServerConfig,
    /// The address groups' shares, and the server's budget above them.
    pub(crate) groups: Arc<GroupMaker>,
    pub(crate) limits: Arc<ConnectionLimits<PeerShare>>,
    /// Bytes of large frames, across all connections.
    pub(crate) receive: ReceiveBudget,
    /// One slot per handler running, shared between groups by their handler time.
    pub(crate) handlers: Arc<HandlerSlots>,
    /// One turn per handler being polled, shared between groups by their handler time.
    pub(crate) polls: Arc<PollGate>,
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
        let server = ConnectionBudget::new_server(
            config.effective_server_budget(),
            config.group_floor,
            Arc::clone(&recorder),
        );
        let groups = Arc::new(GroupMaker {
            live: Mutex::new(Groups::default()),
            budget: config.effective_group_budget(),
            address_floor: config.address_floor,
            handlers: config.max_handlers_per_group,
            half_life: config.handler_time_half_life,
            recorder: Arc::clone(&recorder),
            server,
        });
        let new_share = {
            let recorder = Arc::clone(&recorder);
            let groups = Arc::clone(&groups);
            let (budget, receive, handlers) = (
                config.effective_peer_budget(),
                config.effective_receive_share(),
                config.max_handlers_per_ip,
            );
            move |ip: IpAddr| {
                let group = groups.share_of(ip);
                Arc::new(PeerShare {
                    budget: ConnectionBudget::new_peer(
                        budget,
                        Arc::clone(&recorder),
                        Some(Arc::clone(&group.budget)),
                    ),
                    receive: Arc::new(Semaphore::new(receive)),
                    handlers: Semaphore::new(handlers),
                    streams: Arc::new(AddressStreams::default()),
                    group,
                })
            }
        };
        Arc::new(Resources {
            groups,
            limits: ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_ip,
                new_share,
            ),
            receive: ReceiveBudget::new(config.effective_receive_budget(), Arc::clone(&recorder)),
            handlers: HandlerSlots::new(config.max_handlers),
            polls: PollGate::new(config.max_polling_handlers),
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
    /// attacker connection), and counted by `reason` in `quorum_connections_closed_total`.
    pub(crate) fn report_closing(
        &self,
        peer: SocketAddr,
        error: &impl fmt::Display,
        gone: bool,
        reason: &'static str,
    ) {
        if gone {
            debug!(%peer, reason = %error, "connection lost");
            return;
        }
        metrics::counter!("quorum_connections_closed_total", "reason" => reason).increment(1);
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
        let running = self.handlers.taken();
        self.recorder.snapshot(self.limits.total(), running)
    }
}
