//! Listening (DESIGN §4.7.1, §5.8): a wallet follows its chains on what validators push, in
//! process and on a paused clock. Hints only trigger syncs; false signed hints mark their
//! validator Byzantine, while anything anyone on the path can do (forge, corrupt, replay,
//! reorder, drop) only makes the listener resubscribe and sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::FutureExt;
use futures::StreamExt;
use quorum_core::protocol::{dispatch, Carrier, Request, RequestKind, Response};
use quorum_core::{
    BlockHeight, ChainId, CryptoHash, NodeError, Notification, NotificationEnvelope,
    NotificationKind, ReceivedEntry, SignedNotification, StreamEvent, Subscription, ValidatorNode,
    ValidatorSecretKey,
};
use quorum_node::{MemoryStorage, NotificationConfig, Worker};
use quorum_testkit::{test_options, TokioTestNet};
use quorum_transport_mem::{Fault, NotificationFault};
use quorum_updater::{ChainClient, ListenEvent, Listener};
use tokio::time::Instant;

/// A read-only wallet of `chain` on a fresh local node, and a listener following it.
async fn listening(
    net: &TokioTestNet,
    chain: ChainId,
) -> (
    ChainClient<MemoryStorage>,
    Listener,
    BoxStream<'static, ListenEvent>,
) {
    let local = net.new_worker(None).await;
    let client = ChainClient::new(chain, None, local, net.validators.clone(), test_options());
    let (listener, events) = Listener::start(&client, [chain]).await.unwrap();
    (client, listener, events)
}

