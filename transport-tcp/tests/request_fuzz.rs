//! Seeded mutation fuzzing of the validator protocol's decoders (DESIGN §6, §6.1, §10).
//!
//! A corpus of valid frames of every [`Request`] and [`Response`] variant is built with the
//! `quorum-node` test fixtures (a [`TestNet`] of real Workers: signed block proposals, lite,
//! confirmed, validated and timeout certificates, batches, chain-info queries and answers,
//! blobs, a committee inside `Operation::CreateCommittee`, `NodeError`s). Each case picks a frame
//! and mutates it deterministically (bit flips, interesting bytes, insertions, deletions,
//! truncations, splices of two frames, large and non-canonical ULEB128 lengths, repeated
//! regions, nudged integers, changed variant indices, forged length prefixes, frames around it)
//! with a ChaCha8 generator from a fixed seed and case number, then feeds the bytes to the
//! transport's real decode paths (a server's and a client's, through the public API only; see
//! `fuzz/src/lib.rs`, shared with the libFuzzer targets) and checks: no panic, both paths agree,
//! the decoder never reserves room for bytes that did not arrive, and every decoded envelope
//! re-encodes to exactly the bytes it was decoded from and decodes back to itself.
//!
//! Each case draws from its own stream of the generator (seed, case number), so a failing case
//! prints its case number, seed, recipe (the mutations applied) and bytes, and comes back with
//! the same seed and at least as many cases. A decoder panic found this way is to be minimised
//! into an `#[ignore = "known decoder panic: …"]` test here (none so far).
//!
//! * Normal run (in CI; [`NORMAL_CASES`] requests and as many responses):
//!   `cargo test -p quorum-transport-tcp --test request_fuzz`
//! * Long run ([`LONG_CASES`] of each by default, requests and responses on two threads;
//!   `QUORUM_FUZZ_CASES` sets the count, `QUORUM_FUZZ_SEED` another seed; a debug build runs
//!   the default in a few minutes on 2 cores, `--release` is faster once built):
//!   `QUORUM_FUZZ_CASES=1000000 cargo test -p quorum-transport-tcp --test request_fuzz --
//!   --ignored --nocapture long_mutation_run`
//! * Seed corpus for the libFuzzer targets (into `fuzz/corpus/<target>/`, or into
//!   `$QUORUM_FUZZ_CORPUS_DIR/<target>/`):
//!   `cargo test -p quorum-transport-tcp --test request_fuzz -- --ignored write_fuzz_corpus`

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use harness::{check_stream, Decoded, MAX_FRAME_BYTES};
use quorum_core::protocol::{Request, Response};
use quorum_core::{
    BatchOutcome, Blob, BlockHeight, BlockProposal, CertificateError, ChainInfoQuery,
    CommitteeError, CrossChainDelivery, CryptoError, CryptoHash, EncodedCommittee, Epoch, EventId,
    ExecutionError, IncomingBundle, Limit, Message, NodeError, Operation, Round, StreamId,
    Timestamp, TransportErrorKind, ValidatorNode, Violation,
};
use quorum_testkit::sample_blobs;
use quorum_testkit::{committee_of, genesis_description, validator_keys, TestNet};
use quorum_transport_tcp::{Envelope, FrameCodec, TransportError, LENGTH_PREFIX_LEN};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Seed of the normal run's mutations.
const SEED: u64 = 0x5155_4f52_5546_5a5a; // "QUORUFZZ"
/// Mutated requests in the normal run, and as many responses.
const NORMAL_CASES: u64 = 20_000;
/// Mutated requests in the long run, and as many responses, unless `QUORUM_FUZZ_CASES` says.
const LONG_CASES: u64 = 1_000_000;
/// Environment variable: the long run's number of cases per direction.
const CASES_VAR: &str = "QUORUM_FUZZ_CASES";
/// Environment variable: the long run's seed (decimal or `0x` hexadecimal).
const SEED_VAR: &str = "QUORUM_FUZZ_SEED";
/// Environment variable: where `write_fuzz_corpus` writes (default: the workspace's
/// `fuzz/corpus`).
const CORPUS_DIR_VAR: &str = "QUORUM_FUZZ_CORPUS_DIR";

