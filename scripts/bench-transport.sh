#!/usr/bin/env bash
# Transport probes vs sslyze on the same lab: wall time over the lab's 12
# TLS endpoints (6 nodes x client + bus port) and whether both tools agree
# on which protocol versions each endpoint accepts.
# Loopback only: a throw-away lab on 127.0.1.1-6, port $PORT (default 6479).
# sslyze comes from PyPI into a venv under target/ (created if missing).
# Usage: scripts/bench-transport.sh [RUNS]
set -euo pipefail
runs=${1:-5}
source "$(dirname "$0")/bench-common.sh"
bench_setup
venv=target/bench-venv
if [ ! -x "$venv/bin/sslyze" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q sslyze
fi
"$labbin" up --port "$port" >/dev/null
bench_config
targets=()
for i in 1 2 3 4 5 6; do targets+=("127.0.1.$i:$port" "127.0.1.$i:$((port + 10000))"); done

wall() { # seconds of a command
  /usr/bin/time -f '%e' -o "$work/t" "$@" >/dev/null 2>&1 || true
  cat "$work/t"
}
echo "epic-audit run --only transport (12 endpoints, TLS 1.0-1.3 + 2 full handshakes + certificates + config):"
for r in $(seq 1 "$runs"); do
  echo "  run $r: $(wall "$bin" run --env bench --config "$work/epic-audit.toml" --only transport --out "$work/ea-$r") s"
done
echo "sslyze SSLv2..TLS1.3 + certinfo on the same 12 endpoints (client certificate given):"
for r in $(seq 1 "$runs"); do
  echo "  run $r: $(wall "$venv/bin/sslyze" --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --certinfo \
    --certinfo_ca_file "$EPIC_AUDIT_LAB_DIR/pki/ca.crt" --cert "$EPIC_AUDIT_LAB_DIR/pki/client.crt" \
    --key "$EPIC_AUDIT_LAB_DIR/pki/client.key" --json_out "$work/sslyze-$r.json" "${targets[@]}") s"
done
python3 - "$work/ea-1/evidence.json" "$work/sslyze-1.json" <<'PY'
import json, sys
ea = json.load(open(sys.argv[1]))
ours = {}
for it in ea["items"]:
    if it["probe"] == "tls.endpoint" and "observation" in it["result"]:
        o = it["result"]["observation"]
        ours[o["address"]] = {v["version"]: v["outcome"] == "accepted" for v in o["versions"]}
names = {"tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
         "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}
theirs = {}
ss = json.load(open(sys.argv[2]))
for srv in ss["server_scan_results"]:
    loc = srv["server_location"]
    addr = f'{loc["ip_address"]}:{loc["port"]}'
    res = srv.get("scan_result") or {}
    theirs[addr] = {}
    for key, name in names.items():
        r = (res.get(key) or {}).get("result") or {}
        theirs[addr][name] = bool(r.get("accepted_cipher_suites"))
    for key in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites"):
        r = (res.get(key) or {}).get("result") or {}
        if r.get("accepted_cipher_suites"):
            theirs[addr]["SSL"] = True
agree = 0
for addr in sorted(set(ours) | set(theirs)):
    a = {k: v for k, v in ours.get(addr, {}).items()}
    b = {k: v for k, v in theirs.get(addr, {}).items() if k in a}
    same = a == b and not theirs.get(addr, {}).get("SSL")
    agree += same
    acc = ",".join(k for k, v in sorted(a.items()) if v) or "-"
    print(f"  {addr:<22} epic-audit accepts {acc:<10} sslyze {'agrees' if same else 'DISAGREES: ' + str(theirs.get(addr))}")
print(f"verdicts identical on {agree} of {len(set(ours) | set(theirs))} endpoints")
PY
