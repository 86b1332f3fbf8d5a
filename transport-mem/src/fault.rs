//! The faults a [`MemoryNode`](crate::MemoryNode) can inject (DESIGN §6).

use std::time::Duration;

/// How a [`MemoryNode`](crate::MemoryNode) misbehaves. One fault is in force at a time; switch
/// it at run time with [`FaultHandle::set_fault`](crate::FaultHandle::set_fault).
///
/// Faults fall in two groups:
///
/// * **Transport faults** act before the request reaches the wrapped node: [`Fault::Offline`],
///   [`Fault::Slow`], [`Fault::Hang`], [`Fault::Flaky`], [`Fault::CrashAfter`]. A request that
///   fails or hangs this way never reaches the wrapped node.
/// * **Byzantine faults** act on what the node answers: [`Fault::BadSignature`],
///   [`Fault::WrongKey`], [`Fault::Equivocate`], [`Fault::FalseBlobsNotFound`],
///   [`Fault::DontSendValidateVote`], [`Fault::DontSendConfirmVote`],
///   [`Fault::DontProcessValidated`]. Vote faults apply to every [`ChainInfoResponse`] the
///   node returns (also the one inside a [`BatchOutcome`]); when they change the response's
///   [`ChainInfo`], the response is signed again (see each variant) so that only the intended
///   misbehaviour is visible.
///
/// The fault is read once when a call starts: switching it affects the calls that start
/// afterwards, not those already running.
///
/// [`ChainInfoResponse`]: quorum_core::ChainInfoResponse
/// [`ChainInfo`]: quorum_core::ChainInfo
/// [`BatchOutcome`]: quorum_core::BatchOutcome
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Fault {
    /// Every request is forwarded and every answer returned unchanged.
    #[default]
    Honest,
    /// Every call fails at once with `NodeError::Transport(TransportErrorKind::Unavailable)`.
    Offline,
    /// Each call first waits this long (with `tokio::time::sleep`, so paused test time stays
    /// deterministic), then behaves honestly.
    Slow(Duration),
    /// No call ever answers (the future stays pending until it is dropped).
    Hang,
    /// Each call fails with `NodeError::Transport(TransportErrorKind::Io)` with this
    /// probability (clamped to `0.0..=1.0`; NaN counts as 0), drawn from the node's seeded
    /// generator; otherwise it behaves honestly.
    Flaky(f64),
    /// The next `n` calls behave honestly; the call after them finds the node crashed: the
    /// fault becomes [`Fault::Offline`] and stays so until it is switched again (a restart).
    /// [`FaultHandle::fault`](crate::FaultHandle::fault) shows how many honest calls are left.
    CrashAfter(u64),
    /// Votes in responses (`info.manager.pending`, `info.manager.timeout_vote`) and the
    /// response's own signature are corrupted (one bit of each signature flipped), so none of
    /// them verifies. The wrapped node processes requests normally.
    BadSignature,
    /// Votes in responses are signed again with another validator's key: each vote's
    /// `validator` becomes that key's public key (a valid vote, but not from the validator that
    /// was asked, as if it relayed someone else's). The response is signed with that key too.
    /// The key is the one given to
    /// [`MemoryNode::with_wrong_key`](crate::MemoryNode::with_wrong_key), else one derived from
    /// the seed.
    WrongKey,
    /// Votes in responses are replaced by votes of the same kind and round, signed with the
    /// node's real key, for a different value hash; the response is signed again with the real
    /// key. Without a key (see [`MemoryNode::new`](crate::MemoryNode::new)) no vote can be
    /// forged: the votes are removed instead.
    Equivocate,
    /// Block proposals and certificates (lite, confirmed, validated, timeout and batches) are
    /// not forwarded; the node answers `NodeError::BlobsNotFound` naming a blob id that the
    /// request does not need (drawn from the seeded generator). A batch answers a
    /// [`BatchOutcome`](quorum_core::BatchOutcome) that processed nothing and carries that
    /// error. Other calls behave honestly.
    FalseBlobsNotFound,
    /// Requests are processed, but a `Validated` vote is removed from `info.manager.pending`
    /// in every response (the response is signed again with the node's key).
    DontSendValidateVote,
    /// Requests are processed, but a `Confirmed` vote is removed from `info.manager.pending`
    /// in every response (the response is signed again with the node's key).
    DontSendConfirmVote,
    /// Validated certificates (full, or lite of kind `Validated`), and re-proposals that
    /// carry one, are not forwarded: the node answers with its current information about the
    /// chain (a plain chain info query to the wrapped node), without any vote, so it neither
    /// confirms nor locks through them. Other calls behave honestly.
    DontProcessValidated,
}

impl Fault {
    /// Whether the fault is honest behaviour ([`Fault::Honest`], or [`Fault::Slow`], which
    /// only delays honest answers).
    pub fn is_honest(&self) -> bool {
        matches!(self, Fault::Honest | Fault::Slow(_))
    }
}

/// What a [`MemoryNode`](crate::MemoryNode) does to the notifications it pushes (DESIGN
/// §4.7.1), beside its [`Fault`]; switch it with
/// [`FaultHandle::set_notification_fault`](crate::FaultHandle::set_notification_fault). It
/// is read for each envelope as it passes, so switching it acts on open subscriptions too.
///
/// The path faults ([`NotificationFault::Drop`], [`NotificationFault::Delay`],
/// [`NotificationFault::Replay`], [`NotificationFault::Reorder`]) are what anyone between the
/// validator and its subscriber can do to the unsigned envelopes, and say nothing about the
/// validator. [`NotificationFault::Forge`] and [`NotificationFault::Corrupt`] put a signature
/// the validator did not make; only [`NotificationFault::Lie`] has the validator itself sign
/// something false.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum NotificationFault {
    /// Every envelope passes unchanged.
    #[default]
    Honest,
    /// Each envelope is lost with this probability (clamped to `0.0..=1.0`), drawn from the
    /// node's seeded generator: the subscriber sees a gap in the sequence.
    Drop(f64),
    /// Each envelope is held this long first (`tokio::time::sleep`).
    Delay(std::time::Duration),
    /// Each notification is also sent once more, right after, as a new envelope numbered in
    /// order: a replay by someone on the path that renumbers the unsigned envelopes so that
    /// the sequence check cannot see it. The validator's signature is genuine.
    Replay,
    /// Envelopes are delivered in swapped pairs (the second of each pair first), with their
    /// own numbers.
    Reorder,
    /// Notifications are signed again with another key (the node's wrong key, see
    /// [`Fault::WrongKey`]).
    Forge,
    /// One bit of each notification's signature is flipped.
    Corrupt,
    /// After each notification the validator signs, with its own key, a false one: a block of
    /// the same chain 1,000 heights later with a made-up hash. The envelopes are numbered in
    /// order. Without the node's key nothing can be signed, and nothing is added.
    Lie,
}