/// Number of `Request` variants (checked by [`request_variant`]).
const REQUEST_VARIANTS: usize = 16;
/// Number of `Response` variants (checked by [`response_variant`]).
const RESPONSE_VARIANTS: usize = 17;

/// Validators of the test network.
const VALIDATORS: usize = 4;
/// Genesis chains of the test network: the admin chain, a sender and a receiver.
const CHAINS: u32 = 3;
/// The admin chain's index.
const ADMIN: usize = 0;
/// The sending chain's index.
const SENDER: usize = 1;
/// The receiving chain's index.
const RECEIVER: usize = 2;
/// Tokens the sender transfers to the receiver.
const TRANSFER_AMOUNT: u64 = 7;
/// Members of the committee that the admin chain creates.
const NEXT_COMMITTEE_SIZE: usize = 7;
/// Seed of that committee's keys.
const NEXT_COMMITTEE_SEED: u64 = 0x0e70_c401;

/// Most mutations stacked on one frame body.
const MAX_STACKED_MUTATIONS: u32 = 4;
/// Longest run of random bytes inserted at once, in bytes.
const MAX_INSERTED_BYTES: usize = 8;
/// Longest range deleted at once, in bytes.
const MAX_DELETED_BYTES: usize = 16;
/// Longest region repeated, in bytes.
const MAX_REPEATED_REGION_BYTES: usize = 64;
/// Most extra copies of a repeated region.
const MAX_REPEATS: usize = 16;
/// Bytes before an envelope's body: the 8-byte request id (its variant index follows).
const REQUEST_ID_BYTES: usize = 8;
/// Length of the head of a body (request id, variant index, first fields) that mutations
/// favour, in bytes: most length prefixes and tags of a message are near its start.
const HEAD_BYTES: usize = 48;
/// Bytes worth writing somewhere: boundaries of ULEB128 continuation, of tags and of `u8`.
const INTERESTING_BYTES: [u8; 8] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff];
/// Large lengths to write as ULEB128 (around BCS's 2^31 - 1 limit, a frame's maximum, the
/// largest values of 32 and 64 bits).
const LARGE_LENGTHS: [u64; 9] = [
    1 << 14,
    1 << 21,
    1 << 28,
    MAX_FRAME_BYTES as u64,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX as u64,
    1 << 35,
    u64::MAX,
];
/// How the client-side decoder reads a stream, in bytes per read (0: all at once).
const CHUNK_LENGTHS: [usize; 9] = [0, 0, 0, 1, 2, 3, 5, 64, 1024];

#[path = "request_fuzz/corpus.rs"]
mod corpus;

use corpus::*;

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// One input: the bytes of a stream and how they were made.
struct Mutant {
    wire: Vec<u8>,
    recipe: Vec<&'static str>,
}

/// A mutated stream from frame body `base`, with `other` to splice from and `seeds` to put
/// valid frames around it.
fn mutant(rng: &mut ChaCha8Rng, base: &[u8], other: &[u8], seeds: &[Vec<u8>]) -> Mutant {
    let mut recipe = Vec::new();
    let mut body = base.to_vec();
    for _ in 0..rng.gen_range(1..=MAX_STACKED_MUTATIONS) {
        recipe.push(mutate(rng, &mut body, other));
    }
    let mut wire = Vec::new();
    if rng.gen_ratio(1, 10) {
        recipe.push("after a valid frame");
        wire.extend(frame(&seeds[rng.gen_range(0..seeds.len())]));
    }
    match rng.gen_range(0..10) {
        0 => {
            recipe.push("the unmutated body's prefix");
            wire.extend(u32::try_from(base.len()).unwrap().to_be_bytes());
        }
        1 => {
            recipe.push("forged prefix");
            let length = u32::try_from(body.len()).unwrap();
            let forged = match rng.gen_range(0..6) {
                0 => u32::try_from(MAX_FRAME_BYTES).unwrap() + 1,
                1 => u32::try_from(MAX_FRAME_BYTES).unwrap(),
                2 => u32::MAX,
                3 => length + 1,
                4 => length.saturating_sub(1),
                _ => rng.gen(),
            };
            wire.extend(forged.to_be_bytes());
        }
        _ => wire.extend(u32::try_from(body.len()).unwrap().to_be_bytes()),
    }
    wire.extend(&body);
    if rng.gen_ratio(1, 10) {
        recipe.push("before a valid frame");
        wire.extend(frame(other));
    }
    Mutant { wire, recipe }
}

