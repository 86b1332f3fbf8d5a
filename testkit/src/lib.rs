//! The workspace's shared test kit (DESIGN §2, §10): helpers that several crates' tests use,
//! kept out of the crates they test. Not published.
//!
//! For now it holds one thing:
//!
//! * [`proxy`]: a userspace TCP fault proxy ([`proxy::FaultProxy`]) that sits between a client
//!   and a server on loopback and, switchable at run time, forwards, delays, black-holes,
//!   resets, throttles or cuts their connections. It stands in for `netem` and `iptables`,
//!   which test machines may not have.

pub mod proxy;
