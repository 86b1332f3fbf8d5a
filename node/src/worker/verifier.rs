//! Signatures of concurrent requests verified together (DESIGN §4.5.1, verify once).
//!
//! A validator serving many chains receives certificates and proposals of different chains at
//! the same moment. Each handler hands the signatures it must verify to the Worker's
//! [`Verifier`] and waits; one verification task takes everything queued and checks it as a
//! single ed25519 batch, in which a signature costs about half of a single check from six
//! signatures on. The task runs whenever something is queued and nothing is being verified,
//! so a lone request waits for nobody but the hop to that task (about 0.1 ms of quorum latency
//! on an idle machine, measured in BENCHMARKS.md); batches form when requests pile up, as
//! commits do in group commit (`store.rs`).
//!
//! A batch with a bad signature in it is not bisected across requests: each request's checks
//! are then verified again on their own, so that a peer sending bad signatures costs the
//! requests it shares a batch with at most one extra batch verification, never a bisection of
//! theirs. The verdict a request gets is exactly that of verifying its checks alone, but for
//! the residual case documented in `quorum_core::crypto` (a signer's own crafted `R`, whose
//! verdict depends on the batch).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use quorum_core::{verify_signatures, SignatureCheck};

/// Most signatures verified in one batch, and so in one job: a request with more is queued as
/// several jobs. Past it the queue is left for the next batch, so that one verification holds
/// a runtime thread for about a millisecond at most (ed25519 batches cost about 16 µs per
/// signature on this project's reference machine).
const MAX_BATCH_SIGNATURES: usize = 64;

/// The outcome of verifying a request's checks: the indices of the bad ones, if any.
type Outcome = Result<(), Vec<usize>>;

/// Verifies the signatures of concurrent requests together.
#[derive(Default)]
pub(crate) struct Verifier {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Whether a verification task runs.
    running: bool,
}

struct Job {
    checks: Vec<SignatureCheck>,
    reply: oneshot::Sender<Outcome>,
}