/// A position in `bytes` (or its end), favouring the head of the body.
fn position(rng: &mut ChaCha8Rng, len: usize) -> usize {
    if len > REQUEST_ID_BYTES && rng.gen_ratio(1, 3) {
        rng.gen_range(REQUEST_ID_BYTES..=len.min(REQUEST_ID_BYTES + HEAD_BYTES))
    } else {
        rng.gen_range(0..=len)
    }
}

/// The ULEB128 encoding of `value`, as BCS writes lengths and variant indices.
fn uleb128(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

/// Applies one random mutation to `bytes`; returns its name.
fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, other: &[u8]) -> &'static str {
    let len = bytes.len();
    match rng.gen_range(0..11) {
        0 if len > 0 => {
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..len);
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            "bits flipped"
        }
        1 if len > 0 => {
            let at = position(rng, len - 1);
            bytes[at] = INTERESTING_BYTES[rng.gen_range(0..INTERESTING_BYTES.len())];
            "interesting byte written"
        }
        2 => {
            let at = position(rng, len);
            let count = rng.gen_range(1..=MAX_INSERTED_BYTES);
            let inserted: Vec<u8> = (0..count).map(|_| rng.gen()).collect();
            bytes.splice(at..at, inserted);
            "random bytes inserted"
        }
        3 if len > 0 => {
            let at = rng.gen_range(0..len);
            let count = rng.gen_range(1..=MAX_DELETED_BYTES.min(len - at));
            bytes.drain(at..at + count);
            "range deleted"
        }
        4 if len > 0 => {
            bytes.truncate(rng.gen_range(0..len));
            "truncated"
        }
        5 => {
            let cut = rng.gen_range(0..=len);
            let from = rng.gen_range(0..=other.len());
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
            "spliced with another frame"
        }
        6 => {
            let at = position(rng, len);
            let length = uleb128(LARGE_LENGTHS[rng.gen_range(0..LARGE_LENGTHS.len())]);
            if rng.gen() {
                let end = (at + length.len()).min(len);
                bytes.splice(at..end, length);
                "large ULEB128 length written over"
            } else {
                bytes.splice(at..at, length);
                "large ULEB128 length inserted"
            }
        }
        7 if len > 0 => {
            // A byte that ends a ULEB128 (below 0x80) spelt with a needless continuation.
            let at = position(rng, len - 1);
            let low = bytes[at] & 0x7f;
            bytes.splice(at..=at, [low | 0x80, 0x00]);
            "non-canonical ULEB128 written"
        }
        8 if len > 0 => {
            let at = rng.gen_range(0..len);
            let region_len = rng.gen_range(1..=MAX_REPEATED_REGION_BYTES.min(len - at));
            let region = bytes[at..at + region_len].to_vec();
            let copies = rng.gen_range(1..=MAX_REPEATS);
            let repeated: Vec<u8> = region
                .iter()
                .copied()
                .cycle()
                .take(region_len * copies)
                .collect();
            bytes.splice(at + region_len..at + region_len, repeated);
            "region repeated"
        }
        9 if len >= 8 => {
            let at = rng.gen_range(0..=len - 8);
            let word: [u8; 8] = bytes[at..at + 8].try_into().unwrap();
            let delta = [1u64, 2, 0x80, 1 << 32, u64::MAX][rng.gen_range(0..5)];
            let nudged = u64::from_le_bytes(word).wrapping_add(delta);
            bytes[at..at + 8].copy_from_slice(&nudged.to_le_bytes());
            "little-endian integer nudged"
        }
        10 if len > REQUEST_ID_BYTES => {
            bytes[REQUEST_ID_BYTES] =
                rng.gen_range(0..=u8::try_from(REQUEST_VARIANTS + 2).unwrap());
            "variant index changed"
        }
        _ => {
            bytes.push(rng.gen());
            "byte appended"
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// What the mutants came to.
#[derive(Debug, Default)]
struct Stats {
    /// Mutants decoded.
    cases: u64,
    /// Envelopes decoded from mutants (valid frames put around them included).
    envelopes: u64,
    /// Decoded envelopes that are none of the valid corpus: new valid messages.
    novel: u64,
    /// Mutants that decoded whole, with no error.
    clean: u64,
    /// Mutants refused as an undecodable body.
    decode_errors: u64,
    /// Mutants refused as a truncated frame.
    truncated: u64,
    /// Mutants refused for an oversize length prefix.
    too_large: u64,
    /// Mutants refused for another reason (none expected).
    other_errors: u64,
}

impl Stats {
    /// Counts one mutant's outcome; `seeds` are the valid corpus's bodies.
    fn record<T: Serialize>(&mut self, decoded: &Decoded<T>, seeds: &HashSet<&[u8]>) {
        self.cases += 1;
        self.envelopes += decoded.envelopes.len() as u64;
        for envelope in &decoded.envelopes {
            if !seeds.contains(body(envelope).as_slice()) {
                self.novel += 1;
            }
        }
        match decoded.error {
            None => self.clean += 1,
            Some(TransportError::Decode(_)) => self.decode_errors += 1,
            Some(TransportError::Truncated) => self.truncated += 1,
            Some(TransportError::FrameTooLarge { .. }) => self.too_large += 1,
            Some(_) => self.other_errors += 1,
        }
    }
}

/// Runs `cases` mutants of `seeds` (frame bodies of `T` envelopes) from `seed` through the
/// decoders; panics with the failing case's details on the first property that fails.
fn fuzz<T>(what: &str, seeds: &[Vec<u8>], cases: u64, seed: u64) -> Stats
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let known: HashSet<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    let mut stats = Stats::default();
    for case in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(case);
        let base = &seeds[rng.gen_range(0..seeds.len())];
        let other = &seeds[rng.gen_range(0..seeds.len())];
        let input = mutant(&mut rng, base, other, seeds);
        let chunk_len = CHUNK_LENGTHS[rng.gen_range(0..CHUNK_LENGTHS.len())];
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            check_stream::<T>(&input.wire, chunk_len)
        }));
        match outcome {
            Ok(decoded) => stats.record(&decoded, &known),
            Err(panic) => {
                eprintln!(
                    "{what}: case {case} of seed {seed:#x} failed\n  recipe: {:?}\n  chunks of \
                     {chunk_len} bytes\n  {} bytes: {}",
                    input.recipe,
                    input.wire.len(),
                    hex(&input.wire)
                );
                resume_unwind(panic);
            }
        }
    }
    eprintln!("{what}: {stats:?}");
    stats
}

