#!/usr/bin/env bash
# Times the compose lab from nothing: the base image (scripts/docker-base.sh,
# debootstrap + docker import), the lab's three images (docker compose
# build), `epic-audit-lab up --compose` and `down`, and an audit between.
#
# Usage: scripts/bench-compose.sh [--keep-base]
#   --keep-base  reuse debian:bookworm-slim (time only the lab images)
# Removes the lab images (and, without --keep-base, the base image) first.
# Needs root (debootstrap), Docker with Compose, and a built workspace
# (target/release, else target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release; [ -x "$bin/epic-audit-lab" ] || bin=target/debug
export EPIC_AUDIT_LAB_DIR="${EPIC_AUDIT_LAB_DIR:-$(mktemp -d /tmp/epic-audit-bench-compose.XXXXXX)/lab}"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

docker rmi -f epic-audit-lab/redis:bookworm epic-audit-lab/exporter:bookworm epic-audit-lab/emulator:bookworm >/dev/null 2>&1 || true
if [ "${1:-}" != "--keep-base" ]; then
  docker rmi -f debian:bookworm-slim >/dev/null 2>&1 || true
  t0=$(now); bash scripts/docker-base.sh >/dev/null; t1=$(now)
  echo "base image (debootstrap + import): $(secs "$t0" "$t1") s"
fi
t0=$(now)
"$bin/epic-audit-lab" up --compose >/dev/null   # builds the three images first
t1=$(now)
echo "epic-audit-lab up --compose (incl. first image build): $(secs "$t0" "$t1") s"
"$bin/epic-audit-lab" down >/dev/null
t0=$(now); "$bin/epic-audit-lab" up --compose >/dev/null; t1=$(now)
echo "epic-audit-lab up --compose (images cached): $(secs "$t0" "$t1") s"
t0=$(now)
"$bin/epic-audit" run --env compose --out "$EPIC_AUDIT_LAB_DIR/../run" | grep '^verdict' || true
t1=$(now)
echo "epic-audit run --env compose ($bin): $(secs "$t0" "$t1") s"
t0=$(now); "$bin/epic-audit-lab" down >/dev/null; t1=$(now)
echo "epic-audit-lab down: $(secs "$t0" "$t1") s"