impl Verifier {
    /// Verifies `checks`, with those of other requests queued at the same moment. Returns the
    /// indices (in `checks`) of exactly the bad signatures, as
    /// [`verify_signatures`] alone would.
    pub(crate) async fn verify(self: &Arc<Self>, mut checks: Vec<SignatureCheck>) -> Outcome {
        let mut answers = Vec::new();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            while !checks.is_empty() {
                let rest = checks.split_off(checks.len().min(MAX_BATCH_SIGNATURES));
                let (reply, answer) = oneshot::channel();
                answers.push((checks.len(), answer));
                queue.jobs.push(Job { checks, reply });
                checks = rest;
            }
            !answers.is_empty() && !std::mem::replace(&mut queue.running, true)
        };
        if start {
            // A task of its own, even for a lone request: a request that gives up while
            // waiting (its future dropped) never strands the others queued behind it, and the
            // requests that arrive while it verifies join the next batch.
            tokio::spawn(run(self.clone()));
        }
        let mut bad = Vec::new();
        let mut offset = 0;
        for (len, answer) in answers {
            match answer.await {
                Ok(Ok(())) => {}
                Ok(Err(indices)) => bad.extend(indices.into_iter().map(|index| index + offset)),
                // The task is gone without answering (it cannot panic on any input): nothing
                // was verified, so nothing is accepted.
                Err(_) => return Err(Vec::new()),
            }
            offset += len;
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

/// Verifies what is queued, batch after batch, until the queue is empty.
async fn run(verifier: Arc<Verifier>) {
    loop {
        let jobs = {
            let mut queue = verifier
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if queue.jobs.is_empty() {
                queue.running = false;
                return;
            }
            take_batch(&mut queue.jobs)
        };
        verify_jobs(jobs);
        // Lets the handlers just answered, and new requests, run before the next batch.
        tokio::task::yield_now().await;
    }
}

/// Takes jobs from the front of `queued` up to [`MAX_BATCH_SIGNATURES`] signatures (at least
/// one job, which never holds more).
fn take_batch(queued: &mut Vec<Job>) -> Vec<Job> {
    let mut signatures = 0;
    let mut count = 0;
    for job in queued.iter() {
        if count > 0 && signatures + job.checks.len() > MAX_BATCH_SIGNATURES {
            break;
        }
        signatures += job.checks.len();
        count += 1;
    }
    queued.drain(..count).collect()
}

/// Verifies `jobs` as one batch and answers each; if the batch fails, each job's checks are
/// verified again on their own.
fn verify_jobs(jobs: Vec<Job>) {
    metrics::histogram!("quorum_signature_batch_size")
        .record(jobs.iter().map(|job| job.checks.len()).sum::<usize>() as f64);
    if let [job] = jobs.as_slice() {
        let outcome = verify_signatures(&job.checks);
        for job in jobs {
            let _ = job.reply.send(outcome.clone());
        }
        return;
    }
    let all: Vec<SignatureCheck> = jobs.iter().flat_map(|job| job.checks.clone()).collect();
    let together = verify_signatures(&all);
    for job in jobs {
        let outcome = match together {
            Ok(()) => Ok(()),
            Err(_) => verify_signatures(&job.checks),
        };
        // The request may have given up; its answer is then dropped.
        let _ = job.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use quorum_core::{CryptoHash, PreparedKey, ValidatorSecretKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// `count` checks signed by distinct keys; those at `bad` sign another hash.
    fn checks(seed: u64, count: usize, bad: &[usize]) -> Vec<SignatureCheck> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|index| {
                let key = ValidatorSecretKey::generate(&mut rng);
                let hash = CryptoHash([index as u8; 32]);
                let signed = if bad.contains(&index) {
                    CryptoHash([200; 32])
                } else {
                    hash
                };
                let signature = key.sign_hash(&signed);
                let prepared = PreparedKey::decode(key.public().as_bytes()).unwrap();
                SignatureCheck::new(prepared, hash, signature)
            })
            .collect()
    }

    /// Requests that queue while a verification runs are verified together by the task, and
    /// each gets exactly its own bad signatures (one request's bad signature refuses no other).
    #[tokio::test]
    async fn queued_requests_get_exactly_their_own_bad_signatures() {
        let verifier = Arc::new(Verifier::default());
        // As if the task were verifying a batch right now.
        verifier.queue.lock().unwrap().running = true;
        let requests = [
            (checks(1, 3, &[]), Ok(())),
            (checks(2, 4, &[1, 3]), Err(vec![1, 3])),
            (checks(3, 1, &[0]), Err(vec![0])),
            (checks(4, 70, &[]), Ok(())),
            // More than a batch: queued as three jobs, the bad ones found in each.
            (checks(8, 150, &[0, 70, 149]), Err(vec![0, 70, 149])),
            (checks(5, 2, &[]), Ok(())),
        ];
        let handles: Vec<_> = requests
            .iter()
            .map(|(checks, _)| {
                let (verifier, checks) = (verifier.clone(), checks.clone());
                tokio::spawn(async move { verifier.verify(checks).await })
            })
            .collect();
        let total: usize = requests.iter().map(|(checks, _)| checks.len()).sum();
        let queued = |verifier: &Verifier| -> usize {
            let queue = verifier.queue.lock().unwrap();
            queue.jobs.iter().map(|job| job.checks.len()).sum()
        };
        while queued(&verifier) < total {
            tokio::task::yield_now().await;
        }
        // The batch in progress ends and the task takes the queue.
        tokio::spawn(run(verifier.clone()));
        for ((_, expected), handle) in requests.iter().zip(handles) {
            assert_eq!(&handle.await.unwrap(), expected);
        }
        // The task ends once the queue is empty; a later request starts another.
        for _ in 0..10 {
            if !verifier.queue.lock().unwrap().running {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(!verifier.queue.lock().unwrap().running);
        assert_eq!(verifier.verify(checks(6, 2, &[0])).await, Err(vec![0]));
        assert_eq!(verifier.verify(checks(7, 2, &[])).await, Ok(()));
    }

    #[test]
    fn a_batch_takes_whole_jobs_up_to_the_signature_cap_and_at_least_one() {
        let job = |n| Job {
            checks: checks(9, n, &[]),
            reply: oneshot::channel().0,
        };
        let mut queued = vec![job(100), job(1)];
        assert_eq!(take_batch(&mut queued).len(), 1);
        let mut queued = vec![job(30), job(30), job(10), job(1)];
        let batch = take_batch(&mut queued);
        assert_eq!(batch.len(), 2);
        assert_eq!(queued.len(), 2);
    }
}
