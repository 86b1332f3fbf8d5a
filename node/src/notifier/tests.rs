use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use quorum_core::{
    BlockHeight, ChainId, CryptoHash, NodeError, Notification, NotificationKind, ReceivedEntry,
    StreamEvent, SubscriptionChange, SubscriptionLimit, ValidatorSecretKey, Write,
};
use rand::SeedableRng;

use super::{NotificationConfig, Notifier};

fn chain(byte: u8) -> ChainId {
    ChainId(CryptoHash([byte; 32]))
}

fn notifier(config: NotificationConfig) -> (Arc<Notifier>, ValidatorSecretKey) {
    let key = ValidatorSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
    (Arc::new(Notifier::new(Some(key.clone()), config)), key)
}

fn bundle(to: u8, height: u64) -> Notification {
    Notification {
        chain_id: chain(to),
        kind: NotificationKind::NewIncomingBundle {
            origin: chain(99),
            height: BlockHeight(height),
        },
    }
}

#[tokio::test]
async fn a_subscriber_gets_its_chains_signed_and_numbered() {
    let (notifier, key) = notifier(NotificationConfig::default());
    let mut subscription = notifier.subscribe(vec![chain(1)]).unwrap();
    notifier.publish(vec![bundle(2, 0), bundle(1, 3), bundle(1, 4)]);
    for (sequence, height) in [(0, 3), (1, 4)] {
        let envelope = subscription.events.next().await.unwrap();
        assert_eq!(envelope.sequence, sequence);
        let StreamEvent::Notification(signed) = envelope.event else {
            panic!("expected a notification, got {envelope:?}");
        };
        assert_eq!(signed.notification, bundle(1, height));
        signed.check(&key.public()).unwrap();
    }
    notifier.unsubscribe(subscription.id).unwrap();
    assert!(subscription.events.next().await.is_none(), "closed");
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_bounded_and_told_how_much_it_missed() {
    let config = NotificationConfig {
        queue_entries: 4,
        ..NotificationConfig::default()
    };
    let (notifier, _) = notifier(config);
    let mut subscription = notifier.subscribe(vec![chain(1)]).unwrap();
    notifier.publish((0..10).map(|h| bundle(1, h)).collect());
    {
        let registry = notifier.registry();
        let (subscriber, _) = &registry.subscribers[&subscription.id];
        let queue = subscriber.queue();
        assert_eq!(queue.events, 4);
        assert_eq!(queue.items.len(), 5, "four notifications and one marker");
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(subscription.events.next().await.unwrap());
    }
    assert!(seen.iter().enumerate().all(|(i, e)| e.sequence == i as u64));
    assert_eq!(seen[4].event, StreamEvent::Lagged { missed: 6 });
    // The stream goes on.
    notifier.publish(vec![bundle(1, 10)]);
    let next = subscription.events.next().await.unwrap();
    assert_eq!(next.sequence, 5);
    assert!(matches!(next.event, StreamEvent::Notification(_)));
}

#[tokio::test]
async fn the_caps_refuse_by_name_and_a_dropped_stream_frees_its_place() {
    let config = NotificationConfig {
        max_subscriptions: 2,
        max_chains_per_subscription: 3,
        max_chains: 4,
        ..NotificationConfig::default()
    };
    let (notifier, _) = notifier(config);
    let too_many = notifier.subscribe((1..=4).map(chain).collect());
    assert_eq!(
        too_many.unwrap_err(),
        NodeError::SubscriptionLimit(SubscriptionLimit::ChainsPerSubscription)
    );
    let first = notifier
        .subscribe(vec![chain(1), chain(2), chain(3)])
        .unwrap();
    let over_node = notifier.subscribe(vec![chain(4), chain(5)]);
    assert_eq!(
        over_node.unwrap_err(),
        NodeError::SubscriptionLimit(SubscriptionLimit::Chains)
    );
    let second = notifier.subscribe(vec![chain(4)]).unwrap();
    assert_eq!(
        notifier.subscribe(vec![]).unwrap_err(),
        NodeError::SubscriptionLimit(SubscriptionLimit::Subscriptions)
    );
    // Shrinking one makes room to extend the other.
    let grow = SubscriptionChange {
        add: vec![chain(5)],
        remove: vec![],
    };
    assert!(notifier.change(second.id, grow.clone()).is_err());
    let shrink = SubscriptionChange {
        add: vec![],
        remove: vec![chain(3)],
    };
    notifier.change(first.id, shrink).unwrap();
    assert_eq!(notifier.change(second.id, grow).unwrap(), 2);
    drop(first);
    assert_eq!(notifier.registry().subscribers.len(), 1);
    assert_eq!(notifier.registry().chains, 2);
    assert_eq!(
        notifier.unsubscribe(quorum_core::SubscriptionId(77)),
        Err(NodeError::UnknownSubscription(quorum_core::SubscriptionId(
            77
        )))
    );
}

#[tokio::test]
async fn only_followed_chains_are_announced() {
    let (notifier, _) = notifier(NotificationConfig::default());
    let entry = |origin: u8| ReceivedEntry {
        origin: chain(origin),
        height: BlockHeight(1),
    };
    let writes = vec![
        Write::ReceivedLog(chain(1), 0, entry(7)),
        Write::ReceivedLog(chain(2), 0, entry(8)),
    ];
    assert!(notifier.announcements(&writes).is_empty(), "nobody follows");
    let _subscription = notifier.subscribe(vec![chain(2)]).unwrap();
    let announced = notifier.announcements(&writes);
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].chain_id, chain(2));
}

#[test]
fn a_node_without_key_pushes_nothing() {
    let notifier = Arc::new(Notifier::new(None, NotificationConfig::default()));
    assert_eq!(
        notifier.subscribe(vec![chain(1)]).unwrap_err(),
        NodeError::NotificationsUnavailable
    );
}

#[tokio::test]
async fn the_queue_is_bounded_in_bytes_too() {
    let config = NotificationConfig {
        queue_entries: 1_000,
        queue_bytes: 3 * quorum_core::NotificationEnvelope::MAX_ENCODED_BYTES,
        ..NotificationConfig::default()
    };
    let (notifier, _) = notifier(config);
    let mut subscription = notifier.subscribe(vec![chain(1)]).unwrap();
    notifier.publish((0..50).map(|h| bundle(1, h)).collect());
    let mut bytes = 0;
    let mut events = Vec::new();
    while let Some(envelope) = subscription.events.next().now_or_never().flatten() {
        bytes += bcs::to_bytes(&envelope).unwrap().len();
        events.push(envelope.event);
    }
    assert_eq!(events.len(), 4, "three notifications and the marker");
    assert_eq!(events[3], StreamEvent::Lagged { missed: 47 });
    assert!(bytes <= 4 * quorum_core::NotificationEnvelope::MAX_ENCODED_BYTES);
}
