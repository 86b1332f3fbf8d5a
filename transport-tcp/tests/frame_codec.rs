//! Property tests of the frame decoder: arbitrary input never panics, and what is encoded decodes
//! back to the same envelopes however the bytes are split.
//!
//! Seeded, so a run is reproducible. The ignored test is the long, fuzz-style run (DESIGN §10):
//! `cargo test -p quorum-transport-tcp --test frame_codec -- --ignored` (100,000 cases each).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use quorum_transport_tcp::{Envelope, FrameCodec, TransportError};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

/// The servers' and clients' default largest frame: the one the protocol's limits derive.
const DEFAULT_FRAME: usize = quorum_core::Limits::DEFAULT.max_frame_length();

/// Seed of every run of these properties.
const SEED: u64 = 0x5155_4f52_554d; // "QUORUM"
/// Cases per property in a normal test run.
const DEFAULT_CASES: u32 = 256;
/// Cases per property in the long, ignored run.
const LONG_CASES: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Sample {
    Ping,
    Text(String),
    Numbers(Vec<u64>),
    Pair { left: Option<u32>, right: Vec<u8> },
}

fn message() -> impl Strategy<Value = Sample> {
    prop_oneof![
        Just(Sample::Ping),
        ".{0,40}".prop_map(Sample::Text),
        prop::collection::vec(any::<u64>(), 0..20).prop_map(Sample::Numbers),
        (
            any::<Option<u32>>(),
            prop::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(left, right)| Sample::Pair { left, right }),
    ]
}

fn max_frame_length() -> impl Strategy<Value = usize> {
    prop_oneof![Just(16usize), Just(1024), Just(DEFAULT_FRAME)]
}

/// Splits `bytes` at the given cut points (taken modulo the length).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|pair| bytes[pair[0]..pair[1]].to_vec())
        .collect()
}

/// Feeds `chunks` to a decoder one by one, then signals the end of the stream. Returns the
/// envelopes decoded before the first error, and that error.
fn feed(
    codec: &mut FrameCodec<Sample>,
    chunks: &[Vec<u8>],
) -> (Vec<Envelope<Sample>>, Option<TransportError>) {
    let mut buffer = BytesMut::new();
    let mut decoded = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(envelope)) => decoded.push(envelope),
                Ok(None) => break,
                Err(error) => return (decoded, Some(error)),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(envelope)) => decoded.push(envelope),
            Ok(None) => return (decoded, None),
            Err(error) => return (decoded, Some(error)),
        }
    }
}

fn arbitrary_input_never_panics(cases: u32) {
    let strategy = (
        max_frame_length(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
    );
    run(cases, strategy, |(max, chunks)| {
        let mut codec = FrameCodec::<Sample>::new(max);
        let (decoded, error) = feed(&mut codec, &chunks);
        let total: usize = chunks.iter().map(Vec::len).sum();
        // Every decoded frame used at least its prefix and the 8-byte request id.
        prop_assert!(decoded.len() * 12 <= total);
        if let Some(TransportError::FrameTooLarge {
            length,
            max: reported,
        }) = error
        {
            prop_assert_eq!(reported, max);
            prop_assert!(length > max as u64);
        }
        Ok(())
    });
}

fn encode_decode_round_trips(cases: u32) {
    let strategy = (
        prop::collection::vec((any::<u64>(), message()), 0..8),
        prop::collection::vec(any::<usize>(), 0..12),
    );
    run(cases, strategy, |(messages, cuts)| {
        let envelopes: Vec<Envelope<Sample>> = messages
            .into_iter()
            .map(|(request_id, body)| Envelope { request_id, body })
            .collect();
        let mut codec = FrameCodec::<Sample>::new(DEFAULT_FRAME);
        let mut wire = BytesMut::new();
        for envelope in &envelopes {
            codec.encode(envelope, &mut wire).unwrap();
        }
        let (decoded, error) = feed(&mut codec, &chunks(&wire, &cuts));
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, envelopes);
        Ok(())
    });
}

fn cut_short_stream_is_truncated(cases: u32) {
    let strategy = (message(), any::<usize>());
    run(cases, strategy, |(body, cut)| {
        let mut codec = FrameCodec::<Sample>::new(DEFAULT_FRAME);
        let wire = codec
            .encode_frame(&Envelope {
                request_id: 1,
                body,
            })
            .unwrap();
        // Anything from one byte to all but one byte of the frame.
        let keep = 1 + cut % (wire.len() - 1);
        let (decoded, error) = feed(&mut codec, &[wire[..keep].to_vec()]);
        prop_assert!(decoded.is_empty());
        prop_assert_eq!(error, Some(TransportError::Truncated));
        Ok(())
    });
}

/// Runs `test` on `cases` values of `strategy`, from the fixed seed.
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{failure}");
    }
}

#[test]
fn decoder_never_panics_on_arbitrary_chunks() {
    arbitrary_input_never_panics(DEFAULT_CASES);
}

#[test]
fn frames_round_trip_however_split() {
    encode_decode_round_trips(DEFAULT_CASES);
}

#[test]
fn stream_ending_mid_frame_is_truncated() {
    cut_short_stream_is_truncated(DEFAULT_CASES);
}

#[test]
#[ignore = "long: 100,000 cases per property"]
fn decoder_properties_hold_for_100_000_cases() {
    arbitrary_input_never_panics(LONG_CASES);
    encode_decode_round_trips(LONG_CASES);
    cut_short_stream_is_truncated(LONG_CASES);
}