/// The workspace's root directory (this crate's parent).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks that the mutants reached every exit of the decoder: whole envelopes (new valid
/// messages among them), and each kind of refusal.
fn assert_reached_every_outcome(stats: &Stats) {
    assert!(stats.clean > 0, "no mutant decoded cleanly: {stats:?}");
    assert!(
        stats.novel > 0,
        "no mutant decoded to a new message: {stats:?}"
    );
    assert!(stats.decode_errors > 0, "no undecodable body: {stats:?}");
    assert!(stats.truncated > 0, "no truncated frame: {stats:?}");
    assert!(stats.too_large > 0, "no oversize prefix: {stats:?}");
    assert_eq!(stats.other_errors, 0, "{stats:?}");
}

/// A number from the environment (decimal or `0x` hexadecimal), if set.
fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|error| panic!("{name}={text}: {error}")))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_corpus_covers_every_variant_and_decodes_to_itself() {
    let corpus = corpus();
    let requests: BTreeSet<usize> = corpus
        .requests
        .iter()
        .map(|envelope| request_variant(&envelope.body))
        .collect();
    assert_eq!(requests.len(), REQUEST_VARIANTS, "request variants covered");
    for (ok, label) in [(true, "answers"), (false, "errors")] {
        let responses: BTreeSet<usize> = corpus
            .responses
            .iter()
            .filter(|envelope| envelope.body.error().is_none() == ok)
            .map(|envelope| response_variant(&envelope.body))
            .collect();
        // A pushed notification has no error form (its refusal is the subscription's).
        let expected = if ok {
            RESPONSE_VARIANTS
        } else {
            RESPONSE_VARIANTS - 1
        };
        assert_eq!(responses.len(), expected, "response {label} covered");
    }

    fn decodes_alone_and_together<T>(envelopes: &[Envelope<T>], bodies: &[Vec<u8>])
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let mut stream = Vec::new();
        for (envelope, body) in envelopes.iter().zip(bodies) {
            let decoded = check_stream::<T>(&frame(body), 0);
            assert_eq!(decoded.error, None);
            assert_eq!(decoded.envelopes.as_slice(), std::slice::from_ref(envelope));
            stream.extend(frame(body));
        }
        for chunk_len in CHUNK_LENGTHS {
            let decoded = check_stream::<T>(&stream, chunk_len);
            assert_eq!(decoded.error, None);
            assert_eq!(decoded.envelopes, envelopes);
        }
    }
    decodes_alone_and_together(&corpus.requests, &corpus.request_bodies);
    decodes_alone_and_together(&corpus.responses, &corpus.response_bodies);
    // The corpus holds large messages too: certificates, a committee, a 10,000-byte blob.
    let largest = corpus.request_bodies.iter().map(Vec::len).max().unwrap();
    assert!(largest > 10_000, "largest request body: {largest} bytes");
}