/// The next event matching `wanted` within `limit` of virtual time (others are skipped).
async fn wait_for(
    events: &mut BoxStream<'static, ListenEvent>,
    limit: Duration,
    wanted: impl Fn(&ListenEvent) -> bool,
) -> ListenEvent {
    let found = tokio::time::timeout(limit, async {
        loop {
            let event = events.next().await.expect("the listener is running");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await;
    found.expect("the event came in time")
}

/// Waits until every validator of the committee is subscribed.
async fn all_connected(events: &mut BoxStream<'static, ListenEvent>, validators: usize) {
    for _ in 0..validators {
        wait_for(events, Duration::from_secs(5), |e| {
            matches!(e, ListenEvent::Connected(_))
        })
        .await;
    }
}

fn received_from(origin: ChainId) -> impl Fn(&ListenEvent) -> bool {
    move |event| matches!(event, ListenEvent::Received { entry, .. } if entry.origin == origin)
}

#[tokio::test(start_paused = true)]
async fn a_hint_reaches_a_subscriber_within_one_round_trip_and_the_listener_takes_the_payment() {
    let net = TokioTestNet::new(4, 3, false).await;
    let round_trip = Duration::from_millis(20);
    for v in 0..4 {
        net.set_fault(v, Fault::Slow(round_trip / 2));
    }
    let (payee, sender) = (net.chains[2], net.chains[1]);
    let mut raw = net.nodes[0].subscribe(vec![payee]).await.unwrap();
    let (wallet, _listener, mut events) = listening(&net, payee).await;
    all_connected(&mut events, 4).await;

    let certificate = net.client(1).transfer(payee, 7).await.unwrap();
    let committed = Instant::now();
    let hint = tokio::time::timeout(round_trip, raw.events.next()).await;
    let hint = hint.expect("within one round trip").unwrap();
    let StreamEvent::Notification(signed) = hint.event else {
        panic!("expected a notification, got {hint:?}");
    };
    signed.check(&net.secrets[0].public()).unwrap();
    assert_eq!(
        signed.notification.kind,
        NotificationKind::NewIncomingBundle {
            origin: sender,
            height: certificate.value().block().height,
        }
    );

    wait_for(&mut events, Duration::from_secs(2), received_from(sender)).await;
    // A handful of round trips: the chain's sync, the received logs, the certificate.
    assert!(
        committed.elapsed() <= 10 * round_trip,
        "{:?}",
        committed.elapsed()
    );
    let entry = ReceivedEntry {
        origin: sender,
        height: certificate.value().block().height,
    };
    assert!(wallet.local().has_received(payee, &entry).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_does_not_read_is_bounded_lags_and_its_sync_fills_the_gap() {
    let queue_entries = 4;
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(3)
        .worker_config(move |config| quorum_node::WorkerConfig {
            notifications: NotificationConfig {
                queue_entries,
                ..NotificationConfig::default()
            },
            ..config
        })
        .build()
        .await;
    let (payee, sender) = (net.chains[2], net.chains[1]);
    // A raw subscriber that does not read while ten payments commit.
    let mut raw = net.workers[0].subscribe(vec![payee]).await.unwrap();
    // A listener whose validators deliver slowly: every queue overflows.
    for v in 0..4 {
        net.nodes[v]
            .handle()
            .set_notification_fault(NotificationFault::Delay(Duration::from_millis(500)));
    }
    let (wallet, _listener, mut events) = listening(&net, payee).await;
    all_connected(&mut events, 4).await;
    let payments = 10u64;
    let mut heights = Vec::new();
    for _ in 0..payments {
        let certificate = net.client(1).transfer(payee, 1).await.unwrap();
        heights.push(certificate.value().block().height);
    }

    let mut seen = Vec::new();
    for _ in 0..=queue_entries {
        seen.push(raw.events.next().await.unwrap());
    }
    assert!(seen.iter().zip(0u64..).all(|(e, i)| e.sequence == i));
    assert!(seen[..queue_entries]
        .iter()
        .all(|e| matches!(e.event, StreamEvent::Notification(_))));
    assert_eq!(
        seen[queue_entries].event,
        StreamEvent::Lagged {
            missed: payments - queue_entries as u64
        }
    );

    // The listener misses nothing: its syncs take in every payment.
    for height in heights {
        let entry = ReceivedEntry {
            origin: sender,
            height,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !wallet.local().has_received(payee, &entry).await.unwrap() {
            assert!(
                Instant::now() < deadline,
                "payment at {height:?} never taken in"
            );
            drop(tokio::time::timeout(Duration::from_millis(100), events.next()).await);
        }
    }
}

/// A validator node whose subscription streams are a script, then silence; requests go to
/// the honest node.
struct Scripted {
    honest: Arc<dyn ValidatorNode>,
    script: std::sync::Mutex<Vec<Vec<NotificationEnvelope>>>,
}

#[async_trait::async_trait]
impl Carrier for Scripted {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        Ok(dispatch(self.honest.as_ref(), request).await)
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let real = self.honest.subscribe(chains).await?;
        let script = {
            let mut scripts = self.script.lock().unwrap();
            if scripts.is_empty() {
                Vec::new()
            } else {
                scripts.remove(0)
            }
        };
        let events = futures::stream::iter(script).chain(futures::stream::pending());
        Ok(Subscription {
            id: real.id,
            events: Box::pin(events),
        })
    }
}

fn signed(key: &ValidatorSecretKey, chain_id: ChainId, kind: NotificationKind) -> StreamEvent {
    StreamEvent::Notification(SignedNotification::new(
        Notification { chain_id, kind },
        key,
    ))
}

#[tokio::test(start_paused = true)]
async fn notifications_that_are_not_the_validators_own_truth_never_change_a_wallet() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (payee, sender) = (net.chains[2], net.chains[1]);
    let key = &net.secrets[0];
    let other = &net.secrets[1];
    let bundle = NotificationKind::NewIncomingBundle {
        origin: sender,
        height: BlockHeight(0),
    };
    let block = NotificationKind::NewBlock {
        height: BlockHeight(0),
        hash: CryptoHash([7; 32]),
    };
    let envelope = |sequence, event| NotificationEnvelope { sequence, event };
    let mut unsigned = SignedNotification::new(
        Notification {
            chain_id: payee,
            kind: bundle,
        },
        key,
    );
    unsigned.signature = quorum_core::Signature::from_bytes(&[0; 64]);
    let scripts = vec![
        // Signed by another validator of the committee.
        vec![envelope(0, signed(other, payee, bundle))],
        // Signed by no one.
        vec![envelope(0, StreamEvent::Notification(unsigned))],
        // Its own signature over another notification.
        vec![envelope(0, {
            let mut s = SignedNotification::new(
                Notification {
                    chain_id: payee,
                    kind: block,
                },
                key,
            );
            s.notification.kind = bundle;
            StreamEvent::Notification(s)
        })],
        // Out of order, then replayed.
        vec![envelope(1, signed(other, payee, block))],
        vec![
            envelope(0, StreamEvent::Lagged { missed: 1 }),
            envelope(0, StreamEvent::Lagged { missed: 1 }),
        ],
    ];
    let script_count = scripts.len();
    let scripted = Arc::new(Scripted {
        honest: Arc::new(net.nodes[0].clone()),
        script: std::sync::Mutex::new(scripts),
    });
    net.validators.insert(key.public(), scripted);
    let (wallet, _listener, mut events) = listening(&net, payee).await;
    let before = wallet.local().chain_state(payee).await.unwrap();

    let mut reconnections = 0;
    while reconnections < script_count {
        let event = wait_for(&mut events, Duration::from_secs(60), |_| true).await;
        assert!(
            !matches!(
                event,
                ListenEvent::Received { .. } | ListenEvent::NewBlock { .. }
            ),
            "nothing happened on the chain, yet {event:?}"
        );
        if matches!(event, ListenEvent::Disconnected { validator, .. } if validator == key.public())
        {
            reconnections += 1;
        }
    }
    let after = wallet.local().chain_state(payee).await.unwrap();
    assert_eq!(after, before, "the wallet is unchanged");
    assert!(!net.validators.health(&key.public()).is_byzantine());
    assert!(!net.validators.health(&other.public()).is_byzantine());
}

#[tokio::test(start_paused = true)]
async fn a_validator_signing_false_hints_is_marked_byzantine_and_replays_by_others_are_not() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (payee, sender) = (net.chains[2], net.chains[1]);
    net.nodes[0]
        .handle()
        .set_notification_fault(NotificationFault::Lie);
    net.nodes[1]
        .handle()
        .set_notification_fault(NotificationFault::Replay);
    let (wallet, _listener, mut events) = listening(&net, payee).await;
    all_connected(&mut events, 4).await;
    net.client(1).transfer(payee, 5).await.unwrap();

    let liar = net.secrets[0].public();
    let event = wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, ListenEvent::FalseHint { .. })
    })
    .await;
    assert!(matches!(event, ListenEvent::FalseHint { validator, .. } if validator == liar));
    for _ in 0..3 {
        net.client(1).transfer(payee, 5).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    while events.next().now_or_never().flatten().is_some() {}
    assert!(net.validators.health(&liar).is_byzantine());
    for v in 1..4 {
        assert!(
            !net.validators
                .health(&net.secrets[v].public())
                .is_byzantine(),
            "validator {v} is honest (validator 1's notifications were replayed on the way)"
        );
    }
    // Every payment taken in once.
    let state = wallet.local().chain_state(payee).await.unwrap();
    assert_eq!(state.received_log_len(), 4);
    let _ = sender;
}

#[tokio::test(start_paused = true)]
async fn one_hung_validator_does_not_delay_the_others_notifications() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (payee, sender) = (net.chains[2], net.chains[1]);
    net.set_fault(0, Fault::Hang);
    let (_wallet, _listener, mut events) = listening(&net, payee).await;
    all_connected(&mut events, 3).await;
    net.client(1).transfer(payee, 3).await.unwrap();
    let started = Instant::now();
    wait_for(&mut events, Duration::from_secs(1), received_from(sender)).await;
    // The hung validator's subscription would time out only after the request timeout.
    assert!(started.elapsed() < test_options().request_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_wallet_following_a_thousand_chains_holds_one_subscription_per_validator() {
    let net = TokioTestNet::new(4, 3, false).await;
    let chains: Vec<ChainId> = (0..1_000u32)
        .map(|i| {
            let mut bytes = [0; 32];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            bytes[31] = 0xee;
            ChainId(CryptoHash(bytes))
        })
        .chain([net.chains[2]])
        .collect();
    let local = net.new_worker(None).await;
    let client: ChainClient<MemoryStorage> = ChainClient::new(
        net.chains[2],
        None,
        local,
        net.validators.clone(),
        test_options(),
    );
    let (listener, mut events) = Listener::start(&client, chains.clone()).await.unwrap();
    all_connected(&mut events, 4).await;
    for v in 0..4 {
        assert_eq!(net.workers[v].subscriptions(), 1, "validator {v}");
        assert_eq!(net.nodes[v].stats().calls(RequestKind::Subscribe), 1);
    }
    // Following one more chain changes the subscriptions, it opens none.
    listener.follow(net.chains[1]);
    net.client(0).transfer(net.chains[1], 1).await.unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, ListenEvent::NewBlock { chain_id, .. } if *chain_id == net.chains[0] || *chain_id == net.chains[1])
            || matches!(e, ListenEvent::Received { .. })
    })
    .await;
    for v in 0..4 {
        assert_eq!(net.workers[v].subscriptions(), 1);
        assert_eq!(net.nodes[v].stats().calls(RequestKind::Subscribe), 1);
        assert_eq!(
            net.nodes[v].stats().calls(RequestKind::ChangeSubscription),
            1
        );
    }
    drop(listener);
    let _: Arc<Worker<MemoryStorage>> = net.workers[0].clone();
}

