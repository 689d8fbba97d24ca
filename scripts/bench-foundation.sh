#!/usr/bin/env bash
# Measures wall time and peak RSS of `epic-audit-lab up` and of
# `epic-audit run` against that lab (lab already up), with /usr/bin/time -v,
# and the ACL DRYRUN calls and wall time of the access probe alone.
# Loopback only: a throw-away lab in a temp dir on 127.0.1.1-6, port $PORT.
# Usage: scripts/bench-foundation.sh [RUNS]   (env PORT, default 6479)
set -euo pipefail
runs=${1:-10}
source "$(dirname "$0")/bench-common.sh"
bench_setup

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" >"$work/out" 2>"$work/time" || true
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$work/time" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time" | awk '{print $NF}')
  printf '%-28s wall %-9s peak RSS %6s KiB\n' "$label" "$wall" "$rss"
}

measure "lab up" "$labbin" up --port "$port"
bench_config
for i in $(seq 1 "$runs"); do
  measure "run, all checks #$i" "$bin" run --env bench --config "$work/epic-audit.toml" --out "$work/run-$i"
done
for i in $(seq 1 "$runs"); do
  measure "run --skip performance #$i" "$bin" run --env bench --config "$work/epic-audit.toml" --skip performance --out "$work/skip-$i"
done
for i in $(seq 1 "$runs"); do
  measure "run --only cluster #$i" "$bin" run --env bench --config "$work/epic-audit.toml" --only cluster --out "$work/clu-$i"
done
grep -h '^verdict' "$work/out" || true
for i in $(seq 1 "$runs"); do
  measure "run --only access #$i" "$bin" run --env bench --config "$work/epic-audit.toml" --only access --out "$work/acc-$i"
done
python3 - "$work/acc-1/evidence.json" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
acl = [i for i in ev["items"] if i["probe"] == "acl" and "observation" in i["result"]]
calls = [i["result"]["observation"]["dryrun_calls"] for i in acl]
ms = [i["duration_ms"] for i in acl]
print(f"ACL DRYRUN calls: {sum(calls)} per run ({len(calls)} nodes x {calls[0] if calls else 0}); "
      f"access probe per node {min(ms)}-{max(ms)} ms (pipelined, nodes in parallel)")
PY
