//! Issue 11 over real TCP, through the fault proxy: with one validator black-holed (it
//! accepts and never answers) and one 200 ms further away, transfers go at the speed of the
//! fastest quorum; a hedged download whose first choice is black-holed completes after the
//! hedge delay and one round trip. Real time: only bounds with a 10× margin are asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_chaos::proxy::{FaultProxy, ProxyFault};
use quorum_core::{BlockHeight, ValidatorNode};
use quorum_node::MemoryStorage;
use quorum_testkit::TestNet;
use quorum_transport_tcp::{serve_validator, ClientConfig, Server, ServerConfig, TcpValidatorNode};
use quorum_updater::hedged;
use quorum_updater::UNKNOWN_HEDGE_DELAY;
use quorum_updater::{ChainClient, Options, RemoteNode, ValidatorSet};
use tokio::time::Instant;

/// A request timeout far above every figure here: waiting on the black hole would show.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// One way, so 200 ms more per round trip.
const ONE_WAY: Duration = Duration::from_millis(100);

struct Committee {
    net: TestNet,
    _servers: Vec<Server>,
    proxies: Vec<FaultProxy>,
    remotes: Vec<RemoteNode>,
    validators: ValidatorSet,
}

async fn committee() -> Committee {
    let net = TestNet::new(4, 2, false).await;
    let validators = ValidatorSet::new();
    let (mut servers, mut proxies, mut remotes) = (Vec::new(), Vec::new(), Vec::new());
    for (secret, worker) in net.secrets.iter().zip(&net.workers) {
        let node: Arc<dyn ValidatorNode> = worker.clone();
        let server = serve_validator(node, "127.0.0.1:0", ServerConfig::default())
            .await
            .unwrap();
        let proxy = FaultProxy::start(server.local_addr()).await.unwrap();
        let tcp: Arc<dyn ValidatorNode> = Arc::new(
            TcpValidatorNode::new(proxy.local_addr().to_string(), ClientConfig::default()).unwrap(),
        );
        validators.insert(secret.public(), tcp.clone());
        remotes.push(RemoteNode::new(secret.public(), tcp));
        servers.push(server);
        proxies.push(proxy);
    }
    Committee {
        net,
        _servers: servers,
        proxies,
        remotes,
        validators,
    }
}

async fn client(committee: &Committee) -> ChainClient<MemoryStorage> {
    let net = &committee.net;
    let local = net.new_worker(None).await;
    let options = Options {
        request_timeout: REQUEST_TIMEOUT,
        deadline: Duration::from_secs(120),
        ..Options::default()
    };
    ChainClient::new(
        net.chains[1],
        Some(net.owners[1].clone()),
        local,
        committee.validators.clone(),
        options,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_go_at_the_speed_of_the_fastest_quorum() {
    let committee = committee().await;
    let client = client(&committee).await;
    // All honest and near: the reference.
    let start = Instant::now();
    client.transfer(committee.net.chains[0], 1).await.unwrap();
    let near = start.elapsed();

    committee.proxies[3].handle().set(ProxyFault::BlackHole);
    committee.proxies[2]
        .handle()
        .set(ProxyFault::Latency(ONE_WAY));
    let mut took = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        client.transfer(committee.net.chains[0], 1).await.unwrap();
        took.push(start.elapsed());
    }
    // The fastest quorum now includes the far validator: a few round trips of 200 ms more
    // each. Ten times that is still far below one request timeout spent on the black hole.
    let expected = near + 6 * 2 * ONE_WAY;
    for elapsed in &took {
        assert!(
            *elapsed < expected * 10 && *elapsed < REQUEST_TIMEOUT,
            "transfer took {elapsed:?} (near: {near:?}, expected about {expected:?})"
        );
    }
    println!("near {near:?}; with a black hole and a far validator: {took:?}");
    let chain = committee.net.chains[1];
    let height = client
        .local()
        .chain_state(chain)
        .await
        .unwrap()
        .next_height();
    assert_eq!(height, BlockHeight(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_download_skips_a_black_holed_first_choice() {
    let committee = committee().await;
    let client = client(&committee).await;
    client.transfer(committee.net.chains[0], 1).await.unwrap();
    let chain = committee.net.chains[1];
    // Every validator holds the block (the transfer returns once a quorum has it; the last
    // one gets it from the broadcast that goes on, so wait for it, bounded); the first
    // choice is black-holed.
    for v in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while committee.net.next_height(v, 1).await != BlockHeight(1) {
            assert!(
                Instant::now() < deadline,
                "validator {v} never got the block"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    committee.proxies[0].handle().set(ProxyFault::BlackHole);
    let start = Instant::now();
    let (source, certificates) = hedged(&committee.remotes, 3, |remote| async move {
        remote
            .node
            .download_certificates_by_heights(chain, vec![BlockHeight(0)])
            .await
    })
    .await
    .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(source.public_key, committee.remotes[1].public_key);
    assert_eq!(certificates.len(), 1);
    // The hedge delay of a validator of unknown latency, then one loopback round trip.
    let expected = UNKNOWN_HEDGE_DELAY + Duration::from_millis(5);
    assert!(
        elapsed >= UNKNOWN_HEDGE_DELAY && elapsed < expected * 10,
        "hedged download took {elapsed:?}"
    );
    println!("hedged download past a black hole: {elapsed:?}");
}
