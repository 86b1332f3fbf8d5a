//! Checks of the consensus requests: proposals, certificates (full and lite), timeouts and
//! certificate batches.

use super::*;

/// Proposals: a proposal gets the same signed Validated vote, a repeated one the same answer,
/// and every refusal comes back intact: `WrongRound`, `UnexpectedBlockHeight`,
/// `InvalidTimestamp`, `BlobsNotFound` with the exact ids, `EventsNotFound`,
/// `MissingCrossChainUpdate`, `InactiveChain`, and a nested `Execution` error.
pub async fn check_block_proposals(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();

    let transfer = Operation::Transfer {
        recipient: v.chain_id(2),
        amount: 5,
    };
    let block = v.next_block(1, vec![transfer]).await;
    let proposal = v.proposal(1, block, Round::MultiLeader(0));
    let answer = both!(pair, "handle_block_proposal", |node| node
        .handle_block_proposal(proposal.clone()));
    let response = must(answer, "handle_block_proposal");
    let vote = checked_vote(&response, &key, "the vote on a proposal");
    assert_eq!(vote.kind, VoteKind::Validated, "the vote on a proposal");
    assert_eq!(vote.round, Round::MultiLeader(0), "the vote on a proposal");
    let again = both!(pair, "handle_block_proposal (repeated)", |node| node
        .handle_block_proposal(proposal.clone()));
    assert_eq!(again, Ok(response), "a repeated proposal changes nothing");

    // Refusals, all on chain 2, which stays untouched.
    let block = v.next_block(2, vec![]).await;
    let wrong_round = v.proposal(2, block.clone(), Round::MultiLeader(1));
    both_fail!(
        pair,
        "handle_block_proposal (wrong round)",
        |node| node.handle_block_proposal(wrong_round.clone()),
        NodeError::WrongRound(Round::MultiLeader(0))
    );

    let mut ahead = block.clone();
    ahead.height = BlockHeight(3);
    let ahead = v.proposal(2, ahead, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (height ahead)",
        |node| node.handle_block_proposal(ahead.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(3),
        }
    );

    let mut future = block.clone();
    let grace = v.worker.config().timestamp_grace;
    future.timestamp = START.saturating_add(grace).saturating_add(TimeDelta(1));
    let future_proposal = v.proposal(2, future.clone(), Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (timestamp ahead)",
        |node| node.handle_block_proposal(future_proposal.clone()),
        NodeError::InvalidTimestamp {
            block_timestamp: future.timestamp,
            local_time: START,
        }
    );

    refusals_of_content(&pair, &block).await;
    pair.assert_same_state("check_block_proposals").await;
}

/// The refusals of a proposal for what its block holds, on chain 2 at `block`'s height:
/// unknown blobs, an unknown epoch, a bundle not received, an unknown chain, an overdraft.
async fn refusals_of_content(pair: &Pair, block: &Block) {
    let v = &pair.direct;
    let mut missing: Vec<BlobId> = (0..3).map(|index| unknown_blob(index).id()).collect();
    let reads = missing.iter().copied().map(Operation::ReadBlob).collect();
    let reading = v.proposal(2, v.next_block(2, reads).await, Round::MultiLeader(0));
    missing.sort();
    both_fail!(
        pair,
        "handle_block_proposal (unknown blobs)",
        |node| node.handle_block_proposal(reading.clone()),
        NodeError::BlobsNotFound(missing.clone())
    );

    let new_epoch = vec![Operation::ProcessNewEpoch(Epoch(1))];
    let epoch = v.proposal(2, v.next_block(2, new_epoch).await, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (unknown epoch)",
        |node| node.handle_block_proposal(epoch.clone()),
        NodeError::EventsNotFound(vec![epoch_event_id(v.admin_chain(), Epoch(1))])
    );

    let mut receiving = block.clone();
    receiving.incoming_bundles = vec![IncomingBundle {
        origin: v.chain_id(1),
        height: BlockHeight(0),
        messages: vec![Message::Credit { amount: 5 }],
    }];
    let receiving = v.proposal(2, receiving, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (bundle not received)",
        |node| node.handle_block_proposal(receiving.clone()),
        NodeError::MissingCrossChainUpdate {
            chain_id: v.chain_id(2),
            origin: v.chain_id(1),
            height: BlockHeight(0),
        }
    );

    let stranger = stranger();
    let foreign = BlockProposal::new(
        stranger.next_block(vec![]),
        Round::MultiLeader(0),
        &stranger.owner,
    );
    both_fail!(
        pair,
        "handle_block_proposal (unknown chain)",
        |node| node.handle_block_proposal(foreign.clone()),
        NodeError::InactiveChain(stranger.id())
    );

    let too_much = TestChain::INITIAL_BALANCE + 1;
    let overdraft = vec![Operation::Transfer {
        recipient: v.chain_id(1),
        amount: too_much,
    }];
    let overdraft = v.proposal(2, v.next_block(2, overdraft).await, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (overdraft)",
        |node| node.handle_block_proposal(overdraft.clone()),
        NodeError::Execution(ExecutionError::InsufficientBalance {
            balance: TestChain::INITIAL_BALANCE,
            amount: too_much,
        })
    );
}

