#!/usr/bin/env bash
# Writes the libFuzzer seed corpus (valid request and response frames of every variant, built by
# the stable fuzz test) into fuzz/corpus/<target>/, or into $QUORUM_FUZZ_CORPUS_DIR/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p quorum-transport-tcp --test request_fuzz -- --ignored --exact write_fuzz_corpus
