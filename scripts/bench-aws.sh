#!/usr/bin/env bash
# Wall time of the AWS probe (real AWS SDK) against the lab's EC2/KMS
# emulator (moto on 127.0.0.1), as recorded in the evidence (duration_ms of
# the `aws` item) and as the whole `run` of the AWS-backed checks; and how
# long a run takes when the endpoint is down (connection refused, three
# attempts) or silent (accepts, never answers; connect/command 500 ms).
# Loopback only: a throw-away lab in a temp dir, port $PORT (default 6479).
# Usage: scripts/bench-aws.sh [RUNS]
set -euo pipefail
runs=${1:-10}
source "$(dirname "$0")/bench-common.sh"
bench_setup
"$labbin" up --port "$port" >/dev/null
bench_config
checks=network,encryption,backup,CLU-008,CLU-009,CLU-010

probe_ms() { python3 -c '
import json, sys
ev = json.load(open(sys.argv[1] + "/evidence.json"))
print(next(i["duration_ms"] for i in ev["items"] if i["probe"] == "aws"))' "$1"; }

echo "AWS-backed checks against the emulator ($runs runs):"
for i in $(seq 1 "$runs"); do
  t0=$(date +%s%N)
  "$bin" run --env bench --config "$work/epic-audit.toml" --only "$checks" --out "$work/aws-$i" >"$work/out" || true
  t1=$(date +%s%N)
  printf '  run #%-3s wall %5d ms   aws probe %4s ms   %s\n' "$i" $(((t1 - t0) / 1000000)) \
    "$(probe_ms "$work/aws-$i")" "$(grep '^verdict' "$work/out")"
done

# Endpoint down / silent: same config with another endpoint and short timeouts.
python3 - "$port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]) + 1001)); s.listen(64)
conns = []
t0 = time.time()
while time.time() - t0 < 120:
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except OSError: pass
PY
silent_pid=$!
sleep 0.5
for case in down silent; do
  if [ "$case" = down ]; then ep="http://127.0.0.1:$((port + 1002))"; else ep="http://127.0.0.1:$((port + 1001))"; fi
  sed -e "s|^endpoint = .*|endpoint = \"$ep\"|" "$work/epic-audit.toml" >"$work/$case.toml"
  cat >>"$work/$case.toml" <<EOT
[environments.bench.timeouts]
connect_ms = 500
command_ms = 500
probe_ms = 5000
EOT
  t0=$(date +%s%N)
  code=0
  "$bin" run --env bench --config "$work/$case.toml" --only "cluster,$checks" --out "$work/$case" >"$work/out" || code=$?
  t1=$(date +%s%N)
  printf 'endpoint %-6s: wall %5d ms, exit %s, %s\n' "$case" $(((t1 - t0) / 1000000)) "$code" "$(grep '^verdict' "$work/out")"
done
kill "$silent_pid" 2>/dev/null || true
