//! DESIGN §4.7.1, issue "validators push": one committed block's notification fanned out to
//! 1, 100 and 1,000 subscribers of its chain, beside its floor in the same run.
//!
//! * `ours_publish_and_deliver`: [`Notifier::publish`] (the notification signed once, queued
//!   for every subscription of the chain), then every subscriber's stream read once and the
//!   envelope encoded as a transport frames it (BCS).
//! * `floor_sign_once_encode_send`: what it cannot do with less: one ed25519 signature, then
//!   for each subscriber an envelope built and BCS-encoded and a send and receive on a channel.
//!
//! Throughput is in subscribers, so criterion reports the cost per subscriber.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use futures::{FutureExt, StreamExt};
use quorum_benches::settings;
use quorum_core::{
    BlockHeight, ChainId, CryptoHash, Notification, NotificationEnvelope, NotificationKind,
    SignedNotification, StreamEvent, Subscription, ValidatorSecretKey,
};
use quorum_node::{NotificationConfig, Notifier};
use quorum_testkit::must;
use rand::SeedableRng;

fn notification(height: u64) -> Notification {
    Notification {
        chain_id: ChainId(CryptoHash([1; 32])),
        kind: NotificationKind::NewBlock {
            height: BlockHeight(height),
            hash: CryptoHash([2; 32]),
        },
    }
}

/// Reads one envelope from each subscription and encodes it; returns the bytes encoded.
fn deliver(subscriptions: &mut [Subscription]) -> usize {
    let mut bytes = 0;
    for subscription in subscriptions {
        let envelope = subscription.events.next().now_or_never().flatten();
        let envelope = quorum_testkit::some(envelope, "a queued notification");
        bytes += must(bcs::to_bytes(&envelope), "encoding").len();
    }
    bytes
}

fn fan_out(c: &mut Criterion) {
    let key = ValidatorSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
    for subscribers in [1usize, 100, 1_000] {
        let notifier = Arc::new(Notifier::new(
            Some(key.clone()),
            NotificationConfig {
                max_subscriptions: subscribers,
                ..NotificationConfig::default()
            },
        ));
        let mut subscriptions: Vec<Subscription> = (0..subscribers)
            .map(|_| {
                must(
                    notifier.subscribe(vec![notification(0).chain_id]),
                    "subscribing",
                )
            })
            .collect();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();

        let mut group = c.benchmark_group(format!("notify_{subscribers}_subscribers"));
        settings::fast(&mut group);
        group.throughput(Throughput::Elements(subscribers as u64));
        let mut height = 0u64;
        group.bench_function("ours_publish_and_deliver", |b| {
            b.iter(|| {
                height += 1;
                notifier.publish(vec![notification(height)]);
                black_box(deliver(&mut subscriptions))
            })
        });
        group.bench_function("floor_sign_once_encode_send", |b| {
            b.iter(|| {
                height += 1;
                let signed = SignedNotification::new(notification(height), &key);
                let mut bytes = 0;
                for sequence in 0..subscribers as u64 {
                    let envelope = NotificationEnvelope {
                        sequence,
                        event: StreamEvent::Notification(signed),
                    };
                    let frame = must(bcs::to_bytes(&envelope), "encoding");
                    must(sender.send(frame).map_err(|_| "closed"), "sending");
                    bytes += receiver.try_recv().map_or(0, |frame| frame.len());
                }
                black_box(bytes)
            })
        });
        group.finish();
    }
}

fn main() {
    let mut criterion = settings::criterion();
    fan_out(&mut criterion);
    criterion.final_summary();
}
