#!/usr/bin/env bash
# Time and size of a quarterly export: RUNS signed runs spread evenly over
# 2026-Q4 (default 92, one a day; judged offline by `evaluate` from the
# recorded lab evidence with its timestamps moved), then `export` and
# `verify` of the archive. No network at all.
# Usage: scripts/bench-export.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-92}
cargo build --release --locked -q
bin=$PWD/target/release/epic-audit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" keygen --out "$work/keys" >/dev/null
python3 - "$work" "$runs" <<'PY'
import json, sys, datetime
work, n = sys.argv[1], int(sys.argv[2])
ev = json.load(open("fixtures/evidence/lab-good.json"))
t0 = datetime.datetime(2026, 10, 1, 6, 0, tzinfo=datetime.timezone.utc)
step = 92 * 86400 // n
for d in range(n):
    t = t0 + datetime.timedelta(seconds=d * step)
    e = dict(ev)
    e["started_at"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    e["finished_at"] = (t + datetime.timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    e["run_id"] = t.strftime("%Y%m%dT%H%M%SZ")
    json.dump(e, open(f"{work}/{e['run_id']}.json", "w"))
PY
for f in "$work"/*.json; do
  id=$(basename "$f" .json)
  "$bin" evaluate "$f" --signing-key "$work/keys/epic-audit-signing.key" --out "$work/reports/local/$id" >/dev/null || true
done
echo "runs: $(ls "$work/reports/local" | wc -l), reports dir $(du -sh "$work/reports" | cut -f1)"
/usr/bin/time -f "export: %e s wall, %M KB peak RSS" "$bin" export --env local --quarter 2026-Q4 \
  --reports "$work/reports" --signing-key "$work/keys/epic-audit-signing.key" --out "$work/q4.tar.gz" >/dev/null
echo "archive: $(stat -c %s "$work/q4.tar.gz") bytes"
/usr/bin/time -f "verify: %e s wall, %M KB peak RSS" "$bin" verify "$work/q4.tar.gz" \
  --pubkey "$work/keys/epic-audit-signing.pub" >"$work/verify.out"
head -1 "$work/verify.out"
