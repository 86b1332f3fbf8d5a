//! The client as a wallet (DESIGN §4.2.1, §5.8): payments found from the received log whoever
//! sent them, chains followed by id, syncs across epochs, closed chains. Each wallet has a
//! local node of its own that knows only the genesis, as a second user's would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::{
    AccountSecretKey, BlockHeight, ChainId, Epoch, ExecutionError, NodeError, ReceivedEntry,
    ValidatorNode,
};
use quorum_node::{MemoryStorage, Worker};
use quorum_testkit::{test_consensus, test_options, TokioTestNet};
use quorum_transport_mem::Fault;
use quorum_updater::{ChainClient, ChainClientError};
use rand::SeedableRng;

#[path = "wallet/log_liar.rs"]
mod log_liar;

use log_liar::{Lie, LogLiar};

/// A wallet of chain `chain` (owned by `owner`) on a local node of its own, fresh from the
/// genesis: it has never heard of any other chain's blocks.
async fn wallet(
    net: &TokioTestNet,
    chain: ChainId,
    owner: Option<AccountSecretKey>,
) -> (ChainClient<MemoryStorage>, Arc<Worker<MemoryStorage>>) {
    let local = net.new_worker(None).await;
    let client = ChainClient::new(
        chain,
        owner,
        local.clone(),
        net.validators.clone(),
        test_options(),
    );
    (client, local)
}

/// Replaces validator `v` by a [`LogLiar`] around its fault-injecting node.
fn lying(net: &TokioTestNet, v: usize, lie: Lie) {
    net.validators.insert(
        net.secrets[v].public(),
        Arc::new(LogLiar {
            honest: Arc::new(net.nodes[v].clone()) as Arc<dyn ValidatorNode>,
            key: net.secrets[v].clone(),
            lie,
        }),
    );
}

fn entry(origin: ChainId, height: u64) -> ReceivedEntry {
    ReceivedEntry {
        origin,
        height: BlockHeight(height),
    }
}

