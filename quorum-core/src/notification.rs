//! Notifications a validator pushes to its subscribers (DESIGN §4.7.1).
//!
//! A [`Notification`] says that something durable happened on a chain at this validator: a
//! block was committed, a bundle reached the chain's inbox, or the chain's round changed. The
//! validator signs each notification once ([`SignedNotification`]), whatever the number of
//! subscribers; each subscriber receives it in a [`NotificationEnvelope`] whose `sequence`
//! counts the envelopes of that subscription from 0. The envelope is not signed (one
//! signature serves everyone), so anyone on the path can alter or replay it: a subscriber
//! checks the sequence with a [`SequenceCheck`] and treats a gap, a replay or an order it did
//! not expect as a reason to resubscribe and synchronize, never as evidence against the
//! validator.
//!
//! A notification is a hint: a client changes nothing because of its content alone. It
//! synchronizes from the validators, which downloads and verifies certificates. A *signed*
//! hint that turns out false (a block the validator does not have, a bundle the sender's
//! certificate does not carry) is evidence against the signer, because an honest validator
//! only announces what it has durably written and never forgets it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::pin::Pin;

use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, Signature, ValidatorPublicKey, ValidatorSecretKey};
use crate::hash::{BcsHashable, CryptoHash};
use crate::round::Round;
use crate::{BlockHeight, ChainId};

/// Names one subscription at the node that opened it (unique among the node's subscriptions
/// for as long as the node runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubscriptionId(pub u64);

/// What happened on a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    /// The block of this height and hash is committed (its certificate is stored).
    NewBlock {
        /// The block's height.
        height: BlockHeight,
        /// The hash of the block's certified value (the confirmed certificate's hash).
        hash: CryptoHash,
    },
    /// A bundle sent by `origin`'s block at `height` reached the chain's inbox (an entry of
    /// the chain's received log, DESIGN §4.2.1).
    NewIncomingBundle {
        /// The sending chain.
        origin: ChainId,
        /// The height of the sending block.
        height: BlockHeight,
    },
    /// The chain moved to `round` at `height` (a timeout certificate was taken in).
    NewRound {
        /// The chain's next block height.
        height: BlockHeight,
        /// The round the chain is now in.
        round: Round,
    },
}

impl NotificationKind {
    /// A short name for logs and metric labels: `new_block`, `new_incoming_bundle`,
    /// `new_round`.
    pub fn name(&self) -> &'static str {
        match self {
            NotificationKind::NewBlock { .. } => "new_block",
            NotificationKind::NewIncomingBundle { .. } => "new_incoming_bundle",
            NotificationKind::NewRound { .. } => "new_round",
        }
    }
}

/// Something that happened on one chain at the validator that announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Notification {
    /// The chain it happened on.
    pub chain_id: ChainId,
    /// What happened.
    pub kind: NotificationKind,
}

impl BcsHashable for Notification {
    const DOMAIN: &'static str = "Notification";
}

/// A [`Notification`] with the announcing validator's signature over it. The validator is
/// the one the subscription was opened with; the signature names no one else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedNotification {
    /// What is announced.
    pub notification: Notification,
    /// The validator's signature over [`CryptoHash::new`] of `notification`.
    pub signature: Signature,
}

impl SignedNotification {
    /// Signs `notification` with `key`.
    pub fn new(notification: Notification, key: &ValidatorSecretKey) -> Self {
        SignedNotification {
            signature: key.sign(&notification),
            notification,
        }
    }

    /// Checks that `validator` signed the notification.
    pub fn check(&self, validator: &ValidatorPublicKey) -> Result<(), CryptoError> {
        validator.verify(&self.notification, &self.signature)
    }
}

/// One item of a subscription's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamEvent {
    /// A notification about one of the subscribed chains.
    Notification(SignedNotification),
    /// The subscriber did not keep up: its queue at the node was full and `missed`
    /// notifications were dropped since the previous event. The stream goes on; the
    /// subscriber should synchronize its chains.
    Lagged {
        /// How many notifications were dropped.
        missed: u64,
    },
}

/// What a subscriber receives: an event with its place in the subscription's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEnvelope {
    /// The envelope's number in its subscription, from 0, one more for each envelope (lagged
    /// markers included). Not signed: checked by the subscriber ([`SequenceCheck`]).
    pub sequence: u64,
    /// The event.
    pub event: StreamEvent,
}

impl NotificationEnvelope {
    /// Encoded size in BCS of an envelope holding a notification, at most, in bytes: what a
    /// node's queue charges per entry. (A lagged marker is smaller.)
    pub const MAX_ENCODED_BYTES: usize = 8 + 1 + 32 + 1 + 32 + 32 + 64;
}

/// The events a node pushes for one subscription, in order. It ends when the subscription is
/// closed (unsubscribed, or the connection carrying it is gone).
pub type NotificationStream = Pin<Box<dyn Stream<Item = NotificationEnvelope> + Send>>;

