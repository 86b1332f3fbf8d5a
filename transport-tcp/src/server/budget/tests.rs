//! The budgets' tests: waiting for room, forced responses, floors and receive charges.

use std::time::Duration;

use super::*;

fn budget(limit: usize) -> Arc<ConnectionBudget> {
    let recorder = Arc::new(Recorder::default());
    let peer = ConnectionBudget::new_peer(usize::MAX, Arc::clone(&recorder), None);
    ConnectionBudget::new(limit, recorder, Some(peer))
}

#[tokio::test(start_paused = true)]
async fn a_charge_waits_for_room_and_gets_it_on_release() {
    let budget = budget(100);
    let first = budget.charge(80).await;
    let waiting = tokio::spawn({
        let budget = Arc::clone(&budget);
        async move { budget.charge(30).await.bytes() }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "80 + 30 does not fit in 100");
    drop(first);
    assert_eq!(waiting.await.ok(), Some(30));
    assert_eq!(budget.used(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_forced_response_keeps_the_reader_waiting_until_written() {
    let budget = budget(100);
    let mut reserve = budget.charge(10).await;
    reserve.set(150);
    assert_eq!(budget.used(), 150);
    assert_eq!(
        budget
            .recorder
            .peak_connection_bytes
            .load(Ordering::Relaxed),
        150
    );
    let frame = ChargedFrame::new(Bytes::from(vec![0; 150]), reserve);
    let reader = tokio::spawn({
        let budget = Arc::clone(&budget);
        async move { budget.below_limit().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!reader.is_finished(), "over budget: the reader pauses");
    assert_eq!(
        budget
            .recorder
            .queued_response_bytes
            .load(Ordering::Relaxed),
        150
    );
    drop(frame);
    assert!(reader.await.is_ok());
    assert_eq!(budget.used(), 0);
    assert_eq!(
        budget
            .recorder
            .queued_response_bytes
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn an_address_below_its_floor_is_admitted_by_a_full_group() {
    let recorder = Arc::new(Recorder::default());
    let server = ConnectionBudget::new_server(1000, 0, Arc::clone(&recorder));
    let group = ConnectionBudget::new_group(100, 30, Arc::clone(&recorder), server);
    let address = |recorder: &Arc<Recorder>| {
        let peer = ConnectionBudget::new_peer(1000, Arc::clone(recorder), Some(Arc::clone(&group)));
        ConnectionBudget::new(1000, Arc::clone(recorder), Some(peer))
    };
    let (attacker, honest) = (address(&recorder), address(&recorder));
    let _full = attacker.charge(100).await;
    // The attacker's address is over the floor: it waits for the group.
    let more = tokio::spawn({
        let attacker = Arc::clone(&attacker);
        async move { attacker.charge(10).await.bytes() }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!more.is_finished(), "the group is full");
    // Another address of the group gets up to its floor, not beyond.
    let ordinary = honest.charge(20).await;
    assert_eq!(ordinary.bytes(), 20);
    let beyond = tokio::spawn({
        let honest = Arc::clone(&honest);
        async move { honest.charge(20).await.bytes() }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!beyond.is_finished(), "20 + 20 is over the floor of 30");
    more.abort();
    beyond.abort();
}

#[tokio::test]
async fn receive_charges_merge_and_release() {
    let recorder = Arc::new(Recorder::default());
    let receive = ReceiveBudget::new(100, Arc::clone(&recorder));
    let share = Arc::new(Semaphore::new(1000));
    let mut held = ReceiveCharge::empty(Arc::clone(&recorder));
    for _ in 0..4 {
        held.hold_share(take_share(&share, 25).await.unwrap());
        held.absorb(receive.charge(25).await.unwrap());
    }
    assert_eq!(share.available_permits(), 900);
    assert_eq!(recorder.receive_bytes.load(Ordering::Relaxed), 100);
    assert!(Arc::clone(&receive.bytes).try_acquire_owned().is_err());
    drop(held);
    assert_eq!(share.available_permits(), 1000);
    assert_eq!(recorder.receive_bytes.load(Ordering::Relaxed), 0);
    assert_eq!(recorder.peak_receive_bytes.load(Ordering::Relaxed), 100);
    assert_eq!(receive.bytes.available_permits(), 100);
}
