//! Checks of the stream form of the protocol: subscriptions and their notifications (DESIGN
//! §4.7.1).

use futures::StreamExt;
use quorum_core::{
    ChainId, NodeError, NotificationEnvelope, NotificationKind, StreamEvent, Subscription,
    SubscriptionChange, SubscriptionId, ValidatorNode,
};

use super::{Connector, Pair};
use crate::must::{must, some};

/// The next envelope of `subscription`, which must come within a second.
async fn next(subscription: &mut Subscription, what: &str) -> NotificationEnvelope {
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        subscription.events.next(),
    )
    .await;
    some(must(next.map_err(|_| "timed out"), what), what)
}

/// Subscriptions: each committed block of a followed chain is pushed once, signed by the
/// validator and numbered from 0, exactly as the Worker pushes it; changing the chains
/// followed and closing the subscription work through the transport, and an unknown
/// subscription is refused alike.
pub async fn check_notifications(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let validator = v.public_key();
    let (one, two) = (v.chain_id(1), v.chain_id(2));
    let mut direct = must(pair.direct.worker.subscribe(vec![one]).await, "subscribe");
    let mut remote = must(
        pair.remote.subscribe(vec![one]).await,
        "subscribe (transport)",
    );
    assert_eq!(
        remote.id, direct.id,
        "subscribe: the same id through the transport"
    );

    let history = v.history(1, 3);
    pair.commit_history(&history).await;
    for (sequence, certificate) in (0u64..).zip(&history) {
        let expected = next(&mut direct, "a notification of the Worker").await;
        let pushed = next(&mut remote, "a notification through the transport").await;
        assert_eq!(pushed, expected, "a notification through the transport");
        assert_eq!(
            pushed.sequence, sequence,
            "notifications are numbered from 0"
        );
        let StreamEvent::Notification(signed) = pushed.event else {
            panic!("expected a notification, got {pushed:?}");
        };
        must(signed.check(&validator), "the notification's signature");
        let block = certificate.value().block();
        assert_eq!(signed.notification.chain_id, one);
        assert_eq!(
            signed.notification.kind,
            NotificationKind::NewBlock {
                height: block.height,
                hash: certificate.hash(),
            }
        );
    }

    let change = || SubscriptionChange {
        add: vec![two, two],
        remove: vec![one, ChainId(quorum_core::CryptoHash([9; 32]))],
    };
    let changed_direct = pair.direct.worker.change_subscription(direct.id, change());
    let changed_remote = pair.remote.change_subscription(remote.id, change());
    assert_eq!(
        changed_remote.await,
        changed_direct.await,
        "change_subscription"
    );
    pair.commit_history(&v.history(2, 1)).await;
    let expected = next(&mut direct, "a notification of the added chain").await;
    let pushed = next(&mut remote, "a notification of the added chain (transport)").await;
    assert_eq!(pushed, expected);
    assert_eq!(pushed.sequence, 3, "the numbering goes on");

    let unknown = SubscriptionId(u64::MAX);
    let refused = pair.remote.unsubscribe(unknown).await;
    assert_eq!(
        refused,
        Err(NodeError::UnknownSubscription(unknown)),
        "unsubscribe (unknown)"
    );
    must(pair.remote.unsubscribe(remote.id).await, "unsubscribe");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(1), remote.events.next()).await;
    assert!(
        matches!(ended, Ok(None)),
        "the stream ends once unsubscribed, got {ended:?}"
    );
    must(
        pair.direct.worker.unsubscribe(direct.id).await,
        "unsubscribe",
    );
}
