//! What the streams of one connection hold (a stream is a request answered by many frames,
//! e.g. a subscription to notifications), counted against the caps of the connection and of
//! its address: [`Streams`], handed to [`Handler::handle_stream`](crate::Handler::handle_stream).
//!
//! A stream has a number of *items* (for a subscription, the chains it follows), which the
//! handler declares when it opens the stream and whenever it changes. Each count is capped per
//! connection and per address by a [`ServerConfig`] field; what would pass a cap is refused
//! naming it ([`StreamCap`]). A stream belongs to the connection that opened it: requests about
//! it from another connection find nothing ([`Streams::owns`]). When the connection ends,
//! whatever its streams held is given back to its address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::ServerConfig;

/// Which cap a stream would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamCap {
    /// [`ServerConfig::max_subscriptions_per_connection`].
    StreamsPerConnection,
    /// [`ServerConfig::max_subscriptions_per_address`].
    StreamsPerAddress,
    /// [`ServerConfig::max_subscribed_chains_per_connection`].
    ItemsPerConnection,
    /// [`ServerConfig::max_subscribed_chains_per_address`].
    ItemsPerAddress,
}

impl StreamCap {
    /// The cap's name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            StreamCap::StreamsPerConnection => "subscriptions_per_connection",
            StreamCap::StreamsPerAddress => "subscriptions_per_address",
            StreamCap::ItemsPerConnection => "chains_per_connection",
            StreamCap::ItemsPerAddress => "chains_per_address",
        }
    }
}

/// Streams and items held, in one scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    streams: usize,
    items: usize,
}

/// What all the connections of one address hold.
#[derive(Debug, Default)]
pub(crate) struct AddressStreams {
    held: Mutex<Held>,
}

impl AddressStreams {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The caps, from the server's configuration.
#[derive(Clone, Copy, Debug)]
struct Caps {
    streams_per_connection: usize,
    streams_per_address: usize,
    items_per_connection: usize,
    items_per_address: usize,
}

/// The streams of one connection (see the module's documentation).
#[derive(Debug)]
pub struct Streams {
    caps: Caps,
    address: Arc<AddressStreams>,
    /// Open streams by id, with their items; plus what is reserved and not yet opened.
    connection: Mutex<(HashMap<u64, usize>, Held)>,
}

impl Streams {
    pub(crate) fn new(config: &ServerConfig, address: Arc<AddressStreams>) -> Self {
        Streams {
            caps: Caps {
                streams_per_connection: config.max_subscriptions_per_connection,
                streams_per_address: config.max_subscriptions_per_address,
                items_per_connection: config.max_subscribed_chains_per_connection,
                items_per_address: config.max_subscribed_chains_per_address,
            },
            address,
            connection: Mutex::new((HashMap::new(), Held::default())),
        }
    }

    /// Streams that are not served by a server (for a handler called directly): no caps.
    pub fn unlimited() -> Self {
        Streams {
            caps: Caps {
                streams_per_connection: usize::MAX,
                streams_per_address: usize::MAX,
                items_per_connection: usize::MAX,
                items_per_address: usize::MAX,
            },
            address: Arc::new(AddressStreams::default()),
            connection: Mutex::new((HashMap::new(), Held::default())),
        }
    }

    fn connection(&self) -> MutexGuard<'_, (HashMap<u64, usize>, Held)> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes room for `streams` more streams and `items` more items on the connection and its
    /// address, or says which cap refuses them.
    fn take(&self, streams: usize, items: usize) -> Result<(), StreamCap> {
        let mut connection = self.connection();
        let mut address = self.address.held();
        let caps = self.caps;
        let held = &mut connection.1;
        if held.streams.saturating_add(streams) > caps.streams_per_connection {
            return Err(StreamCap::StreamsPerConnection);
        }
        if address.streams.saturating_add(streams) > caps.streams_per_address {
            return Err(StreamCap::StreamsPerAddress);
        }
        if held.items.saturating_add(items) > caps.items_per_connection {
            return Err(StreamCap::ItemsPerConnection);
        }
        if address.items.saturating_add(items) > caps.items_per_address {
            return Err(StreamCap::ItemsPerAddress);
        }
        held.streams += streams;
        held.items += items;
        address.streams += streams;
        address.items += items;
        Ok(())
    }

