//! Issue 11 over real TCP, through the fault proxy: with one validator black-holed (it
//! accepts and never answers) and one 200 ms further away, transfers go at the speed of the
//! fastest quorum (the hedged download past a hung first choice is the updater's own unit
//! test, `hedge.rs`). Real time: only bounds with a 10× margin are asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_chaos::proxy::{FaultProxy, ProxyFault};
use quorum_core::{BlockHeight, ValidatorNode};
use quorum_node::MemoryStorage;
use quorum_testkit::TestNet;
use quorum_transport_tcp::{serve_validator, ClientConfig, Server, ServerConfig, TcpValidatorNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};
use tokio::time::Instant;

/// A request timeout far above every figure here: waiting on the black hole would show.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// One way, so 200 ms more per round trip.
const ONE_WAY: Duration = Duration::from_millis(100);

struct Committee {
    net: TestNet,
    _servers: Vec<Server>,
    proxies: Vec<FaultProxy>,
    validators: ValidatorSet,
}

async fn committee() -> Committee {
    let net = TestNet::new(4, 2, false).await;
    let validators = ValidatorSet::new();
    let (mut servers, mut proxies) = (Vec::new(), Vec::new());
    for (secret, worker) in net.secrets.iter().zip(&net.workers) {
        let node: Arc<dyn ValidatorNode> = worker.clone();
        let server = serve_validator(node, "127.0.0.1:0", ServerConfig::default())
            .await
            .unwrap();
        let proxy = FaultProxy::start(server.local_addr()).await.unwrap();
        let tcp: Arc<dyn ValidatorNode> = Arc::new(
            TcpValidatorNode::new(proxy.local_addr().to_string(), ClientConfig::default()).unwrap(),
        );
        validators.insert(secret.public(), tcp);
        servers.push(server);
        proxies.push(proxy);
    }
    Committee {
        net,
        _servers: servers,
        proxies,
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
