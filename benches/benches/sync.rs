//! Target 4: syncing a validator that lags by 1,000 blocks (committee of 4), beside the same
//! validator processing the same certificates handed to it directly.
//!
//! Every iteration starts from a fresh validator at genesis (built outside the measured time)
//! and ends with it holding the whole chain (checked outside the measured time). The syncs run
//! in a task on the runtime's worker threads (`run_spawned`), as a client's code does.
//!
//! * `ours_mem_batched`, `ours_mem_bcs_batched`, `ours_tcp_batched`: the updater's
//!   `send_chain_information`, which uploads the missing certificates in batches
//!   (`handle_confirmed_certificates`, default batch size) over transport-mem (without and with
//!   BCS round trips) and over TCP loopback (`TcpValidatorNode` → `serve_validator`).
//! * `baseline_mem_one_at_a_time`, `baseline_tcp_one_at_a_time`: the old way, one
//!   `handle_confirmed_certificate` per certificate, awaiting each answer.
//! * `floor_direct_one_by_one`, `floor_direct_batched`: the Worker itself, handed the same
//!   certificates (cloned beforehand) one call per certificate, or in batches of the updater's
//!   size. The faster of the two is the floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use quorum_benches::settings;
use quorum_benches::sync::{direct_batch, SyncFixture, LAG};
use quorum_benches::{run_spawned, runtime};
use quorum_core::{ConfirmedBlockCertificate, CrossChainDelivery, ValidatorNode};
use quorum_node::{MemoryStorage, Worker};
use quorum_testkit::must;
use quorum_transport_mem::MemoryNode;
use quorum_transport_tcp::{serve_validator, ClientConfig, ServerConfig, TcpValidatorNode};

const DELIVERY: CrossChainDelivery = CrossChainDelivery::NonBlocking;

/// How a sync reaches the validator.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// The Worker's `handle_confirmed_certificate`, once per certificate.
    DirectOneByOne,
    /// The Worker's `handle_confirmed_certificates`, in batches.
    DirectBatched,
    /// The updater over a `MemoryNode`, BCS round trips on or off.
    MemBatched { bcs: bool },
    /// One call per certificate over a `MemoryNode`.
    MemOneAtATime,
    /// The updater over TCP.
    TcpBatched,
    /// One call per certificate over TCP.
    TcpOneAtATime,
}

/// One certificate after the other, each answer awaited.
async fn one_at_a_time(node: &dyn ValidatorNode, certificates: &[ConfirmedBlockCertificate]) {
    for certificate in certificates {
        must(
            node.handle_confirmed_certificate(certificate.clone(), DELIVERY)
                .await,
            "sending a certificate",
        );
    }
}

/// One sync along `path` to a fresh validator; returns the measured time.
async fn sync_once(fixture: &SyncFixture, path: Path) -> Duration {
    let worker: Arc<Worker<MemoryStorage>> = fixture.lagging_validator().await;
    let node = || worker.clone() as Arc<dyn ValidatorNode>;
    let key = Some(fixture.validator_key());
    let took = match path {
        Path::DirectOneByOne => {
            let certificates = fixture.certificates.clone();
            let start = Instant::now();
            for certificate in certificates {
                must(
                    worker
                        .handle_confirmed_certificate(certificate, DELIVERY)
                        .await,
                    "handing a certificate over",
                );
            }
            start.elapsed()
        }
        Path::DirectBatched => {
            let batches: Vec<Vec<ConfirmedBlockCertificate>> = fixture
                .certificates
                .chunks(direct_batch())
                .map(<[_]>::to_vec)
                .collect();
            let start = Instant::now();
            for batch in batches {
                let outcome = must(
                    worker.handle_confirmed_certificates(batch, DELIVERY).await,
                    "handing a batch over",
                );
                assert!(outcome.error.is_none(), "{outcome:?}");
            }
            start.elapsed()
        }
        Path::MemBatched { bcs } => {
            let remote = Arc::new(MemoryNode::new(node(), key, 1).with_bcs(bcs));
            let updater = fixture.updater(remote);
            let start = Instant::now();
            must(
                updater
                    .send_chain_information(fixture.chain_id, fixture.target(), DELIVERY, 0)
                    .await,
                "syncing over transport-mem",
            );
            start.elapsed()
        }
        Path::MemOneAtATime => {
            let remote = MemoryNode::new(node(), key, 1);
            let start = Instant::now();
            one_at_a_time(&remote, &fixture.certificates).await;
            start.elapsed()
        }
        Path::TcpBatched | Path::TcpOneAtATime => {
            let server = must(
                serve_validator(node(), "127.0.0.1:0", ServerConfig::default()).await,
                "serving the validator",
            );
            let address = server.local_addr().to_string();
            let client = must(
                TcpValidatorNode::new(address, ClientConfig::default()),
                "connecting to the validator",
            );
            let start = Instant::now();
            if let Path::TcpBatched = path {
                let updater = fixture.updater(Arc::new(client));
                must(
                    updater
                        .send_chain_information(fixture.chain_id, fixture.target(), DELIVERY, 0)
                        .await,
                    "syncing over TCP",
                );
            } else {
                one_at_a_time(&client, &fixture.certificates).await;
            }
            let took = start.elapsed();
            server.shutdown().await;
            took
        }
    };
    fixture.assert_synced(&worker).await;
    took
}

fn sync(c: &mut Criterion) {
    let rt = runtime();
    let fixture = Arc::new(rt.block_on(SyncFixture::new()));
    let mut group = c.benchmark_group("sync_1000");
    settings::slow(&mut group, 10, 5);
    // Criterion reports certificates per second beside the time of a whole sync.
    group.throughput(Throughput::Elements(LAG as u64));
    for (name, path) in [
        ("floor_direct_one_by_one", Path::DirectOneByOne),
        ("floor_direct_batched", Path::DirectBatched),
        ("ours_mem_batched", Path::MemBatched { bcs: false }),
        ("ours_mem_bcs_batched", Path::MemBatched { bcs: true }),
        ("baseline_mem_one_at_a_time", Path::MemOneAtATime),
        ("ours_tcp_batched", Path::TcpBatched),
        ("baseline_tcp_one_at_a_time", Path::TcpOneAtATime),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let fixture = fixture.clone();
                run_spawned(&rt, async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += sync_once(&fixture, path).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = settings::criterion();
    sync(&mut criterion);
    criterion.final_summary();
}