    /// Gives back `streams` streams and `items` items.
    fn give(&self, streams: usize, items: usize) {
        let mut connection = self.connection();
        let mut address = self.address.held();
        connection.1.streams = connection.1.streams.saturating_sub(streams);
        connection.1.items = connection.1.items.saturating_sub(items);
        address.streams = address.streams.saturating_sub(streams);
        address.items = address.items.saturating_sub(items);
    }

    /// Room for one stream of `items` items, held until the [`Reservation`] is bound to the
    /// stream's id ([`Reservation::open`]) or dropped.
    pub fn reserve(self: &Arc<Self>, items: usize) -> Result<Reservation, StreamCap> {
        self.take(1, items)?;
        Ok(Reservation {
            streams: Arc::clone(self),
            items,
            open: false,
        })
    }

    /// The items stream `id` holds, if this connection has it open.
    pub fn items(&self, id: u64) -> Option<usize> {
        self.connection().0.get(&id).copied()
    }

    /// Whether the stream `id` was opened on this connection and is not closed.
    pub fn owns(&self, id: u64) -> bool {
        self.connection().0.contains_key(&id)
    }

    /// Room for stream `id` to hold up to `items` items: taken if it grows (refused naming the
    /// cap it would pass), given back if it shrinks. `None` if this connection has no stream
    /// `id`.
    pub fn resize(&self, id: u64, items: usize) -> Option<Result<(), StreamCap>> {
        let current = *self.connection().0.get(&id)?;
        if items > current {
            if let Err(cap) = self.take(0, items - current) {
                return Some(Err(cap));
            }
        } else {
            self.give(0, current - items);
        }
        if let Some(held) = self.connection().0.get_mut(&id) {
            *held = items;
        }
        Some(Ok(()))
    }

    /// Closes stream `id`, giving back what it held. Whether it was open here.
    pub fn close(&self, id: u64) -> bool {
        let removed = self.connection().0.remove(&id);
        match removed {
            Some(items) => {
                self.give(1, items);
                true
            }
            None => false,
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        let held = self.connection().1;
        let mut address = self.address.held();
        address.streams = address.streams.saturating_sub(held.streams);
        address.items = address.items.saturating_sub(held.items);
    }
}

/// Room taken for a stream not yet opened ([`Streams::reserve`]).
#[derive(Debug)]
pub struct Reservation {
    streams: Arc<Streams>,
    items: usize,
    open: bool,
}

impl Reservation {
    /// The stream is open under `id`: it keeps the room until it is closed or the connection
    /// ends.
    pub fn open(mut self, id: u64) {
        self.open = true;
        let mut connection = self.streams.connection();
        if let Some(previous) = connection.0.insert(id, self.items) {
            // An id opened twice: keep one count of it.
            drop(connection);
            self.streams.give(1, previous);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.open {
            self.streams.give(1, self.items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            max_subscriptions_per_connection: 2,
            max_subscriptions_per_address: 3,
            max_subscribed_chains_per_connection: 10,
            max_subscribed_chains_per_address: 15,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn caps_hold_per_connection_and_per_address_and_are_given_back() {
        let address = Arc::new(AddressStreams::default());
        let one = Arc::new(Streams::new(&config(), Arc::clone(&address)));
        let two = Arc::new(Streams::new(&config(), Arc::clone(&address)));
        assert_eq!(one.reserve(11).unwrap_err(), StreamCap::ItemsPerConnection);
        one.reserve(6).unwrap().open(1);
        one.reserve(4).unwrap().open(2);
        assert_eq!(one.reserve(0).unwrap_err(), StreamCap::StreamsPerConnection);
        assert_eq!(two.reserve(6).unwrap_err(), StreamCap::ItemsPerAddress);
        let pending = two.reserve(5).unwrap();
        assert_eq!(two.reserve(0).unwrap_err(), StreamCap::StreamsPerAddress);
        drop(pending);
        two.reserve(5).unwrap().open(1);
        assert!(one.owns(1) && one.owns(2) && two.owns(1) && !two.owns(2));
        assert_eq!(one.resize(2, 5), Some(Err(StreamCap::ItemsPerConnection)));
        assert_eq!(one.resize(1, 1), Some(Ok(())));
        assert_eq!(one.resize(2, 9), Some(Ok(())));
        assert_eq!(one.resize(7, 1), None);
        assert!(one.close(2));
        assert!(!one.close(2));
        drop(one);
        assert_eq!(
            *address.held(),
            Held {
                streams: 1,
                items: 5
            }
        );
        drop(two);
        assert_eq!(*address.held(), Held::default());
    }
}