/// An open subscription: its id (to change its chains or close it) and its stream. Dropping
/// the stream closes the subscription at the node (for a remote node, once the transport
/// notices; [`ValidatorNode::unsubscribe`](crate::ValidatorNode::unsubscribe) closes it at
/// once).
pub struct Subscription {
    /// The subscription's id at the node.
    pub id: SubscriptionId,
    /// What the node pushes.
    pub events: NotificationStream,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A change of a subscription's chains: `add` are followed from now on, `remove` no longer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChange {
    /// Chains to add.
    pub add: Vec<ChainId>,
    /// Chains to remove.
    pub remove: Vec<ChainId>,
}

/// What a subscriber makes of an envelope's sequence number ([`SequenceCheck::observe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// The one expected next.
    InOrder,
    /// Later than expected: `missing` envelopes never arrived.
    Gap {
        /// How many were skipped.
        missing: u64,
    },
    /// Not later than one already seen: a replay, or a reordering on the way.
    Stale,
}

/// Follows one subscription's sequence numbers: the first envelope must be number 0, each
/// next one number one more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceCheck {
    next: u64,
}

impl SequenceCheck {
    /// A check expecting envelope 0.
    pub fn new() -> Self {
        SequenceCheck::default()
    }

    /// The number expected next.
    pub fn expected(&self) -> u64 {
        self.next
    }

    /// Judges `sequence` and, unless it is stale, moves past it.
    pub fn observe(&mut self, sequence: u64) -> SequenceVerdict {
        if sequence < self.next {
            return SequenceVerdict::Stale;
        }
        let missing = sequence - self.next;
        self.next = sequence.saturating_add(1);
        if missing == 0 {
            SequenceVerdict::InOrder
        } else {
            SequenceVerdict::Gap { missing }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn notification() -> Notification {
        Notification {
            chain_id: ChainId(CryptoHash([3; 32])),
            kind: NotificationKind::NewBlock {
                height: BlockHeight(7),
                hash: CryptoHash([9; 32]),
            },
        }
    }

    #[test]
    fn a_signed_notification_checks_only_under_its_signer_and_content() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let key = ValidatorSecretKey::generate(&mut rng);
        let other = ValidatorSecretKey::generate(&mut rng);
        let signed = SignedNotification::new(notification(), &key);
        assert!(signed.check(&key.public()).is_ok());
        assert!(signed.check(&other.public()).is_err());
        let mut altered = signed;
        altered.notification.kind = NotificationKind::NewBlock {
            height: BlockHeight(8),
            hash: CryptoHash([9; 32]),
        };
        assert!(altered.check(&key.public()).is_err());
    }

    #[test]
    fn an_envelope_fits_its_stated_size() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let key = ValidatorSecretKey::generate(&mut rng);
        for kind in [
            NotificationKind::NewBlock {
                height: BlockHeight(u64::MAX),
                hash: CryptoHash([1; 32]),
            },
            NotificationKind::NewIncomingBundle {
                origin: ChainId(CryptoHash([2; 32])),
                height: BlockHeight(u64::MAX),
            },
            NotificationKind::NewRound {
                height: BlockHeight(u64::MAX),
                round: Round::SingleLeader(u32::MAX),
            },
        ] {
            let notification = Notification {
                chain_id: ChainId(CryptoHash([4; 32])),
                kind,
            };
            let envelope = NotificationEnvelope {
                sequence: u64::MAX,
                event: StreamEvent::Notification(SignedNotification::new(notification, &key)),
            };
            let bytes = crate::encoding::to_bytes(&envelope).unwrap();
            assert!(
                bytes.len() <= NotificationEnvelope::MAX_ENCODED_BYTES,
                "{kind:?}"
            );
        }
    }

    proptest! {
        /// Whatever arrives, in-order envelopes advance by one, gaps say how many were
        /// skipped, and nothing at or below a number already seen is ever in order.
        #[test]
        fn sequences_are_judged_against_the_highest_seen(seqs in proptest::collection::vec(0u64..64, 0..40)) {
            let mut check = SequenceCheck::new();
            let mut highest: Option<u64> = None;
            for seq in seqs {
                let verdict = check.observe(seq);
                let expected = highest.map_or(0, |h| h + 1);
                match verdict {
                    SequenceVerdict::InOrder => prop_assert_eq!(seq, expected),
                    SequenceVerdict::Gap { missing } => prop_assert_eq!(seq, expected + missing),
                    SequenceVerdict::Stale => prop_assert!(highest.is_some_and(|h| seq <= h)),
                }
                if verdict != SequenceVerdict::Stale {
                    highest = Some(seq);
                }
                prop_assert_eq!(check.expected(), highest.map_or(0, |h| h + 1));
            }
        }
    }
}