#[tokio::test(start_paused = true)]
async fn a_listener_subscribes_to_the_members_of_a_new_epoch() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (payee, sender) = (net.chains[2], net.chains[1]);
    let (wallet, _listener, mut events) = listening(&net, payee).await;
    all_connected(&mut events, 4).await;

    // Validator 3 leaves; a newcomer joins; the payee's chain moves to epoch 1.
    let newcomer = quorum_testkit::validator_keys(1, 777).remove(0);
    let mut members: Vec<_> = net.secrets[..3].to_vec();
    members.push(newcomer.clone());
    let worker = net.new_worker(Some(newcomer.clone())).await;
    let node = quorum_transport_mem::MemoryNode::new(
        worker.clone() as Arc<dyn ValidatorNode>,
        Some(newcomer.clone()),
        50,
    );
    net.validators.insert(newcomer.public(), Arc::new(node));
    let admin = net.client(0);
    admin
        .create_committee(quorum_testkit::committee_of(&members))
        .await
        .unwrap();
    let owner = admin.for_chain(payee, Some(net.owners[2].clone()));
    owner
        .process_new_epoch(quorum_core::Epoch(1))
        .await
        .unwrap();

    let connected = wait_for(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, ListenEvent::Connected(key) if *key == newcomer.public()),
    )
    .await;
    assert_eq!(connected, ListenEvent::Connected(newcomer.public()));
    assert_eq!(worker.subscriptions(), 1);
    // Payments in the new epoch are still found.
    net.client(1).transfer(payee, 2).await.unwrap();
    wait_for(&mut events, Duration::from_secs(5), received_from(sender)).await;
    assert_eq!(
        wallet.local().chain_state(payee).await.unwrap().epoch(),
        quorum_core::Epoch(1)
    );
}

