//! A sharded validator in process (DESIGN §7.1): three shard Workers with validator 0's key
//! on one shared storage, behind a `ShardRouter`, fed the same certificates as the
//! unsharded validators of a committee. Transfers between chains of different shards go
//! through the durable outbox; a delivery repeated (a shard killed before marking it done)
//! changes nothing; the router answers as one validator, subscriptions included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::sync::Arc;

use futures::StreamExt;
use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, CrossChainDelivery, IncomingBundle, Limits, Message,
    NodeError, NotificationKind, Operation, OutboxEntry, Round, Storage, StreamEvent,
    ValidatorNode, Write,
};
use quorum_node::{MemoryStorage, Shard, Worker, WorkerConfig};
use quorum_testkit::TestNet as Net;

use super::ShardRouter;

/// A sharded copy of validator 0 of `net`.
struct Sharded {
    storage: MemoryStorage,
    count: NonZeroU32,
    workers: Vec<Arc<Worker<MemoryStorage>>>,
    router: ShardRouter,
}

async fn sharded(net: &Net, count: u32) -> Sharded {
    let storage = MemoryStorage::new();
    let admin = net.genesis.initialize(&storage, net.now()).await.unwrap();
    let shards = NonZeroU32::new(count).unwrap();
    let workers: Vec<_> = (0..count)
        .map(|index| {
            let config = WorkerConfig {
                shard: Shard::new(shards, index),
                ..WorkerConfig::new(admin)
            };
            Arc::new(Worker::new(
                storage.clone(),
                Some(net.secrets[0].clone()),
                Arc::new(net.clock.clone()),
                config,
            ))
        })
        .collect();
    let nodes = workers
        .iter()
        .map(|worker| worker.clone() as Arc<dyn ValidatorNode>)
        .collect();
    let tables: Arc<dyn Storage> = Arc::new(storage.clone());
    let router = ShardRouter::new(nodes, tables, Limits::DEFAULT, 64).unwrap();
    Sharded {
        storage,
        count: shards,
        workers,
        router,
    }
}

impl Sharded {
    async fn balance(&self, chain: ChainId) -> u64 {
        let info = self
            .router
            .handle_chain_info_query(ChainInfoQuery::new(chain))
            .await
            .unwrap();
        info.info.balance
    }

    async fn deliver_all(&self) -> usize {
        let mut delivered = 0;
        for worker in &self.workers {
            delivered += worker.deliver_outbox().await.unwrap();
        }
        delivered
    }
}

/// Two chains of `net` on different shards: (payer index, payee index).
fn across(net: &Net, count: NonZeroU32) -> (usize, usize) {
    for payer in 1..net.chains.len() {
        for payee in 1..net.chains.len() {
            if Shard::owner_of(count, net.chains[payer])
                != Shard::owner_of(count, net.chains[payee])
            {
                return (payer, payee);
            }
        }
    }
    panic!("every chain on one shard");
}

