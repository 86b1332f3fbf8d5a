//! Connection limits: how many connections are open, in all and per peer address; which are
//! refused; which one gives way when the server is full; and what the connections of one peer
//! address share (a value made when the peer's first connection is admitted and dropped with
//! its last).
//!
//! When the server holds its maximum of connections, a newcomer is not refused outright: the
//! peer address holding the most connections gives one up (the one least recently active), if
//! it holds at least two more than the newcomer's address does (so that, after the swap, it
//! still holds at least as many). So an attacker who fills the server from many addresses pays
//! for every newcomer with its own connections, and an address with few connections always
//! gets in while another holds many; the server refuses only when no address holds two more
//! than the newcomer's.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Which peers share a per-address limit: an IPv4 address; an IPv6 address with the rest of its
/// `/64` (one subscriber's network, which can hold any number of addresses); an IPv4-mapped
/// IPv6 address as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Network(u64),
}

impl PeerKey {
    pub(crate) fn of(ip: IpAddr) -> PeerKey {
        match ip {
            IpAddr::V4(v4) => PeerKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(v4),
                None => PeerKey::V6Network((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// Which addresses share a group's budget: an IPv4 `/24`; an IPv6 `/48`; an IPv4-mapped IPv6
/// address with its IPv4 `/24`. (A `/24` or a `/48` is what one attacker most cheaply holds
/// many addresses of.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum GroupKey {
    /// The first 24 bits of the address.
    V4(u32),
    /// The first 48 bits of the address.
    V6(u64),
}

impl GroupKey {
    pub(crate) fn of(ip: IpAddr) -> GroupKey {
        match ip {
            IpAddr::V4(v4) => GroupKey::V4(v4.to_bits() >> 8),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => GroupKey::V4(v4.to_bits() >> 8),
                None => GroupKey::V6((v6.to_bits() >> 80) as u64),
            },
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub(crate) enum Refusal {
    /// The server holds its maximum of connections, and no address holds enough more than the
    /// newcomer's to give one up.
    #[error("{limit} connections open in all")]
    Total {
        /// [`ServerConfig::max_connections`](crate::ServerConfig::max_connections).
        limit: usize,
    },
    /// The peer's address holds its maximum of connections.
    #[error("{limit} connections open from {ip}")]
    PerIp {
        /// The refused peer's address.
        ip: IpAddr,
        /// [`ServerConfig::max_connections_per_ip`](crate::ServerConfig::max_connections_per_ip).
        limit: usize,
    },
}

/// One open connection as the limits see it: when it was last active, and the token that
/// tells it to give way.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// When the connection was admitted.
    origin: Instant,
    /// Milliseconds after `origin` of the last sign of life (admission, a frame begun, an
    /// answer sent).
    last_active_ms: AtomicU64,
    /// Set once this connection was chosen to give way (so it is not chosen twice).
    evicted: AtomicBool,
    evict: CancellationToken,
}

impl Ticket {
    fn new() -> Arc<Self> {
        Arc::new(Ticket {
            origin: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            evict: CancellationToken::new(),
        })
    }

    /// Records a sign of life now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once the connection must give way to a newcomer.
    pub(crate) async fn evicted(&self) {
        self.evict.cancelled().await;
    }

    /// When the connection was last active.
    fn last_active(&self) -> Instant {
        self.origin + std::time::Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }
}

/// Counts open connections against the two limits, and keeps each peer address's share.
pub(crate) struct ConnectionLimits<S> {
    max_total: usize,
    max_per_ip: usize,
    new_share: Box<dyn Fn(IpAddr) -> Arc<S> + Send + Sync>,
    open: Mutex<Open<S>>,
}

impl<S> fmt::Debug for ConnectionLimits<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("max_total", &self.max_total)
            .field("max_per_ip", &self.max_per_ip)
            .finish_non_exhaustive()
    }
}

struct Open<S> {
    total: usize,
    /// Connections told to give way that have not closed yet (still in `total`).
    evicting: usize,
    next_id: u64,
    /// Only addresses with at least one connection open.
    per_peer: HashMap<PeerKey, Peer<S>>,
}

struct Peer<S> {
    share: Arc<S>,
    connections: HashMap<u64, Arc<Ticket>>,
}

impl<S> Peer<S> {
    /// Connections not told to give way.
    fn live(&self) -> usize {
        self.connections
            .values()
            .filter(|t| !t.is_evicted())
            .count()
    }

    /// The live connection least recently active.
    fn stalest(&self) -> Option<&Arc<Ticket>> {
        self.connections
            .values()
            .filter(|t| !t.is_evicted())
            .min_by_key(|t| t.last_active())
    }
}

/// What admission gives a connection.
#[derive(Debug)]
pub(crate) struct Admission<S> {
    /// Its place, freed on drop.
    pub(crate) permit: ConnectionPermit<S>,
    /// Its ticket: signs of life go in, the order to give way comes out.
    pub(crate) ticket: Arc<Ticket>,
    /// What it shares with the other connections of its address.
    pub(crate) share: Arc<S>,
    /// Whether another connection was told to give way for it.
    pub(crate) evicted_another: bool,
}

impl<S> ConnectionLimits<S> {
    /// Limits of `max_total` connections and `max_per_ip` per address; `new_share` makes the
    /// share of an address when its first connection is admitted.
    pub(crate) fn new(
        max_total: usize,
        max_per_ip: usize,
        new_share: impl Fn(IpAddr) -> Arc<S> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            new_share: Box::new(new_share),
            open: Mutex::new(Open {
                total: 0,
                evicting: 0,
                next_id: 0,
                per_peer: HashMap::new(),
            }),
        })
    }

    fn open(&self) -> MutexGuard<'_, Open<S>> {
        // Nothing panics while the lock is held; a poisoned count is still right.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now (those told to give way included, until they have closed).
    pub(crate) fn total(&self) -> usize {
        self.open().total
    }

    /// Admits one more connection from `ip`, counted until the permit is dropped, or says why
    /// not. When the server is full, the address with the most connections gives one up if it
    /// holds at least two more than `ip`'s does.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission<S>, Refusal> {
        let key = PeerKey::of(ip);
        let mut open = self.open();
        let from_peer = open.per_peer.get(&key).map_or(0, Peer::live);
        if from_peer >= self.max_per_ip {
            return Err(Refusal::PerIp {
                ip,
                limit: self.max_per_ip,
            });
        }
        let mut evicted_another = false;
        if open.total.saturating_sub(open.evicting) >= self.max_total {
            let victim = open
                .per_peer
                .values()
                .map(|peer| (peer.live(), peer))
                .filter(|(live, _)| *live > from_peer + 1)
                .max_by_key(|(live, _)| *live)
                .and_then(|(_, peer)| peer.stalest().cloned());
            let Some(victim) = victim else {
                return Err(Refusal::Total {
                    limit: self.max_total,
                });
            };
            victim.evicted.store(true, Ordering::Release);
            victim.evict.cancel();
            open.evicting += 1;
            evicted_another = true;
        }
        let id = open.next_id;
        open.next_id += 1;
        let ticket = Ticket::new();
        let peer = open.per_peer.entry(key).or_insert_with(|| Peer {
            share: (self.new_share)(ip),
            connections: HashMap::new(),
        });
        peer.connections.insert(id, Arc::clone(&ticket));
        let share = Arc::clone(&peer.share);
        open.total += 1;
        Ok(Admission {
            permit: ConnectionPermit {
                limits: Arc::clone(self),
                key,
                id,
            },
            ticket,
            share,
            evicted_another,
        })
    }
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct ConnectionPermit<S> {
    limits: Arc<ConnectionLimits<S>>,
    key: PeerKey,
    id: u64,
}

impl<S> fmt::Debug for ConnectionPermit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPermit")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl<S> Drop for ConnectionPermit<S> {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        let mut evicted = false;
        if let Some(peer) = open.per_peer.get_mut(&self.key) {
            if let Some(ticket) = peer.connections.remove(&self.id) {
                evicted = ticket.is_evicted();
            }
            if peer.connections.is_empty() {
                open.per_peer.remove(&self.key);
            }
        }
        if evicted {
            open.evicting = open.evicting.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(total: usize, per_ip: usize) -> Arc<ConnectionLimits<()>> {
        ConnectionLimits::new(total, per_ip, |_| Arc::new(()))
    }

    #[test]
    fn per_ip_and_total_limits_refuse_the_excess_and_free_on_drop() {
        let limits = limits(4, 2);
        let a1 = limits.admit(ip("10.0.0.1")).unwrap();
        let _a2 = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::PerIp {
                ip: ip("10.0.0.1"),
                limit: 2
            }
        );
        let _b = limits.admit(ip("10.0.0.2")).unwrap();
        let _c = limits.admit(ip("10.0.0.3")).unwrap();
        // Full. 10.0.0.2 holds 1: not two more than its own 1, so refused.
        assert_eq!(
            limits.admit(ip("10.0.0.2")).unwrap_err(),
            Refusal::Total { limit: 4 }
        );
        assert_eq!(limits.total(), 4);
        drop(a1);
        assert_eq!(limits.total(), 3);
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn when_full_the_heaviest_address_gives_up_its_stalest_connection() {
        let limits = limits(4, 4);
        let heavy: Vec<_> = (0..3)
            .map(|_| limits.admit(ip("10.0.0.9")).unwrap())
            .collect();
        let _light = limits.admit(ip("10.0.0.2")).unwrap();
        // The first of the heavy ones shows life again: the second is now the stalest.
        std::thread::sleep(std::time::Duration::from_millis(5));
        heavy[0].ticket.touch();
        heavy[2].ticket.touch();
        let newcomer = limits.admit(ip("10.0.0.3")).unwrap();
        assert!(newcomer.evicted_another);
        assert!(heavy[1].ticket.is_evicted());
        assert!(!heavy[0].ticket.is_evicted() && !heavy[2].ticket.is_evicted());
        // Five open until the evicted one closes; the count of those giving way makes room
        // for exactly one newcomer each.
        assert_eq!(limits.total(), 5);
        // 10.0.0.9 now holds 2 live; a newcomer from 10.0.0.4 (0) may take one more.
        let second = limits.admit(ip("10.0.0.4")).unwrap();
        assert!(second.evicted_another);
        // Now every address holds 1: the server refuses.
        assert_eq!(
            limits.admit(ip("10.0.0.5")).unwrap_err(),
            Refusal::Total { limit: 4 }
        );
        drop(heavy);
        assert_eq!(limits.total(), 3);
        assert_eq!(limits.open().evicting, 0);
    }

    #[test]
    fn groups_are_ipv4_slash_24s_and_ipv6_slash_48s() {
        assert_eq!(
            GroupKey::of(ip("127.1.0.1")),
            GroupKey::of(ip("127.1.0.254"))
        );
        assert_ne!(GroupKey::of(ip("127.1.0.1")), GroupKey::of(ip("127.2.0.1")));
        assert_eq!(
            GroupKey::of(ip("::ffff:10.0.0.1")),
            GroupKey::of(ip("10.0.0.9"))
        );
        assert_eq!(
            GroupKey::of(ip("2001:db8:1::1")),
            GroupKey::of(ip("2001:db8:1:ffff::1"))
        );
        assert_ne!(
            GroupKey::of(ip("2001:db8:1::1")),
            GroupKey::of(ip("2001:db8:2::1"))
        );
    }

    #[test]
    fn an_address_shares_one_value_while_it_has_connections() {
        let made = Arc::new(AtomicU64::new(0));
        let limits = ConnectionLimits::new(10, 10, {
            let made = Arc::clone(&made);
            move |_| Arc::new(made.fetch_add(1, Ordering::Relaxed))
        });
        let a = limits.admit(ip("10.0.0.1")).unwrap();
        let b = limits.admit(ip("10.0.0.1")).unwrap();
        let c = limits.admit(ip("10.0.0.2")).unwrap();
        assert!(Arc::ptr_eq(&a.share, &b.share));
        assert!(!Arc::ptr_eq(&a.share, &c.share));
        drop((a, b));
        let again = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(*again.share, 2, "a fresh share once the address had gone");
    }

    #[test]
    fn an_ipv6_network_counts_as_one_peer_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            PeerKey::of(ip("2001:db8:1:2::1")),
            PeerKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            PeerKey::of(ip("2001:db8:1:2::1")),
            PeerKey::of(ip("2001:db8:1:3::1"))
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(PeerKey::of(mapped), PeerKey::of(ip("192.0.2.7")));
        assert_ne!(
            PeerKey::of(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            PeerKey::of(ip("127.0.0.1"))
        );
    }

    #[test]
    fn released_addresses_are_forgotten() {
        let limits = limits(10, 10);
        let admission = limits.admit(ip("10.0.0.1")).unwrap();
        drop(admission);
        assert!(limits.open().per_peer.is_empty());
    }
}
