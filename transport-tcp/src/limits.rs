//! Connection limits: how many connections are open, in all and per peer address, and which
//! are refused.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

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

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub(crate) enum Refusal {
    /// The server holds its maximum of connections.
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

/// Counts open connections against the two limits.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only addresses with at least one connection open.
    per_peer: HashMap<PeerKey, usize>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Nothing panics while the lock is held; a poisoned count is still right.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now.
    pub(crate) fn total(&self) -> usize {
        self.open().total
    }

    /// Admits one more connection from `ip`, counted until the permit is dropped, or says why
    /// not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let key = PeerKey::of(ip);
        let mut open = self.open();
        if open.total >= self.max_total {
            return Err(Refusal::Total {
                limit: self.max_total,
            });
        }
        let from_peer = open.per_peer.entry(key).or_insert(0);
        if *from_peer >= self.max_per_ip {
            return Err(Refusal::PerIp {
                ip,
                limit: self.max_per_ip,
            });
        }
        *from_peer += 1;
        open.total += 1;
        Ok(ConnectionPermit {
            limits: Arc::clone(self),
            key,
        })
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    key: PeerKey,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_peer.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_peer.remove(&self.key);
            }
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

    #[test]
    fn per_ip_and_total_limits_refuse_the_excess_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
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
        assert_eq!(
            limits.admit(ip("10.0.0.3")).unwrap_err(),
            Refusal::Total { limit: 3 }
        );
        assert_eq!(limits.total(), 3);
        drop(a1);
        assert_eq!(limits.total(), 2);
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
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
        let limits = ConnectionLimits::new(10, 10);
        let permit = limits.admit(ip("10.0.0.1")).unwrap();
        drop(permit);
        assert!(limits.open().per_peer.is_empty());
    }
}
