//! The notification stream of a [`MemoryNode`](crate::MemoryNode)'s subscription, as its
//! [`NotificationFault`] and [`Fault`] make it (DESIGN §4.7.1).

use std::collections::VecDeque;

use futures::StreamExt;
use quorum_core::{
    BlockHeight, CryptoHash, Notification, NotificationEnvelope, NotificationKind,
    NotificationStream, Signature, SignedNotification, StreamEvent, ValidatorSecretKey,
};

use crate::fault::{Fault, NotificationFault};
use crate::handle::FaultHandle;
use crate::round_trip::round_trip;

/// How far ahead of a real block [`NotificationFault::Lie`] announces a false one.
const LIE_DISTANCE: u64 = 1_000;

/// What the faulty stream needs besides the node's stream.
pub(crate) struct Faults {
    pub(crate) handle: FaultHandle,
    pub(crate) own: Option<ValidatorSecretKey>,
    pub(crate) wrong: ValidatorSecretKey,
    pub(crate) bcs: bool,
}

struct State {
    inner: NotificationStream,
    faults: Faults,
    /// Envelopes ready to hand out, in order.
    out: VecDeque<NotificationEnvelope>,
    /// [`NotificationFault::Reorder`]'s first of a pair, held back.
    held: Option<NotificationEnvelope>,
    /// Envelopes added so far: every later one's number moves up by as much.
    added: u64,
}

/// `inner` with the node's faults applied to each envelope as it passes.
pub(crate) fn faulty_stream(inner: NotificationStream, faults: Faults) -> NotificationStream {
    let state = State {
        inner,
        faults,
        out: VecDeque::new(),
        held: None,
        added: 0,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(envelope) = state.out.pop_front() {
                return Some((envelope, state));
            }
            match state.faults.handle.fault() {
                // The node went away: the stream ends, as a closed connection ends it.
                Fault::Offline => return None,
                Fault::Hang => std::future::pending::<()>().await,
                _ => {}
            }
            let Some(mut envelope) = state.inner.next().await else {
                let held = state.held.take()?;
                return Some((held, state));
            };
            envelope.sequence += state.added;
            state.apply(envelope).await;
        }
    }))
}

impl State {
    /// Puts what `envelope` becomes under the fault in force into `out`.
    async fn apply(&mut self, mut envelope: NotificationEnvelope) {
        match self.faults.handle.notification_fault() {
            NotificationFault::Honest => self.emit(envelope),
            NotificationFault::Drop(probability) => {
                if self.faults.handle.random_unit() >= probability.clamp(0.0, 1.0) {
                    self.emit(envelope);
                }
            }
            NotificationFault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                self.emit(envelope);
            }
            NotificationFault::Replay => {
                self.emit(envelope);
                if let StreamEvent::Notification(_) = envelope.event {
                    self.added += 1;
                    self.emit(NotificationEnvelope {
                        sequence: envelope.sequence + 1,
                        event: envelope.event,
                    });
                }
            }
            NotificationFault::Reorder => match self.held.take() {
                Some(first) => {
                    self.emit(envelope);
                    self.emit(first);
                }
                None => self.held = Some(envelope),
            },
            NotificationFault::Forge => {
                if let StreamEvent::Notification(signed) = &mut envelope.event {
                    *signed = SignedNotification::new(signed.notification, &self.faults.wrong);
                }
                self.emit(envelope);
            }
            NotificationFault::Corrupt => {
                if let StreamEvent::Notification(signed) = &mut envelope.event {
                    let mut bytes = signed.signature.to_bytes();
                    bytes[0] ^= 1;
                    signed.signature = Signature::from_bytes(&bytes);
                }
                self.emit(envelope);
            }
            NotificationFault::Lie => {
                self.emit(envelope);
                if let (StreamEvent::Notification(signed), Some(key)) =
                    (envelope.event, &self.faults.own)
                {
                    let false_block = self.false_block(signed.notification);
                    self.added += 1;
                    self.emit(NotificationEnvelope {
                        sequence: envelope.sequence + 1,
                        event: StreamEvent::Notification(SignedNotification::new(false_block, key)),
                    });
                }
            }
        }
    }

    /// A block of `real`'s chain that does not exist: [`LIE_DISTANCE`] past the height
    /// `real` names, with a hash from the seeded generator.
    fn false_block(&self, real: Notification) -> Notification {
        let height = match real.kind {
            NotificationKind::NewBlock { height, .. }
            | NotificationKind::NewIncomingBundle { height, .. }
            | NotificationKind::NewRound { height, .. } => height,
        };
        tracing::debug!(chain = ?real.chain_id, "fault injected: false notification");
        Notification {
            chain_id: real.chain_id,
            kind: NotificationKind::NewBlock {
                height: BlockHeight(height.0.saturating_add(LIE_DISTANCE)),
                hash: CryptoHash(self.faults.handle.random_bytes()),
            },
        }
    }

    /// Queues `envelope` as the subscriber receives it (through a BCS round trip if on; one
    /// that does not survive it is lost, as a frame that cannot be decoded would be).
    fn emit(&mut self, envelope: NotificationEnvelope) {
        if !self.faults.bcs {
            self.out.push_back(envelope);
            return;
        }
        match round_trip(&envelope) {
            Ok(envelope) => self.out.push_back(envelope),
            Err(error) => tracing::warn!(%error, "a notification did not survive BCS"),
        }
    }
}
