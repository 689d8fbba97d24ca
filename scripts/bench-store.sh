#!/usr/bin/env bash
# Time to keep a signed run in the evidence store, against the S3 emulator
# (moto, started here on a free 127.0.0.1 port and stopped by pid): RUNS
# runs of the recorded lab evidence (default 20) are signed by `evaluate
# --store` one after another, each uploading its 9 files with Object Lock
# and SHA-256 checksums, reading them back and advancing the chain head.
# Prints the store step's own time (from the `stored:` line) and the whole
# command's wall time, min / median / max; then `export --from` the store.
# Usage: scripts/bench-store.sh [RUNS]   (EPIC_AUDIT_BIN=PATH: measure that
# binary instead of building target/release/epic-audit)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
bash scripts/setup.sh >/dev/null
if [ -n "${EPIC_AUDIT_BIN:-}" ]; then
  bin=$(readlink -f "$EPIC_AUDIT_BIN")
else
  cargo build --release --locked -q -p epic-audit --bin epic-audit
  bin=$PWD/target/release/epic-audit
fi
moto=${EPIC_AUDIT_MOTO_SERVER:-$PWD/.venv/bin/moto_server}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "$PWD/.venv/bin/python" - "$port" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
s3.create_bucket(Bucket="bench-evidence", ObjectLockEnabledForBucket=True)
PY
cat >"$work/epic-audit.toml" <<EOF
[environments.local]
seeds = ["127.0.0.1:7000"]
audit_user = "auditor"
[environments.local.tls]
ca = "ca.crt"
client_cert = "c.crt"
client_key = "c.key"
[environments.local.users.auditor]
password_env = "EPIC_AUDIT_BENCH_NEVER_SET"
[environments.local.aws]
region = "us-east-1"
endpoint = "http://127.0.0.1:$port"
credentials = "emulator"
discovery = { tag = "redis-cluster", value = "bench" }
EOF
"$bin" keygen --out "$work/keys" >/dev/null
python3 - "$work" "$runs" <<'PY'
import json, sys, datetime
work, n = sys.argv[1], int(sys.argv[2])
ev = json.load(open("fixtures/evidence/lab-good.json"))
t0 = datetime.datetime(2026, 10, 1, 6, 0, tzinfo=datetime.timezone.utc)
for d in range(n):
    t = t0 + datetime.timedelta(days=d)
    e = dict(ev)
    e["started_at"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    e["finished_at"] = (t + datetime.timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    e["run_id"] = t.strftime("%Y%m%dT%H%M%SZ")
    json.dump(e, open(f"{work}/{e['run_id']}.json", "w"))
PY
store=() wall=()
cd "$work"
for f in 2026*.json; do
  id=$(basename "$f" .json)
  t0=$(date +%s.%N)
  # The verdict's exit code (1 for a failing check) is not the measure.
  out=$("$bin" evaluate "$f" --signing-key keys/epic-audit-signing.key --out "reports/local/$id" \
    --store s3://bench-evidence/epic-audit) || true
  t1=$(date +%s.%N)
  line=$(grep '^stored: ' <<<"$out") || { echo "not stored: $out" >&2; exit 1; }
  store+=("$(sed -E 's/.*; ([0-9]+) ms\); chain.*/\1/' <<<"$line")")
  wall+=("$(python3 -c "print(f'{$t1 - $t0:.2f}')")")
done
echo "example: $line"
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "min %s, median %s, max %s (n=%d)", a[1], a[int((NR+1)/2)], a[NR], NR}'; }
echo "store step (upload 9 objects, read back, advance head): $(stats "${store[@]}") ms"
echo "whole evaluate --store command: $(stats "${wall[@]}") s"
/usr/bin/time -f "export --from the store: %e s wall, %M KB peak RSS" "$bin" export --env local --quarter 2026-Q4 \
  --from s3://bench-evidence/epic-audit --signing-key keys/epic-audit-signing.key --out q4.tar.gz | grep -E '^(fetched|exported)' || true
