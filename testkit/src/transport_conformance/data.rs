//! Checks of the requests that read or carry data: chain information queries, blobs,
//! certificate downloads, and many requests at once.

use super::*;

/// Chain information: a signed answer with the chain's description and height, certificate
/// hashes for a range (clipped to what exists), manager values (the proposal voted for),
/// `UnexpectedBlockHeight` for a wrong `test_next_block_height`, `InactiveChain`.
pub async fn check_chain_info_queries(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 3);
    let chain_id = v.chain_id(1);
    pair.commit_history(&history).await;

    let query = ChainInfoQuery::new(chain_id);
    let answer = both!(pair, "handle_chain_info_query", |node| node
        .handle_chain_info_query(query.clone()));
    let response = must(answer, "handle_chain_info_query");
    must(response.check(&v.public_key()), "the chain information");
    assert_eq!(response.info.chain_id, chain_id);
    assert_eq!(response.info.next_block_height, BlockHeight(3));
    assert_eq!(
        response.info.description.as_ref(),
        Some(&v.chains[1].description)
    );

    let hashes: Vec<CryptoHash> = history.iter().map(Certificate::hash).collect();
    for (start, end, expected) in [
        (0, 3, &hashes[..]),
        (1, 100, &hashes[1..]),
        (3, 5, &hashes[3..]),
    ] {
        let query = ChainInfoQuery::new(chain_id)
            .with_certificate_hashes(BlockHeight(start), BlockHeight(end));
        let answer = both!(
            pair,
            "handle_chain_info_query (certificate hashes)",
            |node| node.handle_chain_info_query(query.clone())
        );
        let response = must(answer, "handle_chain_info_query (certificate hashes)");
        assert_eq!(
            response.info.requested_certificate_hashes, expected,
            "certificate hashes {start}..{end}"
        );
    }

    let mut query = ChainInfoQuery::new(chain_id);
    query.test_next_block_height = Some(BlockHeight(3));
    must(
        both!(pair, "handle_chain_info_query (right height)", |node| node
            .handle_chain_info_query(query.clone())),
        "handle_chain_info_query (right height)",
    );
    query.test_next_block_height = Some(BlockHeight(2));
    both_fail!(
        pair,
        "handle_chain_info_query (wrong height)",
        |node| node.handle_chain_info_query(query.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(3),
            found_block_height: BlockHeight(2),
        }
    );

    let proposal = v.proposal(2, v.next_block(2, vec![]).await, Round::MultiLeader(0));
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let query = ChainInfoQuery::new(v.chain_id(2)).with_manager_values();
    let answer = both!(pair, "handle_chain_info_query (manager values)", |node| {
        node.handle_chain_info_query(query.clone())
    });
    let response = must(answer, "handle_chain_info_query (manager values)");
    assert_eq!(
        response.info.manager.requested_proposed.as_deref(),
        Some(&proposal)
    );

    let stranger = stranger().id();
    both_fail!(
        pair,
        "handle_chain_info_query (unknown chain)",
        |node| node.handle_chain_info_query(ChainInfoQuery::new(stranger)),
        NodeError::InactiveChain(stranger)
    );
    pair.assert_same_state("check_chain_info_queries").await;
}

