#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
# formatting, lints, unit tests, and integration tests that start real
# redis-server labs on loopback (each on its own port, stopped by pid).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EPIC_AUDIT_MOTO_SERVER="${EPIC_AUDIT_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build --workspace (the lab binary the CLI tests run beside epic-audit)"
cargo build --workspace --locked
echo "== cargo test --workspace"
cargo test --workspace --all-targets --locked
