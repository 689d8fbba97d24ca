#!/usr/bin/env bash
# The tests that need no lab: unit tests, and the integration tests that
# judge recorded evidence (fixtures/) or check the source and the docs. No
# redis-server, emulator, Chromium, Python or Docker; nothing is installed.
# Under two minutes on a warm tree (docs/developing.md has the figure).
# scripts/test.sh runs everything, these included, as CI does.
#
# Usage: bash scripts/test-fast.sh [extra cargo test arguments, e.g. -- aof]
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(
  access_from_fixtures aws_from_fixtures backup_from_fixtures checks_from_fixtures
  data_from_fixtures patch_from_fixtures transport_from_fixtures monitoring_from_fixtures
  performance_rules
  reason_codes completeness architecture report_snapshots sarif oscal waivers chain
  reevaluation bad_inputs fuzz_inputs
)
args=(--lib)
for t in "${tests[@]}"; do args+=(--test "$t"); done
exec cargo test --locked "${args[@]}" "$@"
