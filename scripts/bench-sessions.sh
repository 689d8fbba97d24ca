#!/usr/bin/env bash
# Time of the session-TTL scan (DATA-005) over N session keys per master
# (default 100000, i.e. 300000 on the 3 masters), and the keys/s achieved.
# Loopback only: a throw-away lab on 127.0.1.1-6, port $PORT (default 6479).
# Usage: scripts/bench-sessions.sh [KEYS_PER_MASTER]
set -euo pipefail
per=${1:-100000}
source "$(dirname "$0")/bench-common.sh"
bench_setup
"$labbin" up --port "$port" >/dev/null
bench_config
tls=(--tls --cacert "$lab/pki/ca.crt" --cert "$lab/pki/client.crt" --key "$lab/pki/client.key")
# Seed: on each master, keys with a hash tag of that master's slots, via --pipe.
for m in 1 2 3; do
  ip=127.0.1.$m
  cli=(redis-cli "${tls[@]}" -h "$ip" -p "$port" --user admin_user --pass "$(cat "$lab/secrets/admin_user.pass")" --no-auth-warning)
  for i in $(seq 0 5000); do
    slot=$("${cli[@]}" CLUSTER KEYSLOT "{m$m-$i}")
    owner=$("${cli[@]}" CLUSTER NODES | awk -v s="$slot" '$3 ~ /master/ { for (f = 9; f <= NF; f++) { split($f, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) print $2 } }' | cut -d@ -f1)
    if [ "$owner" = "$ip:$port" ]; then tag="m$m-$i"; break; fi
  done
  python3 - "$tag" "$per" <<'PY' | "${cli[@]}" --pipe >/dev/null
import sys
tag, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode()
        out.write(b"$%d\r\n%s\r\n" % (len(x), x))
for i in range(n):
    k = "session:{%s}:%08d" % (tag, i)
    cmd("HSET", k, "user_id", "u%d" % i, "portal", "bench", "last_activity", "0")
    cmd("EXPIRE", k, "1800")
PY
  echo "master $ip: $("${cli[@]}" DBSIZE) keys"
done
for r in 1 2 3; do
  /usr/bin/time -f '%e s wall, %M KiB peak RSS' -o "$work/t" "$bin" run --env bench --config "$work/epic-audit.toml" \
    --only DATA-005 --out "$work/run-$r" >/dev/null || true
  python3 - "$work/run-$r/evidence.json" "$(tail -1 "$work/t")" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
rows = [(i["subject"], i["result"]["observation"]["scanned"], i["duration_ms"], i["result"]["observation"]["complete"])
        for i in ev["items"] if i["probe"] == "data.sessions" and "observation" in i["result"]]
total = sum(r[1] for r in rows); slowest = max(r[2] for r in rows)
print(f"run: {total} keys on {len(rows)} masters, complete={all(r[3] for r in rows)}, slowest master {slowest} ms "
      f"({total / (slowest / 1000):,.0f} keys/s across masters in parallel); whole command {sys.argv[2]}")
PY
done