#[test]
fn mutated_requests_never_break_the_decoders() {
    let stats = fuzz::<Request>("requests", &corpus().request_bodies, NORMAL_CASES, SEED);
    assert_reached_every_outcome(&stats);
}

#[test]
fn mutated_responses_never_break_the_decoders() {
    let stats = fuzz::<Response>("responses", &corpus().response_bodies, NORMAL_CASES, SEED);
    assert_reached_every_outcome(&stats);
}

#[test]
fn a_frame_cut_anywhere_is_truncated() {
    let corpus = corpus();
    let body = &corpus.request_bodies[0];
    let wire = frame(body);
    for keep in 1..wire.len() {
        let decoded = check_stream::<Request>(&wire[..keep], 0);
        assert_eq!(decoded.envelopes, []);
        assert_eq!(
            decoded.error,
            Some(TransportError::Truncated),
            "{keep} bytes"
        );
    }
}

#[test]
#[ignore = "long: QUORUM_FUZZ_CASES cases per direction (default 1,000,000); use --release"]
fn long_mutation_run() {
    let cases = env_number(CASES_VAR).unwrap_or(LONG_CASES);
    let seed = env_number(SEED_VAR).unwrap_or(SEED);
    let corpus = corpus();
    let requests = std::thread::spawn(move || {
        fuzz::<Request>("requests", &corpus.request_bodies, cases, seed)
    });
    let responses = fuzz::<Response>("responses", &corpus.response_bodies, cases, seed);
    let requests = requests.join().unwrap_or_else(|panic| resume_unwind(panic));
    assert_reached_every_outcome(&requests);
    assert_reached_every_outcome(&responses);
}

#[test]
#[ignore = "writes the libFuzzer seed corpus into fuzz/corpus (or QUORUM_FUZZ_CORPUS_DIR)"]
fn write_fuzz_corpus() {
    let root = std::env::var_os(CORPUS_DIR_VAR).map_or_else(
        || workspace_root().join("fuzz").join("corpus"),
        PathBuf::from,
    );
    let corpus = corpus();
    let targets = [
        (
            "request_decoder",
            corpus
                .requests
                .iter()
                .map(|envelope| envelope.body.kind())
                .collect::<Vec<_>>(),
            &corpus.request_bodies,
        ),
        (
            "response_decoder",
            corpus
                .responses
                .iter()
                .map(|envelope| envelope.body.kind())
                .collect(),
            &corpus.response_bodies,
        ),
    ];
    for (target, kinds, bodies) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (index, (kind, body)) in kinds.iter().zip(bodies.iter()).enumerate() {
            let path = dir.join(format!("seed-{index:03}-{kind}"));
            std::fs::write(&path, frame(body)).unwrap();
        }
        eprintln!("wrote {} inputs into {}", bodies.len(), dir.display());
    }
    // What was written is what the targets decode.
    let written = std::fs::read(root.join("request_decoder/seed-000-BlockProposal")).unwrap();
    let decoded = FrameCodec::<Request>::decode_body(&written[LENGTH_PREFIX_LEN..]).unwrap();
    assert_eq!(decoded, corpus.requests[0]);
}