#[tokio::test]
async fn a_transfer_between_shards_goes_through_the_outbox_once() {
    let net = Net::new(4, 8, false).await;
    let copy = sharded(&net, 3).await;
    let (payer, payee) = across(&net, copy.count);
    let pay = Operation::Transfer {
        recipient: net.chains[payee],
        amount: 250,
    };
    let block = net.block(payer, vec![pay]).await;
    let sent = net.commit(payer, block, Round::MultiLeader(0)).await;
    copy.router
        .handle_confirmed_certificate(sent.clone(), CrossChainDelivery::Blocking)
        .await
        .unwrap();
    let lane = Shard::owner_of(copy.count, net.chains[payee]);
    let owed = OutboxEntry {
        lane,
        recipient: net.chains[payee],
        certificate: sent.hash(),
    };
    assert_eq!(
        copy.storage.read_outbox(lane, 10).await.unwrap(),
        vec![owed],
        "the delivery is owed, durably, once the sender's block is"
    );
    let payee_state = copy.workers[lane as usize]
        .chain_state(net.chains[payee])
        .await
        .unwrap();
    assert!(payee_state.inboxes().is_empty(), "not delivered yet");
    assert_eq!(copy.balance(net.chains[payer]).await, 750);

    // The consuming block does not wait for the background delivery: the shard takes in
    // what it is owed first, in the block's own commit.
    let bundle = IncomingBundle {
        origin: net.chains[payer],
        height: BlockHeight(0),
        messages: vec![Message::Credit { amount: 250 }],
    };
    let block = net.block_on(0, payee, vec![], vec![bundle]).await;
    let proposal = net.proposal(payee, block, Round::MultiLeader(0));
    copy.router.handle_block_proposal(proposal).await.unwrap();
    assert!(
        copy.storage.read_outbox(lane, 10).await.unwrap().is_empty(),
        "taken in for the proposal"
    );

    // A second payment, taken in by the background delivery.
    let pay = Operation::Transfer {
        recipient: net.chains[payee],
        amount: 50,
    };
    let block = net.block(payer, vec![pay]).await;
    let second = net.commit(payer, block, Round::MultiLeader(0)).await;
    copy.router
        .handle_confirmed_certificate(second, CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(copy.deliver_all().await, 1, "the second payment delivered");
    assert!(copy.storage.read_outbox(lane, 10).await.unwrap().is_empty());
    let inbox = copy.workers[lane as usize]
        .chain_state(net.chains[payee])
        .await
        .unwrap();
    assert_eq!(inbox.inboxes()[&net.chains[payer]].bundles().len(), 2);

    // A shard killed after delivering but before marking it done delivers it again: nothing
    // changes the second time.
    copy.storage
        .write_batch(quorum_core::Batch {
            writes: vec![Write::Outbox(owed)],
        })
        .await
        .unwrap();
    assert_eq!(copy.deliver_all().await, 1);
    let again = copy.workers[lane as usize]
        .chain_state(net.chains[payee])
        .await
        .unwrap();
    assert_eq!(inbox, again, "a repeated delivery is not applied twice");

    // The payee's block takes both in.
    let bundles = [(0, 250), (1, 50)].map(|(height, amount)| IncomingBundle {
        origin: net.chains[payer],
        height: BlockHeight(height),
        messages: vec![Message::Credit { amount }],
    });
    let block = net.block_on(0, payee, vec![], bundles.to_vec()).await;
    let received = net.commit(payee, block, Round::MultiLeader(0)).await;
    copy.router
        .handle_confirmed_certificate(received, CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(copy.balance(net.chains[payee]).await, 1_300);
    assert_eq!(copy.balance(net.chains[payer]).await, 700);
    for chain in [payer, payee] {
        let single = net.direct_info(1, chain).await.info;
        let ours = copy
            .router
            .handle_chain_info_query(ChainInfoQuery::new(net.chains[chain]))
            .await
            .unwrap()
            .info;
        assert_eq!(ours.block_hash, single.block_hash);
        assert_eq!(
            ours.state_hash, single.state_hash,
            "the same state as unsharded"
        );
    }
}

#[tokio::test]
async fn the_router_answers_as_one_validator() {
    let net = Net::new(4, 8, false).await;
    let copy = sharded(&net, 3).await;
    let (payer, payee) = across(&net, copy.count);
    let mut subscription = copy
        .router
        .subscribe(vec![net.chains[payer], net.chains[payee]])
        .await
        .unwrap();
    let pay = Operation::Transfer {
        recipient: net.chains[payee],
        amount: 5,
    };
    let block = net.block(payer, vec![pay]).await;
    let sent = net.commit(payer, block, Round::MultiLeader(0)).await;
    copy.router
        .handle_confirmed_certificates(vec![sent.clone()], CrossChainDelivery::Blocking)
        .await
        .unwrap();
    copy.deliver_all().await;
    let mut kinds = Vec::new();
    for expected in 0..2u64 {
        let envelope = subscription.events.next().await.unwrap();
        assert_eq!(envelope.sequence, expected, "renumbered across shards");
        let StreamEvent::Notification(signed) = envelope.event else {
            panic!("no lag expected");
        };
        signed.check(&net.secrets[0].public()).unwrap();
        kinds.push((signed.notification.chain_id, signed.notification.kind));
    }
    assert!(kinds.contains(&(
        net.chains[payer],
        NotificationKind::NewBlock {
            height: BlockHeight(0),
            hash: sent.hash()
        }
    )));
    assert!(kinds.contains(&(
        net.chains[payee],
        NotificationKind::NewIncomingBundle {
            origin: net.chains[payer],
            height: BlockHeight(0)
        }
    )));
    // Chain-less reads come from the shared tables.
    assert_eq!(
        copy.router.download_certificate(sent.hash()).await.unwrap(),
        sent
    );
    let found = copy
        .router
        .download_certificates_by_heights(net.chains[payer], vec![BlockHeight(0)])
        .await
        .unwrap();
    assert_eq!(found, vec![sent]);
    copy.router.unsubscribe(subscription.id).await.unwrap();
    assert!(matches!(
        copy.router.unsubscribe(subscription.id).await,
        Err(NodeError::UnknownSubscription(_))
    ));
    for worker in &copy.workers {
        assert_eq!(worker.subscriptions(), 0, "closed at every shard");
    }
}