/// Blobs: `upload_blob` refuses a blob nobody asked for (`UnexpectedBlob`), and after a
/// certificate was answered with `BlobsNotFound` answers the id and lets it publish the blob;
/// `handle_pending_blob` lets a proposal publish one (`BlobsNotFound` with the exact id before);
/// `download_blob` returns published blobs and `BlobsNotFound([id])` otherwise;
/// `missing_blob_ids` lists exactly the unknown ones; `InactiveChain` and
/// `LimitExceeded(BatchSize)` come back intact.
pub async fn check_blobs(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let uploaded = Blob::data(b"uploaded for a certificate".to_vec());
    let pending = Blob::data(b"pending for a proposal".to_vec());
    let empty = Blob::data(Vec::new());
    let description = v.chains[0].description.to_blob();
    let unknown = unknown_blob(0);

    both_fail!(
        pair,
        "download_blob (not published yet)",
        |node| node.download_blob(uploaded.id()),
        NodeError::BlobsNotFound(vec![uploaded.id()])
    );
    let asked = vec![uploaded.id(), description.id(), unknown.id(), pending.id()];
    let missing = both!(pair, "missing_blob_ids", |node| node
        .missing_blob_ids(asked.clone()));
    let mut missing = must(missing, "missing_blob_ids");
    missing.sort();
    let mut expected = vec![uploaded.id(), unknown.id(), pending.id()];
    expected.sort();
    assert_eq!(missing, expected, "missing_blob_ids");

    // Nobody asked for these blobs: refused, and nothing is held.
    for blob in [&uploaded, &empty] {
        both_fail!(
            pair,
            "upload_blob (not asked for)",
            |node| node.upload_blob(blob.clone()),
            NodeError::UnexpectedBlob(blob.id())
        );
    }
    // A confirmed block publishing a blob the node lacks: `BlobsNotFound`, after which the
    // blob may be uploaded, and the certificate then publishes it.
    let block = v
        .next_block(1, vec![Operation::PublishBlob(uploaded.id())])
        .await;
    let confirmed = v
        .confirmed(
            &block,
            std::slice::from_ref(&uploaded),
            Round::MultiLeader(0),
        )
        .await;
    both_fail!(
        pair,
        "handle_confirmed_certificate (blob not uploaded)",
        |node| node.handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking),
        NodeError::BlobsNotFound(vec![uploaded.id()])
    );
    let answer = both!(pair, "upload_blob", |node| node
        .upload_blob(uploaded.clone()));
    assert_eq!(answer, Ok(uploaded.id()), "upload_blob");
    must(
        both!(pair, "handle_confirmed_certificate (publishing)", |node| {
            node.handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking)
        }),
        "handle_confirmed_certificate (publishing)",
    );

    pending_blob_for_a_proposal(&pair, &pending).await;

    for blob in [&uploaded, &description] {
        let answer = both!(pair, "download_blob", |node| node.download_blob(blob.id()));
        assert_eq!(answer.as_ref(), Ok(blob), "download_blob");
    }
    let missing = both!(pair, "missing_blob_ids (after publishing)", |node| node
        .missing_blob_ids(asked.clone()));
    assert_eq!(missing, Ok(vec![unknown.id(), pending.id()]));
    let oversize = vec![unknown.id(); Limits::DEFAULT.max_certificates_per_batch + 1];
    both_fail!(
        pair,
        "missing_blob_ids (oversize)",
        |node| node.missing_blob_ids(oversize.clone()),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_blobs").await;
}

/// A proposal publishing `pending` needs it as a pending blob of its chain: refused with
/// `BlobsNotFound` before, voted on after `handle_pending_blob`; an unknown chain takes none.
async fn pending_blob_for_a_proposal(pair: &Pair, pending: &Blob) {
    let v = &pair.direct;
    let block = v
        .next_block(2, vec![Operation::PublishBlob(pending.id())])
        .await;
    let proposal = v.proposal(2, block, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (blob not pending)",
        |node| node.handle_block_proposal(proposal.clone()),
        NodeError::BlobsNotFound(vec![pending.id()])
    );
    let answer = both!(pair, "handle_pending_blob", |node| node
        .handle_pending_blob(v.chain_id(2), pending.clone()));
    let response = must(answer, "handle_pending_blob");
    assert_eq!(response.info.chain_id, v.chain_id(2));
    let answer = both!(pair, "handle_block_proposal (blob pending)", |node| node
        .handle_block_proposal(proposal.clone()));
    checked_vote(
        &must(answer, "handle_block_proposal (blob pending)"),
        &v.public_key(),
        "the vote on a proposal publishing a pending blob",
    );
    let stranger = stranger().id();
    both_fail!(
        pair,
        "handle_pending_blob (unknown chain)",
        |node| node.handle_pending_blob(stranger, pending.clone()),
        NodeError::InactiveChain(stranger)
    );
}

/// Certificate downloads: by hash (the certificate intact: value, round, signatures that still
/// check), `NotFound` for an unknown hash; by heights, those present in the order asked; an
/// oversize list is `LimitExceeded(BatchSize)`.
pub async fn check_certificate_downloads(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 4);
    let chain_id = v.chain_id(1);
    pair.commit_history(&history).await;

    for certificate in &history {
        let answer = both!(pair, "download_certificate", |node| node
            .download_certificate(certificate.hash()));
        let downloaded = must(answer, "download_certificate");
        assert_eq!(&downloaded, certificate, "download_certificate");
        assert_eq!(
            downloaded.value().inner(),
            certificate.value().inner(),
            "the downloaded certificate's value"
        );
        assert_eq!(downloaded.signatures(), certificate.signatures());
        must(
            downloaded.check(&v.committee.committee),
            "checking a downloaded certificate",
        );
    }
    both_fail!(
        pair,
        "download_certificate (unknown)",
        |node| node.download_certificate(CryptoHash([7; 32])),
        NodeError::NotFound
    );

    let heights: Vec<BlockHeight> = [3, 0, 2, 9].into_iter().map(BlockHeight).collect();
    let answer = both!(pair, "download_certificates_by_heights", |node| node
        .download_certificates_by_heights(chain_id, heights.clone()));
    let downloaded = must(answer, "download_certificates_by_heights");
    let expected = vec![history[3].clone(), history[0].clone(), history[2].clone()];
    assert_eq!(downloaded, expected, "download_certificates_by_heights");
    let none = both!(
        pair,
        "download_certificates_by_heights (no blocks)",
        |node| node.download_certificates_by_heights(v.chain_id(2), vec![BlockHeight(0)])
    );
    assert_eq!(none, Ok(Vec::new()));
    let oversize = vec![BlockHeight(0); Limits::DEFAULT.max_certificates_per_batch + 1];
    both_fail!(
        pair,
        "download_certificates_by_heights (oversize)",
        |node| node.download_certificates_by_heights(chain_id, oversize.clone()),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_certificate_downloads").await;
}

