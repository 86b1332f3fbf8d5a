//! Which validated peers may open a connection: connections in all and per address, and
//! handshakes per second (a token bucket). Peers are counted only once a Retry proved their
//! address.
//!
//! A client process that ends without closing its connections (a crash, a kill) leaves them
//! open until QUIC's idle timeout, since nothing tells a UDP server a process is gone. So
//! when an address is at its cap, its own connection that has been idle longest (no stream
//! open for at least `evict_idle_after`) makes room for the new one: an address can only
//! displace its own connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::ServerConfig;

/// Why a validated peer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` are open.
    Connections,
    /// `max_connections_per_ip` are open from its address.
    ConnectionsPerAddress,
    /// More than `handshakes_per_second` began.
    HandshakeRate,
}

impl Refusal {
    /// The metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Refusal::Connections => "connections",
            Refusal::ConnectionsPerAddress => "connections_per_address",
            Refusal::HandshakeRate => "handshake_rate",
        }
    }
}

/// The counts, shared by the accept loop and every connection's [`Admitted`] guard.
#[derive(Debug)]
pub(crate) struct Admission {
    state: Mutex<State>,
    max_connections: usize,
    max_per_address: usize,
    rate: f64,
    evict_idle_after: Duration,
}

#[derive(Debug)]
struct State {
    open: usize,
    per_address: HashMap<IpAddr, Vec<Arc<Lease>>>,
    tokens: f64,
    refilled: Instant,
}

/// What admission knows of one admitted connection, shared with the connection's task.
#[derive(Debug)]
pub(crate) struct Lease {
    /// When its last stream ended (or it was admitted); `None` while a stream is open.
    idle_since: Mutex<Option<Instant>>,
    evicted: AtomicBool,
    evict: Notify,
}

impl Lease {
    /// Records that `streams` are open now.
    pub(crate) fn streams_open(&self, streams: usize, now: Instant) {
        let mut idle = self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *idle = match (streams, *idle) {
            (0, Some(since)) => Some(since),
            (0, None) => Some(now),
            _ => None,
        };
    }

