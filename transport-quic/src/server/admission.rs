//! Which validated peers may open a connection: connections in all and per address, and
//! handshakes per second (a token bucket). Peers are counted only once a Retry proved their
//! address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

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
}

#[derive(Debug)]
struct State {
    open: usize,
    per_address: HashMap<IpAddr, usize>,
    tokens: f64,
    refilled: Instant,
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    address: IpAddr,
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
        if state.per_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            return Err(Refusal::ConnectionsPerAddress);
        }
        if state.tokens < 1.0 {
            return Err(Refusal::HandshakeRate);
        }
        state.tokens -= 1.0;
        state.open += 1;
        *state.per_address.entry(address).or_insert(0) += 1;
        Ok(Admitted {
            admission: self.clone(),
            address,
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
        state.open = state.open.saturating_sub(1);
        if let Some(count) = state.per_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_address.remove(&self.address);
            }
        }
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
