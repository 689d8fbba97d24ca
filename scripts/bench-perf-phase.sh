#!/usr/bin/env bash
# PERF-001 from full `run --env local` audits, two builds interleaved on the
# same running lab: e.g. before and after the latency probe got its own
# phase (fdc7f16). Each build is a checkout whose epic-audit.toml and
# checks/ it uses, built with `cargo build --release`:
#
#   git worktree add /tmp/before cf6cdb6 && (cd /tmp/before && cargo build --release)
#   target/release/epic-audit-lab up
#   bash scripts/bench-perf-phase.sh /tmp/before . [RUNS]
#
# Prints per run and master the corrected p50/p90/p99/p99.9 and the
# outcome. Each run starts after 10 s of quiet. Loopback lab only.
set -euo pipefail
a=${1:?usage: bench-perf-phase.sh CHECKOUT_A CHECKOUT_B [RUNS]}
b=${2:?usage: bench-perf-phase.sh CHECKOUT_A CHECKOUT_B [RUNS]}
runs=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$runs"); do
  for side in a b; do
    if [ "$side" = a ]; then co=$a; else co=$b; fi
    dir="$out/$side-$i"
    sleep 10
    set +e
    "$co/target/release/epic-audit" run --env local --config "$co/epic-audit.toml" --out "$dir" >/dev/null 2>&1
    code=$?
    set -e
    echo "$side ($co) run $i: exit $code"
    [ -f "$dir/report.json" ] || { echo "    no report (exit $code)"; continue; }
    python3 - "$dir/report.json" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
c = next(c for c in r["checks"] if c["id"] == "PERF-001")
for s in c["subjects"]:
    m = re.search(r"p50 [^,]*, p90 [^,]*, p99 [^,]*, p99\.9 [^,]*", s["observed"])
    print("   ", s["subject"], s["outcome"], m.group(0) if m else s["observed"][:120])
PY
  done
done