#[tokio::test(start_paused = true)]
async fn a_payment_from_a_sender_the_wallet_never_heard_of_is_found_and_received() {
    let net = TokioTestNet::new(4, 3, false).await;
    net.client(1).transfer(net.chains[2], 7).await.unwrap();
    net.settle().await;
    let (wallet, local) = wallet(&net, net.chains[2], Some(net.owners[2].clone())).await;
    let before = wallet.local_balance().await.unwrap();

    wallet.synchronize_from_validators().await.unwrap();
    // Only the payment was taken from the sender: its chain is still at genesis locally.
    assert_eq!(
        local
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .next_height(),
        BlockHeight(0)
    );
    assert!(local
        .has_received(net.chains[2], &entry(net.chains[1], 0))
        .await
        .unwrap());
    let certificate = wallet.receive_messages().await.unwrap();
    assert_eq!(certificate.value().block().incoming_bundles.len(), 1);
    assert_eq!(wallet.local_balance().await.unwrap(), before + 7);
    net.settle().await;
    for v in 0..4 {
        let state = net.workers[v].chain_state(net.chains[2]).await.unwrap();
        assert_eq!(state.balance(), before + 7, "validator {v}");
    }
    // A second sync finds nothing new: the cursors moved on.
    let again = wallet
        .synchronize_received_log(net.chains[2])
        .await
        .unwrap();
    assert!(again.received.is_empty() && again.pending.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_withholding_validator_and_a_lagging_one_cannot_hide_a_payment() {
    let net = TokioTestNet::new(4, 3, false).await;
    // Validator 3 misses the payment.
    net.set_fault(3, Fault::Offline);
    net.client(1).transfer(net.chains[2], 5).await.unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    let lagging = net.workers[3].chain_state(net.chains[2]).await.unwrap();
    assert_eq!(lagging.received_log_len(), 0, "validator 3 lags");
    // Validator 0 withholds its log; both answer at once, the up-to-date two only later: the
    // first quorum of answers holds just one log with the entry.
    lying(&net, 0, Lie::Withhold);
    net.set_fault(1, Fault::Slow(Duration::from_millis(50)));
    net.set_fault(2, Fault::Slow(Duration::from_millis(50)));

    let (wallet, _) = wallet(&net, net.chains[2], Some(net.owners[2].clone())).await;
    let before = wallet.local_balance().await.unwrap();
    let sync = wallet
        .synchronize_received_log(net.chains[2])
        .await
        .unwrap();
    assert_eq!(sync.received, vec![entry(net.chains[1], 0)]);
    net.set_fault(1, Fault::Honest);
    net.set_fault(2, Fault::Honest);
    wallet.receive_messages().await.unwrap();
    assert_eq!(wallet.local_balance().await.unwrap(), before + 5);
}

#[tokio::test(start_paused = true)]
async fn invented_and_misattributed_entries_change_nothing() {
    let net = TokioTestNet::new(4, 3, false).await;
    let payer = net.client(1);
    // Height 0 pays the admin chain, height 1 pays chain 2.
    payer.transfer(net.chains[0], 3).await.unwrap();
    payer.transfer(net.chains[2], 4).await.unwrap();
    net.settle().await;
    let invented = entry(net.chains[1], 9);
    let misattributed = entry(net.chains[1], 0);
    lying(&net, 0, Lie::Invent(vec![invented, misattributed]));

    let (wallet, local) = wallet(&net, net.chains[2], Some(net.owners[2].clone())).await;
    let before = wallet.local_balance().await.unwrap();
    let sync = wallet
        .synchronize_received_log(net.chains[2])
        .await
        .unwrap();
    assert_eq!(sync.received, vec![entry(net.chains[1], 1)]);
    assert_eq!(sync.refuted, vec![misattributed, invented]);
    assert!(sync.pending.is_empty());
    let inbox = local.chain_state(net.chains[2]).await.unwrap();
    let bundles: Vec<_> = inbox.inboxes()[&net.chains[1]]
        .bundles()
        .keys()
        .copied()
        .collect();
    assert_eq!(bundles, vec![BlockHeight(1)], "only the real payment");
    let remotes = net.validators.remotes(&net.committee);
    for remote in &remotes {
        let expected = u64::from(remote.public_key == net.secrets[0].public()) * 2;
        assert_eq!(
            remote.health.snapshot().violations(),
            expected,
            "{:?}",
            remote.public_key
        );
    }
    wallet.receive_messages().await.unwrap();
    assert_eq!(wallet.local_balance().await.unwrap(), before + 4);
    // The liar's entries are settled: a second sync asks nothing of them again.
    let again = wallet
        .synchronize_received_log(net.chains[2])
        .await
        .unwrap();
    assert!(again.refuted.is_empty() && again.received.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_certificate_its_only_namer_hides_is_fetched_from_the_others() {
    let net = TokioTestNet::new(4, 3, false).await;
    net.set_fault(3, Fault::Offline);
    net.client(1).transfer(net.chains[2], 6).await.unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    // Only validator 0 names the payment, and then will not serve its certificate.
    lying(&net, 0, Lie::HideCertificates);
    lying(&net, 1, Lie::Withhold);
    lying(&net, 2, Lie::Withhold);

    let (wallet, _) = wallet(&net, net.chains[2], Some(net.owners[2].clone())).await;
    let sync = wallet
        .synchronize_received_log(net.chains[2])
        .await
        .unwrap();
    assert_eq!(sync.received, vec![entry(net.chains[1], 0)]);
    let violations = |v: usize| {
        net.validators
            .health(&net.secrets[v].public())
            .snapshot()
            .violations()
    };
    assert_eq!(violations(0), 1, "it named an entry it would not back");
    for v in 1..4 {
        assert_eq!(violations(v), 0, "validator {v} named nothing");
    }
}

#[tokio::test(start_paused = true)]
async fn a_fresh_wallet_follows_a_chain_opened_by_another_and_spends_from_it() {
    let net = TokioTestNet::new(4, 3, false).await;
    let owner = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(41));
    let opener = net.client(1);
    let (child, _) = opener
        .open_chain(owner.public(), test_consensus())
        .await
        .unwrap();
    opener.transfer(child, 10).await.unwrap();
    net.settle().await;

    let (wallet, local) = wallet(&net, child, Some(owner)).await;
    assert!(!local.chain_state(child).await.unwrap().is_active());
    wallet.synchronize_from_validators().await.unwrap();
    assert!(local.chain_state(child).await.unwrap().is_active());
    wallet.receive_messages().await.unwrap();
    assert_eq!(wallet.local_balance().await.unwrap(), 10);
    wallet.transfer(net.chains[2], 4).await.unwrap();
    assert_eq!(wallet.local_balance().await.unwrap(), 6);
    net.settle().await;
    for v in 0..4 {
        let state = net.workers[v].chain_state(child).await.unwrap();
        assert_eq!(state.balance(), 6, "validator {v}");
        assert_eq!(state.next_height(), BlockHeight(2), "validator {v}");
    }
}

/// Issue 28, row 7: a chain whose block consumed a bundle from a chain the wallet never saw
/// is synchronized; the local node takes that bundle from the sending block's certificate,
/// without the sender's history.
#[tokio::test(start_paused = true)]
async fn a_sync_takes_in_the_bundles_a_downloaded_block_consumed() {
    let net = TokioTestNet::new(4, 3, false).await;
    let payer = net.client(1);
    payer.transfer(net.chains[0], 1).await.unwrap();
    payer.transfer(net.chains[2], 4).await.unwrap();
    let payee = payer.for_chain(net.chains[2], Some(net.owners[2].clone()));
    payee.receive_messages().await.unwrap();
    net.settle().await;

    let (reader, local) = wallet(&net, net.chains[0], None).await;
    reader.synchronize_chain(net.chains[2]).await.unwrap();
    let synced = local.chain_state(net.chains[2]).await.unwrap();
    assert_eq!(synced.next_height(), BlockHeight(1));
    assert_eq!(
        synced.balance(),
        net.workers[0]
            .chain_state(net.chains[2])
            .await
            .unwrap()
            .balance()
    );
    let sender = local.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(
        sender.next_height(),
        BlockHeight(0),
        "the sender's history is not downloaded"
    );
}

#[tokio::test(start_paused = true)]
async fn following_a_chain_nobody_knows_says_so() {
    let net = TokioTestNet::new(4, 2, false).await;
    let unknown = ChainId(quorum_core::CryptoHash([9; 32]));
    let (wallet, _) = wallet(&net, unknown, None).await;
    match wallet.synchronize_from_validators().await.unwrap_err() {
        ChainClientError::UnknownChain(chain) => assert_eq!(chain, unknown),
        other => panic!("expected UnknownChain, got {other}"),
    }
}

/// A wallet last synced before an epoch change reads a blob certified in the new epoch.
async fn a_stale_wallet_crosses_an_epoch_change(offline: Option<usize>) {
    let net = TokioTestNet::new(4, 3, false).await;
    let (wallet, local) = wallet(&net, net.chains[2], Some(net.owners[2].clone())).await;
    wallet.synchronize_from_validators().await.unwrap();

    let admin = net.client(0);
    let members = net.secrets.clone();
    admin
        .create_committee(quorum_testkit::committee_of(&members))
        .await
        .unwrap();
    let publisher = net.client(1);
    publisher.process_new_epoch(Epoch(1)).await.unwrap();
    let (blob_id, certificate) = publisher.publish_blob(b"epoch one".to_vec()).await.unwrap();
    assert_eq!(certificate.value().block().epoch, Epoch(1));
    net.settle().await;
    if let Some(v) = offline {
        net.set_fault(v, Fault::Offline);
    }

    wallet.synchronize_chain(net.chains[1]).await.unwrap();
    let publisher_state = local.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(publisher_state.epoch(), Epoch(1));
    assert_eq!(publisher_state.next_height(), BlockHeight(2));
    assert!(local.committee(Epoch(1)).await.is_ok());
    let read = wallet.read_blob(blob_id).await.unwrap();
    assert_eq!(read.value().block().chain_id, net.chains[2]);
    // The wallet's own chain moves to the new epoch too.
    wallet.process_new_epoch(Epoch(1)).await.unwrap();
    assert_eq!(
        local.chain_state(net.chains[2]).await.unwrap().epoch(),
        Epoch(1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_wallet_syncs_across_an_epoch_change_and_reads_a_new_blob() {
    a_stale_wallet_crosses_an_epoch_change(None).await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_wallet_crosses_an_epoch_change_with_a_validator_offline() {
    a_stale_wallet_crosses_an_epoch_change(Some(2)).await;
}

/// The sum of every chain's balance on validator `v`, inboxes included.
async fn supply(net: &TokioTestNet, v: usize, chains: &[ChainId]) -> u64 {
    let mut total = 0;
    for chain in chains {
        let state = net.workers[v].chain_state(*chain).await.unwrap();
        total += state.balance();
        for inbox in state.inboxes().values() {
            for messages in inbox.bundles().values() {
                for message in messages {
                    total += match message {
                        quorum_core::Message::Credit { amount }
                        | quorum_core::Message::Return { amount } => *amount,
                    };
                }
            }
        }
    }
    total
}

#[tokio::test(start_paused = true)]
async fn a_closed_chain_refuses_operations_and_returns_a_later_transfer() {
    let net = TokioTestNet::new(4, 3, false).await;
    let chains = net.chains.clone();
    let start = supply(&net, 0, &chains).await;
    let closer = net.client(2);
    let sender = closer.for_chain(net.chains[1], Some(net.owners[1].clone()));
    let balance = closer.local_balance().await.unwrap();

    // A balance left and nobody named to receive it: refused.
    match closer.close_chain(None).await.unwrap_err() {
        ChainClientError::Local(NodeError::Execution(ExecutionError::NonZeroBalance {
            balance: left,
        })) => assert_eq!(left, balance),
        other => panic!("expected NonZeroBalance, got {other}"),
    }
    let sender_before = sender.local_balance().await.unwrap();
    closer.close_chain(Some(net.chains[1])).await.unwrap();
    assert!(closer.is_closed().await.unwrap());
    assert_eq!(closer.local_balance().await.unwrap(), 0);
    match closer.transfer(net.chains[0], 1).await.unwrap_err() {
        ChainClientError::Local(NodeError::Execution(ExecutionError::ChainClosed)) => {}
        other => panic!("expected ChainClosed, got {other}"),
    }

    // The sender takes in the remainder, then pays the closed chain.
    sender.receive_messages().await.unwrap();
    assert_eq!(
        sender.local_balance().await.unwrap(),
        sender_before + balance
    );
    sender.transfer(net.chains[2], 6).await.unwrap();
    // The closed chain's next block returns it.
    let returned = closer.receive_messages().await.unwrap();
    assert_eq!(returned.value().outcome().messages.len(), 1);
    assert_eq!(closer.local_balance().await.unwrap(), 0);
    sender.receive_messages().await.unwrap();
    assert_eq!(
        sender.local_balance().await.unwrap(),
        sender_before + balance
    );
    net.settle().await;
    for v in 0..4 {
        assert_eq!(supply(&net, v, &chains).await, start, "validator {v}");
        let closed = net.workers[v].chain_state(net.chains[2]).await.unwrap();
        assert!(closed.is_closed() && closed.balance() == 0, "validator {v}");
    }
}
