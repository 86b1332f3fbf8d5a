//! One request stream: the request read within its deadline and charged to the budgets, room
//! for its answer set aside, the node's answer written back; a subscription keeps its stream
//! and pushes its notifications on it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use quinn::{RecvStream, SendStream, VarInt};
use quorum_core::protocol::{dispatch, dispatch_stream, Request, Response};
use quorum_core::{
    ChainId, NodeError, SubscriptionChange, SubscriptionId, SubscriptionLimit, TransportErrorKind,
};
use tokio::time::timeout;
use tracing::{debug, warn};

use super::connection::Owned;
use super::{Shared, CODE_BAD_REQUEST};
use crate::budget::Charge;
use crate::error::QuicError;
use crate::wire::{read_message, write_message, Received};

/// Serves the request of one stream.
pub(super) async fn serve(
    mut send: SendStream,
    mut recv: RecvStream,
    shared: Arc<Shared>,
    owned: Arc<Owned>,
) {
    let config = &shared.config;
    let max = config.max_frame_length;
    // The request's deadline: the fixed part, plus the longest message at the slowest rate.
    let slowest = Duration::from_secs_f64(max as f64 / config.min_receive_rate as f64);
    let read = read_message::<Request>(&mut recv, max, Some(&owned.budgets));
    let Received {
        message: request,
        mut charge,
    } = match timeout(config.request_read_timeout + slowest, read).await {
        Ok(Ok(Some(received))) => received,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => return reject(send, recv, reason(&error)),
        Err(_) => return reject(send, recv, "stalled"),
    };
    // Room for the answer, before the node builds it.
    let bound = request.response_bound(&config.limits).min(max);
    let room = owned.budgets.charge(&mut charge, bound);
    if timeout(config.write_timeout, room).await.is_err() {
        return reject(send, recv, "starved");
    }
    let kind = request.kind().name();
    let started = std::time::Instant::now();
    let response = {
        // The semaphore is never closed.
        let Ok(_slot) = shared.handlers.acquire().await else {
            return;
        };
        match request {
            Request::Subscribe(chains) => {
                return subscribe(chains, send, recv, &shared, &owned, charge).await;
            }
            Request::ChangeSubscription { id, change } => {
                change_subscription(id, change, &shared, &owned).await
            }
            Request::Unsubscribe(id) => unsubscribe(id, &shared, &owned).await,
            other => dispatch(&*shared.node, other).await,
        }
    };
    let response = finish(kind, started, response, max);
    if answer(&mut send, &response, &shared).await {
        let _ = send.finish();
    }
    drop(charge);
}

/// Writes `response` within the write deadline; resets the stream and says `false` if the
/// peer did not take it.
async fn answer(send: &mut SendStream, response: &Response, shared: &Shared) -> bool {
    let config = &shared.config;
    match timeout(
        config.write_timeout,
        write_message(send, response, config.max_frame_length),
    )
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            debug!(%error, "answer not delivered");
            false
        }
        Err(_) => {
            counted("write_timeout");
            let _ = send.reset(VarInt::from_u32(CODE_BAD_REQUEST));
            false
        }
    }
}

/// Ends a stream whose request was not acceptable, counting why.
fn reject(mut send: SendStream, mut recv: RecvStream, reason: &'static str) {
    counted(reason);
    let _ = recv.stop(VarInt::from_u32(CODE_BAD_REQUEST));
    let _ = send.reset(VarInt::from_u32(CODE_BAD_REQUEST));
}

/// Why a request could not be read, as a metric label.
fn reason(error: &QuicError) -> &'static str {
    match error {
        QuicError::TooLarge { .. } => "oversize",
        QuicError::Decode(_) => "malformed",
        QuicError::Truncated => "truncated",
        _ => "read_error",
    }
}

/// Counts a stream the server ended, by reason.
fn counted(reason: &'static str) {
    metrics::counter!("quorum_quic_closed_total", "reason" => reason).increment(1);
}

/// Counts and times an answer, and replaces one too large to send by the reason, in the same
/// variant.
fn finish(
    kind: &'static str,
    started: std::time::Instant,
    response: Response,
    max: usize,
) -> Response {
    let outcome = if response.error().is_some() {
        "refused"
    } else {
        "ok"
    };
    metrics::counter!("quorum_requests_total", "method" => kind, "outcome" => outcome).increment(1);
    metrics::histogram!("quorum_handler_seconds", "method" => kind)
        .record(started.elapsed().as_secs_f64());
    let reason = match bcs::serialized_size(&response) {
        Ok(length) if length <= max => return response,
        Ok(length) => {
            warn!(
                request = kind,
                length, max, "answer exceeds the maximum message length"
            );
            TransportErrorKind::FrameTooLarge
        }
        Err(error) => {
            warn!(request = kind, %error, "answer cannot be encoded");
            TransportErrorKind::Codec
        }
    };
    response.with_error(NodeError::Transport(reason))
}

