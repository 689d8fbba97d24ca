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
# Debian 13's redis-server 8 and valkey-server 8 for tests/lab_servers.rs
# (a debootstrap root in .servers/trixie, made once; about 80 s).
echo "== other server builds (scripts/server-builds.sh)"
bash scripts/server-builds.sh
echo "== cargo build --workspace (the lab binary the CLI tests run beside epic-audit)"
cargo build --workspace --locked
# The compose lab tests (tests/compose_lab.rs) need Docker with Compose and
# the base image debian:bookworm-slim, built here from Debian's archive when
# it is missing (nothing can be pulled on the project's machines).
if docker info >/dev/null 2>&1 && { docker compose version || docker-compose version; } >/dev/null 2>&1; then
  echo "== compose lab: base image (scripts/docker-base.sh)"
  bash scripts/docker-base.sh
  # Projects left by a test process that was killed (its Drop never ran).
  for p in $(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^eal-test-' | sort -u); do
    pid="${p#eal-test-}"; pid="${pid%%-*}"
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "removing the leftover compose project $p"
      docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f >/dev/null
      docker network rm "${p}_lab" >/dev/null 2>&1 || true
    fi
  done
  export EPIC_AUDIT_COMPOSE_TESTS=1
else
  echo "== compose lab tests SKIPPED: Docker with Compose is not available here (docker info failed)"
  export EPIC_AUDIT_COMPOSE_TESTS=0
fi
# A failing test's panic message last, where a CI log's tail shows it (a
# backtrace of twenty frames would push it out of view); set
# EPIC_AUDIT_TEST_BACKTRACE=1 for the frames.
export RUST_BACKTRACE="${EPIC_AUDIT_TEST_BACKTRACE:-0}"
echo "== cargo test --workspace"
cargo test --workspace --all-targets --locked
