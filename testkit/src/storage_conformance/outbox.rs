//! The suite's check of the outbox a sharded validator keeps between its shards (DESIGN §7.1).

use quorum_core::OutboxEntry;

use super::*;

/// Outbox entries are kept per lane in key order (recipient, then certificate), read up to a
/// limit, written once however often they are added, and gone once marked done (marking one
/// that is not there is no error).
pub async fn check_outbox<S: Storage + ?Sized>(storage: &S) {
    let entry = |lane: u32, recipient: u8, certificate: u8| OutboxEntry {
        lane,
        recipient: ChainId(CryptoHash([recipient; 32])),
        certificate: CryptoHash([certificate; 32]),
    };
    let read = |lane: u32, limit: usize| async move {
        must(storage.read_outbox(lane, limit).await, "read_outbox")
    };
    assert!(read(1, 10).await.is_empty(), "an empty outbox");
    write(
        storage,
        vec![
            Write::Outbox(entry(1, 9, 1)),
            Write::Outbox(entry(1, 2, 7)),
            Write::Outbox(entry(1, 2, 3)),
            Write::Outbox(entry(2, 1, 1)),
            Write::Outbox(entry(0, 5, 5)),
        ],
    )
    .await;
    // The same entry again: still one.
    write(storage, vec![Write::Outbox(entry(1, 2, 3))]).await;
    assert_eq!(
        read(1, 10).await,
        vec![entry(1, 2, 3), entry(1, 2, 7), entry(1, 9, 1)],
        "a lane's entries in key order, each once"
    );
    assert_eq!(
        read(1, 2).await,
        vec![entry(1, 2, 3), entry(1, 2, 7)],
        "up to the limit"
    );
    assert!(read(1, 0).await.is_empty(), "a limit of zero");
    assert_eq!(
        read(2, 10).await,
        vec![entry(2, 1, 1)],
        "another lane is its own"
    );
    assert_eq!(read(0, 10).await, vec![entry(0, 5, 5)], "lane 0");
    write(
        storage,
        vec![
            Write::OutboxDone(entry(1, 2, 3)),
            Write::OutboxDone(entry(1, 4, 4)),
            Write::Outbox(entry(1, 3, 3)),
        ],
    )
    .await;
    assert_eq!(
        read(1, 10).await,
        vec![entry(1, 2, 7), entry(1, 3, 3), entry(1, 9, 1)],
        "done entries are gone, a missing one changed nothing, a new one is there"
    );
    // Added and done in one batch: gone.
    write(
        storage,
        vec![
            Write::Outbox(entry(3, 1, 1)),
            Write::OutboxDone(entry(3, 1, 1)),
        ],
    )
    .await;
    assert!(read(3, 10).await.is_empty(), "added then done in one batch");
}
