#!/usr/bin/env bash
# Longer runs of the structured mutation fuzzers in tests/fuzz_inputs.rs
# (evidence.json, RESP replies, TLS answers, certificates, CLUSTER NODES).
# Usage: scripts/fuzz.sh [ITERATIONS]   (default 20000 per target; the
# test suite runs 300). Seeds are deterministic: a failure names its seed.
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-20000}"
export EPIC_AUDIT_FUZZ_ITERS="$iters"
echo "== fuzzing with $iters iterations per target (evidence), 4x for RESP/TLS/node lists"
/usr/bin/time -f "fuzz: %e s wall, %M KB max RSS" \
  cargo test --release --locked --test fuzz_inputs -- --nocapture 2>&1 \
  | grep -E "^(evidence|resp):|test result|panicked|seed|fuzz:"
