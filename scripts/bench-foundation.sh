#!/usr/bin/env bash
# Measures wall time and peak RSS of `epic-audit lab up` and of
# `epic-audit run` against that lab (lab already up), with /usr/bin/time -v,
# and the ACL DRYRUN calls and wall time of the access probe alone.
# Loopback only: a throw-away lab in a temp dir on 127.0.1.1-6, port $PORT.
# Usage: scripts/bench-foundation.sh [RUNS]   (env PORT, default 6479)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
port=${PORT:-6479}
bash scripts/setup.sh /usr/bin/time:time
cargo build --release --locked -q
bin=$PWD/target/release/epic-audit
work=$(mktemp -d)
export EPIC_AUDIT_LAB_DIR=$work/lab
trap '"$bin" lab down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" >"$work/out" 2>"$work/time" || true
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$work/time" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time" | awk '{print $NF}')
  printf '%-28s wall %-9s peak RSS %6s KiB\n' "$label" "$wall" "$rss"
}

measure "lab up" "$bin" lab up --port "$port"
cat >"$work/epic-audit.toml" <<EOT
[environments.bench]
seeds = ["127.0.1.1:$port"]
signing_key = "\${LAB_DIR}/signing/epic-audit-signing.key"
[environments.bench.tls]
ca = "\${LAB_DIR}/pki/ca.crt"
client_cert = "\${LAB_DIR}/pki/client.crt"
client_key = "\${LAB_DIR}/pki/client.key"
[environments.bench.users.admin_user]
password_file = "\${LAB_DIR}/secrets/admin_user.pass"
[environments.bench.users.app_user]
password_file = "\${LAB_DIR}/secrets/app_user.pass"
[environments.bench.users.dev_user]
password_file = "\${LAB_DIR}/secrets/dev_user.pass"
[environments.bench.monitoring]
exporter_port = $((port + 2742))
EOT
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