/// Opens a subscription within the connection's caps, answers its id, then pushes its
/// notifications on this stream until the node ends it, the peer closes its half of the
/// stream, or a notification is not taken in time. The subscription is closed at the node
/// when it ends here.
async fn subscribe(
    chains: Vec<ChainId>,
    mut send: SendStream,
    mut recv: RecvStream,
    shared: &Arc<Shared>,
    owned: &Arc<Owned>,
    charge: Charge,
) {
    let started = std::time::Instant::now();
    let distinct = chains.iter().collect::<HashSet<_>>().len();
    let opened = {
        // One subscribe at a time per connection, so that two cannot both pass the caps.
        let _turn = owned.subscribing.lock().await;
        match cap(owned, &shared.config, None, distinct) {
            Some(limit) => Err(Response::Subscribe(Err(refused(limit)))),
            None => match dispatch_stream(&*shared.node, Request::Subscribe(chains)).await {
                (Response::Subscribe(Ok(id)), Some(events)) => {
                    owned.subscriptions().insert(id, distinct);
                    Ok((id, events))
                }
                (refusal, _) => Err(refusal),
            },
        }
    };
    let (id, mut events) = match opened {
        Ok(opened) => opened,
        Err(refusal) => {
            let max = shared.config.max_frame_length;
            let refusal = finish("subscribe", started, refusal, max);
            if answer(&mut send, &refusal, shared).await {
                let _ = send.finish();
            }
            return;
        }
    };
    let first = finish(
        "subscribe",
        started,
        Response::Subscribe(Ok(id)),
        shared.config.max_frame_length,
    );
    let mut open = answer(&mut send, &first, shared).await;
    drop(charge);
    let mut probe = [0u8; 1];
    while open {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    open = answer(&mut send, &Response::Notification(event), shared).await;
                }
                None => break,
            },
            // The client sends nothing more: its half ending (or reset) ends the subscription.
            _ = recv.read(&mut probe) => break,
        }
    }
    if owned.subscriptions().remove(&id).is_some() {
        let _ = shared.node.unsubscribe(id).await;
    }
    let _ = send.finish();
}

/// The cap a subscription of `chains` chains (or `id` grown to them) would pass, if any.
fn cap(
    owned: &Owned,
    config: &crate::config::ServerConfig,
    id: Option<SubscriptionId>,
    chains: usize,
) -> Option<SubscriptionLimit> {
    let subscriptions = owned.subscriptions();
    if id.is_none() && subscriptions.len() >= config.max_subscriptions_per_connection {
        return Some(SubscriptionLimit::SubscriptionsPerConnection);
    }
    let others: usize = subscriptions
        .iter()
        .filter(|(open, _)| Some(**open) != id)
        .map(|(_, chains)| *chains)
        .sum();
    (others.saturating_add(chains) > config.max_chains_per_connection)
        .then_some(SubscriptionLimit::ChainsPerConnection)
}

/// A refusal by a cap of the connection, counted.
fn refused(limit: SubscriptionLimit) -> NodeError {
    metrics::counter!("quorum_subscriptions_refused_total", "cap" => limit.name()).increment(1);
    NodeError::SubscriptionLimit(limit)
}

/// Changes a subscription of this connection, its growth within the caps first.
async fn change_subscription(
    id: SubscriptionId,
    change: SubscriptionChange,
    shared: &Shared,
    owned: &Owned,
) -> Response {
    let Some(current) = owned.subscriptions().get(&id).copied() else {
        return Response::ChangeSubscription(Err(NodeError::UnknownSubscription(id)));
    };
    let added = change.add.iter().collect::<HashSet<_>>().len();
    if let Some(limit) = cap(
        owned,
        &shared.config,
        Some(id),
        current.saturating_add(added),
    ) {
        return Response::ChangeSubscription(Err(refused(limit)));
    }
    let answer = shared.node.change_subscription(id, change).await;
    if let Ok(chains) = &answer {
        if let Some(count) = owned.subscriptions().get_mut(&id) {
            *count = usize::try_from(*chains).unwrap_or(usize::MAX);
        }
    }
    Response::ChangeSubscription(answer)
}

/// Closes a subscription of this connection.
async fn unsubscribe(id: SubscriptionId, shared: &Shared, owned: &Owned) -> Response {
    if owned.subscriptions().remove(&id).is_none() {
        return Response::Unsubscribe(Err(NodeError::UnknownSubscription(id)));
    }
    Response::Unsubscribe(shared.node.unsubscribe(id).await)
}