/// Certificates: validated → signed Confirmed vote; confirmed → committed (and idempotent);
/// the same through lite certificates; and `MissingCertificateValue`, `UnexpectedBlockHeight`,
/// `BlobsNotFound` (a validated block publishing a blob the node lacks) and a nested
/// `InvalidCertificate(BadSignatures(..))` come back intact.
pub async fn check_certificates(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();
    let round = Round::MultiLeader(0);

    // Chain 1, full certificates.
    let block = v.next_block(1, vec![]).await;
    let proposal = v.proposal(1, block.clone(), round);
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let validated = v.validated(&block, &[], round).await;
    let answer = both!(pair, "handle_validated_certificate", |node| node
        .handle_validated_certificate(validated.clone()));
    let response = must(answer, "handle_validated_certificate");
    let vote = checked_vote(&response, &key, "the vote on a validated certificate");
    assert_eq!(
        vote.kind,
        VoteKind::Confirmed,
        "the vote on a validated block"
    );
    let confirmed = v.confirmed(&block, &[], round).await;
    assert_eq!(
        vote.value_hash,
        confirmed.hash(),
        "the vote confirms the block"
    );
    let answer = both!(pair, "handle_confirmed_certificate", |node| node
        .handle_confirmed_certificate(
            confirmed.clone(),
            CrossChainDelivery::Blocking
        ));
    let response = must(answer, "handle_confirmed_certificate");
    assert_eq!(response.info.next_block_height, BlockHeight(1));
    assert_eq!(response.info.block_hash, Some(confirmed.hash()));
    let again = both!(pair, "handle_confirmed_certificate (repeated)", |node| node
        .handle_confirmed_certificate(
            confirmed.clone(),
            CrossChainDelivery::NonBlocking
        ));
    assert_eq!(
        again,
        Ok(response),
        "a repeated certificate changes nothing"
    );

    // Chain 2, lite certificates.
    let block = v.next_block(2, vec![]).await;
    let proposal = v.proposal(2, block.clone(), round);
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let lite = v.validated(&block, &[], round).await.lite();
    let answer = both!(pair, "handle_lite_certificate (validated)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::NonBlocking));
    let vote = checked_vote(
        &must(answer, "handle_lite_certificate (validated)"),
        &key,
        "the vote on a lite validated certificate",
    );
    assert_eq!(vote.kind, VoteKind::Confirmed);
    let lite = v.confirmed(&block, &[], round).await.lite();
    let answer = both!(pair, "handle_lite_certificate (confirmed)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::Blocking));
    let response = must(answer, "handle_lite_certificate (confirmed)");
    assert_eq!(response.info.next_block_height, BlockHeight(1));

    certificate_refusals(&pair, round).await;
    pair.assert_same_state("check_certificates").await;
}

/// Chain 3's certificates refused (a lite one whose value the node lacks, one for a later
/// height, a forged signature, a validated block publishing a blob not uploaded), then its
/// first block committed.
async fn certificate_refusals(pair: &Pair, round: Round) {
    let v = &pair.direct;
    let history = v.history(3, 2);
    let unheld = history[0].lite();
    both_fail!(
        pair,
        "handle_lite_certificate (value not held)",
        |node| node.handle_lite_certificate(unheld.clone(), CrossChainDelivery::Blocking),
        NodeError::MissingCertificateValue
    );
    both_fail!(
        pair,
        "handle_confirmed_certificate (height ahead)",
        |node| node.handle_confirmed_certificate(history[1].clone(), CrossChainDelivery::Blocking),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(1),
        }
    );
    let (value, certified_round, mut signatures) = history[0].clone().into_parts();
    let forged_signer = signatures[1].0;
    signatures[1].1 = Signature::from_bytes(&[9; 64]);
    let forged = Certificate::new(value, certified_round, signatures);
    both_fail!(
        pair,
        "handle_confirmed_certificate (bad signature)",
        |node| node.handle_confirmed_certificate(forged.clone(), CrossChainDelivery::Blocking),
        NodeError::InvalidCertificate(CertificateError::BadSignatures(vec![forged_signer]))
    );
    let blob = unknown_blob(7);
    let publishing = v
        .next_block(3, vec![Operation::PublishBlob(blob.id())])
        .await;
    let validated = v
        .validated(&publishing, std::slice::from_ref(&blob), round)
        .await;
    both_fail!(
        pair,
        "handle_validated_certificate (blob not uploaded)",
        |node| node.handle_validated_certificate(validated.clone()),
        NodeError::BlobsNotFound(vec![blob.id()])
    );
    let answer = both!(pair, "handle_confirmed_certificate", |node| node
        .handle_confirmed_certificate(
            history[0].clone(),
            CrossChainDelivery::Blocking
        ));
    assert_eq!(
        must(answer, "handle_confirmed_certificate").info.block_hash,
        Some(history[0].hash())
    );
}

/// Timeouts: no timeout vote before the deadline, a signed one after; a timeout certificate,
/// full or lite, moves the round; one for a later height is `UnexpectedBlockHeight`.
pub async fn check_timeouts(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();
    let chain_id = v.chain_id(1);
    let first = Round::MultiLeader(0);

    let query = ChainInfoQuery::new(chain_id).with_timeout(BlockHeight(0), first);
    let early = both!(pair, "handle_chain_info_query (timeout, early)", |node| {
        node.handle_chain_info_query(query.clone())
    });
    let early = must(early, "handle_chain_info_query (timeout, early)");
    assert_eq!(
        early.info.manager.timeout_vote, None,
        "no timeout vote early"
    );
    let deadline = some(early.info.manager.round_timeout, "the round's deadline");
    v.clock.set(deadline.saturating_add(TimeDelta(1)));
    let late = both!(pair, "handle_chain_info_query (timeout, late)", |node| node
        .handle_chain_info_query(query.clone()));
    let late = must(late, "handle_chain_info_query (timeout, late)");
    must(late.check(&key), "the response carrying a timeout vote");
    let vote = some(late.info.manager.timeout_vote.clone(), "the timeout vote");
    must(vote.check(&key), "the timeout vote");
    assert_eq!((vote.kind, vote.round), (VoteKind::Timeout, first));

    let timeout = |round| {
        v.committee.certify(
            Timeout {
                chain_id,
                height: BlockHeight(0),
                epoch: Epoch(0),
            },
            round,
        )
    };
    let certificate = timeout(first);
    assert_eq!(
        certificate.hash(),
        vote.value_hash,
        "the vote is for this timeout"
    );
    let answer = both!(pair, "handle_timeout_certificate", |node| node
        .handle_timeout_certificate(certificate.clone()));
    let response = must(answer, "handle_timeout_certificate");
    assert_eq!(response.info.manager.current_round, Round::MultiLeader(1));

    let lite = timeout(Round::MultiLeader(1)).lite();
    let answer = both!(pair, "handle_lite_certificate (timeout)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::NonBlocking));
    let response = must(answer, "handle_lite_certificate (timeout)");
    assert_eq!(response.info.manager.current_round, Round::SingleLeader(0));

    let later = v.committee.certify(
        Timeout {
            chain_id,
            height: BlockHeight(5),
            epoch: Epoch(0),
        },
        first,
    );
    both_fail!(
        pair,
        "handle_timeout_certificate (height ahead)",
        |node| node.handle_timeout_certificate(later.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(5),
        }
    );
    pair.assert_same_state("check_timeouts").await;
}

/// Batches of confirmed certificates: the [`BatchOutcome`] of a full batch, of one that stops
/// at a gap (with the error), of an empty one and of one mixing chains; an oversize batch is
/// `LimitExceeded(BatchSize)`.
pub async fn check_confirmed_batches(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 6);

    let batch = history[..3].to_vec();
    let outcome = both!(pair, "handle_confirmed_certificates", |node| node
        .handle_confirmed_certificates(batch.clone(), CrossChainDelivery::Blocking));
    let outcome = must(outcome, "handle_confirmed_certificates");
    assert_eq!((outcome.processed, &outcome.error), (3, &None));
    let info = some(outcome.info, "the batch's chain information");
    assert_eq!(info.info.next_block_height, BlockHeight(3));

    // Height 2 again (already there, counts as processed), 3, then a gap before 5.
    let gap = vec![history[2].clone(), history[3].clone(), history[5].clone()];
    let outcome = both!(pair, "handle_confirmed_certificates (gap)", |node| node
        .handle_confirmed_certificates(gap.clone(), CrossChainDelivery::NonBlocking));
    let outcome = must(outcome, "handle_confirmed_certificates (gap)");
    assert_eq!(outcome.processed, 2, "the batch stops at the gap");
    assert_eq!(
        outcome.error,
        Some(NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(4),
            found_block_height: BlockHeight(5),
        })
    );
    let info = some(outcome.info, "the stopped batch's chain information");
    assert_eq!(info.info.next_block_height, BlockHeight(4));

    let empty = both!(pair, "handle_confirmed_certificates (empty)", |node| node
        .handle_confirmed_certificates(Vec::new(), CrossChainDelivery::Blocking));
    assert_eq!(
        empty,
        Ok(BatchOutcome {
            processed: 0,
            info: None,
            error: None,
        })
    );

    let mixed = vec![history[4].clone(), v.history(2, 1)[0].clone()];
    let outcome = both!(pair, "handle_confirmed_certificates (two chains)", |node| {
        node.handle_confirmed_certificates(mixed.clone(), CrossChainDelivery::Blocking)
    });
    let outcome = must(outcome, "handle_confirmed_certificates (two chains)");
    assert_eq!(outcome.processed, 1);
    assert_eq!(
        outcome.error,
        Some(NodeError::ProtocolViolation(Violation::WrongChain))
    );

    let oversize = vec![history[5].clone(); Limits::DEFAULT.max_certificates_per_batch + 1];
    both_fail!(
        pair,
        "handle_confirmed_certificates (oversize)",
        |node| node.handle_confirmed_certificates(oversize.clone(), CrossChainDelivery::Blocking),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_confirmed_batches").await;
}
