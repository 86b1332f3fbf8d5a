//! Attack 5. The largest proposal whose decoding cost the most.

use super::*;

/// Encodes a committee of `members` members as a committee's bytes: pseudo-random keys in
/// increasing order (distinct, as a map's keys are), weight 1, empty addresses. Decompressing
/// a key costs about the same whether or not it lands on the curve, so they are as costly to
/// decode eagerly as real keys.
fn committee_bytes(members: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + members * COMMITTEE_MEMBER_BYTES);
    let mut count = members;
    loop {
        let byte = (count & 0x7f) as u8;
        count >>= 7;
        if count == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for member in 0..members as u64 {
        bytes.extend_from_slice(&member.to_be_bytes());
        for _ in 0..3 {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(0);
    }
    bytes
}

/// The largest `BlockProposal` that fits in one frame: on the admin chain, by its owner, with
/// one `CreateCommittee` of as many members as fit. Its frame and the number of members.
fn biggest_proposal(committee: &Committee) -> (Vec<u8>, usize) {
    let (admin, owner) = &committee.owners[0];
    let (_, info) = query_chain(committee.target, *admin, PROBE_TIMEOUT).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let frame = |members: usize| {
        let bytes = bcs::to_bytes(&committee_bytes(members)).unwrap();
        let encoded: EncodedCommittee = bcs::from_bytes(&bytes).unwrap();
        let block = Block {
            chain_id: *admin,
            epoch: info.info.epoch.unwrap_or(Epoch(0)),
            height: info.info.next_block_height,
            timestamp: Timestamp(info.info.timestamp.0.max(now.as_micros() as u64)),
            previous_block_hash: info.info.block_hash,
            authenticated_owner: owner.public(),
            incoming_bundles: Vec::new(),
            operations: vec![Operation::CreateCommittee(encoded)],
        };
        let proposal = BlockProposal::new(block, info.info.manager.current_round, owner);
        encode_request(0, Request::BlockProposal(Box::new(proposal)))
    };
    let overhead = frame(0).len() - LENGTH_PREFIX_LEN;
    // The member count's and the byte string's length prefixes take at most 5 bytes each.
    let mut members = (MAX_FRAME_LENGTH - overhead - 10) / COMMITTEE_MEMBER_BYTES;
    loop {
        let encoded = frame(members);
        if encoded.len() - LENGTH_PREFIX_LEN <= MAX_FRAME_LENGTH {
            return (encoded, members);
        }
        members -= 1;
    }
}

/// Sends the largest committee proposal `per_connection` times on each of
/// [`PROPOSAL_CONNECTIONS`] connections at once and checks every one is refused for its size.
fn big_proposals_row(per_connection: usize) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let (frame, members) = biggest_proposal(&committee);
    let frame = Arc::new(frame);
    let frame_bytes = frame.len() as u64;
    let target = committee.target;
    let attacker = pipelined_attacker(target, frame, PROPOSAL_CONNECTIONS, per_connection);
    let name = format!(
        "5. {PROPOSAL_CONNECTIONS} × {per_connection} proposals of {} creating a committee of {members} members",
        mib(frame_bytes)
    );
    let hold = Hold {
        min: Duration::from_secs(3),
        max: Duration::from_secs(60),
    };
    let (mut row, answers) = measure(&mut committee, baseline, &name, hold, attacker);
    // Its block is far beyond `Limits::max_block_bytes`: refused for its size before
    // anything else of it is looked at (its member count would refuse it at execution).
    let expected = NodeError::Execution(ExecutionError::TooLarge(Limit::BlockSize));
    let slowest = answers.iter().map(|a| a.after).max().unwrap_or_default();
    let refused = answers
        .iter()
        .filter(|a| matches!(&a.answer, Ok(Response::BlockProposal(Err(e))) if *e == expected))
        .count();
    row.note(format!(
        "{refused} of {} answered {expected:?}, the last {} after it was sent",
        PROPOSAL_CONNECTIONS * per_connection,
        ms(slowest)
    ));
    row.check(
        refused == PROPOSAL_CONNECTIONS * per_connection,
        format!("not every proposal was refused for its size: {answers:?}"),
    );
    row
}

/// The largest well-formed proposal whose decoding cost the most before the hardening (a
/// 16 MiB `BlockProposal` on the admin chain whose `CreateCommittee` holds ~409,000 members),
/// signed by the admin chain's owner, sent on four connections at once: its block is refused
/// for its size (`Limits::max_block_bytes`) before it is executed; the committee, which
/// travels as bytes, is never decoded.
#[test]
fn largest_committee_proposals_on_four_connections() {
    let _serial = serial();
    big_proposals_row(1).finish();
}

/// The same, four times on each connection (256 MiB of proposals, the whole receive budget).
#[test]
#[ignore = "heavy: 16 proposals of 16 MiB"]
fn largest_committee_proposals_four_times_on_four_connections() {
    let _serial = serial();
    big_proposals_row(HEAVY_PROPOSALS_PER_CONNECTION).finish();
}