    /// Resolves once the connection is to make room for a newer one of its address.
    pub(crate) async fn evicted(&self) {
        loop {
            let notified = self.evict.notified();
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Since when it has been idle at least `after` at `now`, if so.
    fn idle_for(&self, after: Duration, now: Instant) -> Option<Instant> {
        let idle = *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.filter(|since| now.saturating_duration_since(*since) >= after)
    }
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    address: IpAddr,
    /// Shared with the connection's task.
    pub(crate) lease: Arc<Lease>,
}

impl Admission {
    /// The counts for `config`'s bounds, with a full bucket of handshakes.
    pub(crate) fn new(config: &ServerConfig, now: Instant) -> Self {
        let rate = f64::from(config.handshakes_per_second);
        Admission {
            state: Mutex::new(State {
                open: 0,
                per_address: HashMap::new(),
                tokens: rate,
                refilled: now,
            }),
            max_connections: config.max_connections,
            max_per_address: config.max_connections_per_ip,
            rate,
            evict_idle_after: config.evict_idle_after,
        }
    }

    /// Admits a connection from `ip` at `now`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Admitted, Refusal> {
        let address = address_of(ip);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.rate);
        state.refilled = now;
        if state.open >= self.max_connections {
            return Err(Refusal::Connections);
        }
        let evict_after = self.evict_idle_after;
        let leases = state.per_address.entry(address).or_default();
        let mut evicting = None;
        if leases.len() >= self.max_per_address {
            // The address's own connection idle longest makes room, if one is idle enough.
            evicting = leases
                .iter()
                .enumerate()
                .filter_map(|(index, lease)| Some((lease.idle_for(evict_after, now)?, index)))
                .min()
                .map(|(_, index)| index);
            if evicting.is_none() {
                return Err(Refusal::ConnectionsPerAddress);
            }
        }
        if state.tokens < 1.0 {
            return Err(Refusal::HandshakeRate);
        }
        state.tokens -= 1.0;
        let leases = state.per_address.entry(address).or_default();
        if let Some(index) = evicting {
            let lease = leases.swap_remove(index);
            lease.evicted.store(true, Ordering::Release);
            lease.evict.notify_waiters();
            state.open = state.open.saturating_sub(1);
        }
        let lease = Arc::new(Lease {
            idle_since: Mutex::new(Some(now)),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let leases = state.per_address.entry(address).or_default();
        leases.push(lease.clone());
        state.open += 1;
        Ok(Admitted {
            admission: self.clone(),
            address,
            lease,
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self
            .admission
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(leases) = state.per_address.get_mut(&self.address) else {
            return;
        };
        // An evicted lease was taken out (and uncounted) when it was evicted.
        let Some(index) = leases
            .iter()
            .position(|lease| Arc::ptr_eq(lease, &self.lease))
        else {
            return;
        };
        leases.swap_remove(index);
        if leases.is_empty() {
            state.per_address.remove(&self.address);
        }
        state.open = state.open.saturating_sub(1);
    }
}

/// The address a peer is counted under: an IPv4 address, or the /64 of an IPv6 one (a host
/// is given a whole /64).
fn address_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(total: usize, per_ip: usize, rate: u32) -> ServerConfig {
        ServerConfig {
            max_connections: total,
            max_connections_per_ip: per_ip,
            handshakes_per_second: rate,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn counts_connections_in_all_and_per_address() {
        let start = Instant::now();
        let admission = Arc::new(Admission::new(&config(3, 2, 100), start));
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0; 4]));
        let first = admission.admit(a, start);
        let second = admission.admit(a, start);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(
            admission.admit(a, start).err(),
            Some(Refusal::ConnectionsPerAddress)
        );
        let third = admission.admit(b, start);
        assert!(third.is_ok());
        assert_eq!(admission.admit(b, start).err(), Some(Refusal::Connections));
        drop(first);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(a, start).is_ok());
        assert_eq!(admission.open(), 2, "the guard was dropped at once");
    }

    #[test]
    fn handshakes_are_rate_limited_and_refill() {
        let start = Instant::now();
        let admission = Arc::new(Admission::new(&config(100, 100, 2), start));
        let ip: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let held: Vec<_> = (0..2)
            .filter_map(|_| admission.admit(ip, start).ok())
            .collect();
        assert_eq!(held.len(), 2);
        assert_eq!(
            admission.admit(ip, start).err(),
            Some(Refusal::HandshakeRate)
        );
        let later = start + Duration::from_millis(500);
        assert!(
            admission.admit(ip, later).is_ok(),
            "one token back after half a second"
        );
        assert_eq!(
            admission.admit(ip, later).err(),
            Some(Refusal::HandshakeRate)
        );
    }

    #[test]
    fn an_address_at_its_cap_displaces_its_own_idlest_connection() {
        let start = Instant::now();
        let admission = Arc::new(Admission::new(&config(10, 2, 100), start));
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let first = admission.admit(a, start).ok();
        let second = admission.admit(a, start).ok();
        let (Some(first), Some(second)) = (first, second) else {
            panic!("two connections admitted");
        };
        // Both busy: refused.
        first.lease.streams_open(1, start);
        second.lease.streams_open(1, start);
        let later = start + Duration::from_secs(5);
        assert_eq!(
            admission.admit(a, later).err(),
            Some(Refusal::ConnectionsPerAddress)
        );
        // The second idle, but not for long enough: refused; then long enough: displaced.
        second.lease.streams_open(0, later);
        assert_eq!(
            admission.admit(a, later + Duration::from_millis(10)).err(),
            Some(Refusal::ConnectionsPerAddress)
        );
        let third = admission.admit(a, later + Duration::from_secs(2));
        assert!(third.is_ok());
        assert!(second.lease.evicted.load(Ordering::Acquire));
        assert!(!first.lease.evicted.load(Ordering::Acquire));
        assert_eq!(admission.open(), 2);
        drop(second);
        assert_eq!(
            admission.open(),
            2,
            "the displaced one was uncounted already"
        );
        drop(third);
        drop(first);
        assert_eq!(admission.open(), 0);
    }

    #[test]
    fn ipv6_hosts_count_by_their_64() {
        let start = Instant::now();
        let admission = Arc::new(Admission::new(&config(10, 1, 100), start));
        let one: IpAddr = "2001:db8::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let same: IpAddr = "2001:db8::ffff".parse().unwrap_or(IpAddr::from([0; 4]));
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let _held = admission.admit(one, start);
        assert_eq!(
            admission.admit(same, start).err(),
            Some(Refusal::ConnectionsPerAddress)
        );
        assert!(admission.admit(other, start).is_ok());
    }
}
