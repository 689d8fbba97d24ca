#!/usr/bin/env bash
# The container image's size and its start-to-verdict time on the compose
# lab, beside the host binary's on the same lab (docs/benchmarks.md).
#
# Usage: scripts/bench-image.sh [RUNS]      (default 3 runs of each)
# Builds the release binary and the image (scripts/build-image.sh), starts
# the compose lab (`epic-audit-lab up --compose`), audits it RUNS times with
# `docker run` and RUNS times with target/release/epic-audit, alternating,
# prints each verdict line and wall time, and stops the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
export EPIC_AUDIT_MOTO_SERVER="${EPIC_AUDIT_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
bash scripts/build-image.sh
cargo build --release --locked -p epic-audit-lab -q
lab=target/release/epic-audit-lab
export LAB_DIR="${EPIC_AUDIT_LAB_DIR:-${TMPDIR:-/tmp}/epic-audit-lab}"
"$lab" up --compose >/dev/null
trap '"$lab" down >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
out="$(mktemp -d /tmp/epic-audit-bench-image.XXXXXX)"
cp epic-audit.toml "$out/"
size="$(docker image inspect -f '{{.Size}}' epic-audit:latest)"
echo "image epic-audit:latest: $(awk -v s="$size" 'BEGIN{printf "%.1f MB", s/1e6}') (binary $(stat -c %s target/release/epic-audit | awk '{printf "%.1f MB", $1/1e6}'))"
# The checks that did not pass in run directory $1, e.g. `PERF-001 warn`.
not_passed() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]+"/report.json")); print(", ".join(c["id"]+" "+c["outcome"] for c in r["checks"] if c["outcome"] not in ("pass","waived")) or "-")' "$out/$1"
}
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >"$out/last.txt" 2>&1 || true; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'; }
for i in $(seq 1 "$runs"); do
  t=$(secs docker run --rm --network host --user "$(id -u):$(id -g)" \
        -v "$out:/work" -w /work -v "$LAB_DIR:$LAB_DIR:ro" -e LAB_DIR \
        epic-audit:latest run --env compose --out "image-$i")
  echo "image run $i: ${t} s  $(grep '^verdict:' "$out/last.txt")  [$(not_passed "image-$i")]"
  t=$(secs bash -c "cd '$out' && '$PWD/target/release/epic-audit' run --env compose --out host-$i")
  echo "host  run $i: ${t} s  $(grep '^verdict:' "$out/last.txt")  [$(not_passed "host-$i")]"
done