/// One read-only request of [`check_concurrent_requests`].
#[derive(Clone, Debug)]
enum Probe {
    Query(ChainInfoQuery),
    Certificate(CryptoHash),
    Certificates(ChainId, Vec<BlockHeight>),
    Blob(BlobId),
    Missing(Vec<BlobId>),
}

/// The answer to a [`Probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Info(Result<ChainInfoResponse, NodeError>),
    Certificate(Result<Box<ConfirmedBlockCertificate>, NodeError>),
    Certificates(Result<Vec<ConfirmedBlockCertificate>, NodeError>),
    Blob(Result<Blob, NodeError>),
    Missing(Result<Vec<BlobId>, NodeError>),
}

impl Probe {
    async fn ask(self, node: &dyn ValidatorNode) -> Answer {
        match self {
            Probe::Query(query) => Answer::Info(node.handle_chain_info_query(query).await),
            Probe::Certificate(hash) => {
                Answer::Certificate(node.download_certificate(hash).await.map(Box::new))
            }
            Probe::Certificates(chain_id, heights) => Answer::Certificates(
                node.download_certificates_by_heights(chain_id, heights)
                    .await,
            ),
            Probe::Blob(id) => Answer::Blob(node.download_blob(id).await),
            Probe::Missing(ids) => Answer::Missing(node.missing_blob_ids(ids).await),
        }
    }
}

/// Many requests in flight at once: [`CONCURRENT_REQUESTS`] chain information queries,
/// certificate and blob downloads and blob lookups, most of them with an answer (or an error)
/// unique to them, are sent together through the transport; each caller gets the answer the
/// Worker gives to its own request.
pub async fn check_concurrent_requests(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let mut certificates = Vec::new();
    for (chain, count) in [(1, 3), (2, 2), (3, 1)] {
        let history = v.history(chain, count);
        pair.commit_history(&history).await;
        certificates.extend(history);
    }

    let probes: Vec<Probe> = (0..CONCURRENT_REQUESTS)
        .map(|index| {
            let round = index / 6;
            let chain = round % CHAINS;
            match index % 6 {
                0 => Probe::Query(
                    ChainInfoQuery::new(v.chain_id(chain)).with_certificate_hashes(
                        BlockHeight(0),
                        BlockHeight(u64::try_from(round % 4).unwrap_or(0)),
                    ),
                ),
                // An unknown chain per request: a distinct `InactiveChain` each.
                1 => Probe::Query(ChainInfoQuery::new(ChainId(CryptoHash::of_bytes(
                    "conformance",
                    &index.to_le_bytes(),
                )))),
                2 => Probe::Certificate(certificates[round % certificates.len()].hash()),
                3 if round % 2 == 0 => Probe::Blob(v.chains[chain].description.to_blob().id()),
                // An unknown blob per request: a distinct `BlobsNotFound` each.
                3 => Probe::Blob(unknown_blob(index).id()),
                4 => Probe::Certificates(
                    v.chain_id(1 + round % 3),
                    (0..=round % 4)
                        .rev()
                        .map(|height| BlockHeight(u64::try_from(height).unwrap_or(0)))
                        .collect(),
                ),
                _ => Probe::Missing(vec![
                    v.chains[chain].description.to_blob().id(),
                    unknown_blob(index).id(),
                ]),
            }
        })
        .collect();
    let mut expected = Vec::new();
    for probe in &probes {
        expected.push(probe.clone().ask(&*v.worker).await);
    }

    let mut calls = JoinSet::new();
    for (index, probe) in probes.into_iter().enumerate() {
        let remote = Arc::clone(&pair.remote);
        calls.spawn(async move { (index, probe.ask(&*remote).await) });
    }
    let mut answered = [false; CONCURRENT_REQUESTS];
    while let Some(joined) = calls.join_next().await {
        let (index, answer) = must(joined, "a concurrent request's task");
        assert_eq!(
            answer, expected[index],
            "concurrent request {index} got another answer than the Worker's"
        );
        answered[index] = true;
    }
    assert!(
        answered.iter().all(|done| *done),
        "every concurrent request was answered"
    );
    pair.assert_same_state("check_concurrent_requests").await;
}