/// A validator whose every subscription ends at once.
struct Flapping {
    honest: Arc<dyn ValidatorNode>,
    subscriptions: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Carrier for Flapping {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        Ok(dispatch(self.honest.as_ref(), request).await)
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.subscriptions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let real = self.honest.subscribe(chains).await?;
        Ok(Subscription {
            id: real.id,
            events: Box::pin(futures::stream::empty()),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_validator_that_keeps_ending_subscriptions_meets_the_circuit_breaker() {
    let net = TokioTestNet::new(4, 3, false).await;
    let flapping = Arc::new(Flapping {
        honest: Arc::new(net.nodes[0].clone()),
        subscriptions: std::sync::atomic::AtomicUsize::new(0),
    });
    net.validators.insert(
        net.secrets[0].public(),
        Arc::clone(&flapping) as Arc<dyn ValidatorNode>,
    );
    let (_wallet, _listener, mut events) = listening(&net, net.chains[2]).await;
    let minute = Duration::from_secs(60);
    let started = Instant::now();
    while started.elapsed() < minute {
        drop(tokio::time::timeout(minute, events.next()).await);
    }
    let attempts = flapping
        .subscriptions
        .load(std::sync::atomic::Ordering::SeqCst);
    // Five quick attempts, then one per 30 s cooldown: not one every 100 ms.
    assert!(
        (5..=10).contains(&attempts),
        "{attempts} subscriptions in a minute"
    );
}
