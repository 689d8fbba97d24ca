#!/usr/bin/env bash
# The latency probe next to redis-benchmark on the same lab master, same
# command (HGETALL of a session hash), TLS, same user (app_user), one
# connection. redis-benchmark is closed loop (it has no rate limit), so the
# probe is run twice: at its default 1000 ops/s and at the rate
# redis-benchmark achieved ("same load"). Also the probe's CPU per op.
# Loopback only: a throw-away lab on 127.0.1.1-6, port $PORT (default 6479).
# Usage: scripts/bench-latency.sh
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"
bench_setup
"$labbin" up --port "$port" >/dev/null
bench_config
tlsargs=(--tls --cacert "$lab/pki/ca.crt" --cert "$lab/pki/client.crt" --key "$lab/pki/client.key")
cli() { redis-cli "${tlsargs[@]}" -h 127.0.1.1 -p "$port" --user admin_user --pass "$(cat "$lab/secrets/admin_user.pass")" --no-auth-warning "$@"; }
# A session key on master 1 (slots 0-5460).
for i in $(seq 0 1000); do
  slot=$(cli CLUSTER KEYSLOT "{bench$i}")
  if [ "$slot" -le 5460 ]; then key="session:epic-audit-bench:{bench$i}"; break; fi
done
cli HSET "$key" user_id u00001 portal mychart last_activity 0 >/dev/null
cli EXPIRE "$key" 300 >/dev/null

probe() { # rate duration_ms masters write_every [max_in_flight] -> prints "p50 p99 raw_p50 raw_p99 cpu_s ops"
  local rate=$1 dur=$2 masters=$3 we=$4 mif=${5:-0} pol="$work/pol-$1-$3-$4-${5:-0}"
  mkdir -p "$pol"
  for f in checks/*.toml; do cp "$f" "$pol/"; done
  local only='[]'
  [ "$masters" = one ] && only="[\"127.0.1.1:$port\"]"
  sed -i "s/^rate_per_master = .*/rate_per_master = $rate/; s/^duration_ms = .*/duration_ms = $dur/; s/^max_ops = .*/max_ops = 1000000/; s/^masters = .*/masters = $only/; s/^write_every = .*/write_every = $we/" "$pol/performance.toml"
  echo "max_in_flight = $mif" >>"$pol/performance.toml"
  /usr/bin/time -f '%U %S' -o "$work/cpu" "$bin" run --env bench --config "$work/epic-audit.toml" --policy "$pol" \
    --only performance --out "$work/run-$rate-$masters-$we-$mif" >/dev/null || true
  python3 - "$work/run-$rate-$masters-$we-$mif/evidence.json" "$work/cpu" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
u, s = map(float, open(sys.argv[2]).read().split("\n")[-2].split())
ops = 0
for it in ev["items"]:
    o = it["result"].get("observation")
    if not o: continue
    ops += o["completed_ops"]
    if it["subject"].startswith("127.0.1.1:"):
        r, c = o["reads"], o
print(r["p50_us"], r["p99_us"], c["raw"]["p50_us"], c["raw"]["p99_us"], round(u + s, 3), ops)
PY
}
echo "redis-benchmark: HGETALL $key on 127.0.1.1:$port, TLS, app_user, 1 client, 20000 requests"
redis-benchmark "${tlsargs[@]}" -h 127.0.1.1 -p "$port" --user app_user -a "$(cat "$lab/secrets/app_user.pass")" \
  -n 20000 -c 1 -P 1 --csv HGETALL "$key" 2>/dev/null | tail -1 > "$work/rb.csv"
read -r rps p50 p99 < <(python3 -c "
import csv,sys
row=list(csv.reader(open('$work/rb.csv')))[-1]
print(round(float(row[1])), round(float(row[4])*1000), round(float(row[6])*1000))")
echo "  rps $rps  p50 ${p50} µs  p99 ${p99} µs"
# The last run is a closed loop (max_in_flight = 1) at the same rate,
# exactly redis-benchmark's model (-c 1 -P 1): its raw figures compare the
# clients; open-loop figures at that load include queueing by design.
for run in "1000 all 2 0" "1000 one 0 0" "$rps one 0 0" "$rps one 0 1"; do
  set -- $run
  rate=$1 masters=$2 we=$3 mif=$4
  read -r ep50 ep99 rp50 rp99 cpu ops < <(probe "$rate" 5000 "$masters" "$we" "$mif")
  echo "epic-audit probe at $rate ops/s ($masters master(s), write_every=$we, max_in_flight=$mif, 5 s + 1 s warm-up), HGETALL on master 1:"
  echo "  corrected p50 ${ep50} µs  p99 ${ep99} µs | raw p50 ${rp50} µs  p99 ${rp99} µs | CPU ${cpu} s for ${ops} ops = $(python3 -c "print(round($cpu*1e6/$ops,1))") µs/op"
done
cli DEL "$key" >/dev/null
