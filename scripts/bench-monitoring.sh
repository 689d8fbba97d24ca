#!/usr/bin/env bash
# What the monitoring checks add to an audit of the lab: the Prometheus
# probe's own time (duration_ms of the `monitoring.prometheus` item:
# targets, rules, Alertmanagers, runtime info, /-/ready of the
# Alertmanager) and the exporter scrape with the leak count, against the
# lab's real Prometheus 2.42, Alertmanager and prometheus-redis-exporter
# 1.45; and the wall time of `run` with and without MON-003..006.
# Loopback only: a throw-away lab in a temp dir, port $PORT (default 6479).
# Usage: scripts/bench-monitoring.sh [RUNS]
set -euo pipefail
runs=${1:-10}
source "$(dirname "$0")/bench-common.sh"
bench_setup
"$labbin" up --port "$port" --no-aws >/dev/null
bench_config
base=data
with=data,MON-003,MON-004,MON-005,MON-006

probe_ms() { python3 -c '
import json, sys
ev = json.load(open(sys.argv[1] + "/evidence.json"))
d = [i["duration_ms"] for i in ev["items"] if i["probe"] == sys.argv[2]]
print(max(d) if d else "-")' "$1" "$2"; }

wall() { # name checks -> prints wall ms
  local t0 t1
  t0=$(date +%s%N)
  "$bin" run --env bench --config "$work/epic-audit.toml" --only "$2" --unsigned --out "$work/$1" >"$work/out" || true
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

echo "monitoring checks on the lab ($runs runs each, alternating):"
printf '  %-4s %-22s %-22s %-18s %s\n' run "wall: data only" "wall: data+MON-003..6" "prometheus probe" "slowest exporter scrape"
for i in $(seq 1 "$runs"); do
  a=$(wall "base-$i" "$base")
  b=$(wall "with-$i" "$with")
  printf '  #%-3s %8d ms %22d ms %12s ms %18s ms   %s\n' "$i" "$a" "$b" \
    "$(probe_ms "$work/with-$i" monitoring.prometheus)" \
    "$(probe_ms "$work/with-$i" monitoring.exporter)" "$(grep '^verdict' "$work/out")"
done
