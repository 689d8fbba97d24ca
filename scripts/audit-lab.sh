#!/usr/bin/env bash
# The main job: install what is missing, build, bring up the local lab
# cluster, audit it, and say where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EPIC_AUDIT_MOTO_SERVER="${EPIC_AUDIT_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
cargo build --release --locked --workspace
bin=target/release/epic-audit
labbin=target/release/epic-audit-lab
if ! "$labbin" status >/dev/null 2>&1; then
  "$labbin" down >/dev/null 2>&1 || true
  "$labbin" up
fi
set +e
"$bin" run --env local
code=$?
set -e
run_dir=$(ls -d reports/local/*/ 2>/dev/null | sort | tail -1)
lab_dir=${EPIC_AUDIT_LAB_DIR:-${TMPDIR:-/tmp}/epic-audit-lab}
echo
echo "exit code $code (0 pass, 1 fail, 2 error or incomplete). The lab keeps running: '$labbin down' stops it."
echo "signed report: ${run_dir%/} (verify: $bin verify ${run_dir%/} --pubkey $lab_dir/signing/epic-audit-signing.pub)"
exit "$code"
