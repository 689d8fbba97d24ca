# Sourced by scripts/bench-*.sh. Installs what is missing, builds the release
# binary, and prepares a throw-away lab on loopback (127.0.1.1-6, port
# $PORT, default 6479) that is stopped and removed on exit.
#   bench_setup          sets port, bin, labbin, work, lab (= $EPIC_AUDIT_LAB_DIR)
#   bench_config         writes $work/epic-audit.toml: environment `bench`
#                        with every lab user, the exporter port, the lab's
#                        signing key and its EC2/KMS emulator
# Start the lab yourself ("$labbin" up --port "$port") to time it.
bench_setup() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  port=${PORT:-6479}
  bash scripts/setup.sh /usr/bin/time:time
  export EPIC_AUDIT_MOTO_SERVER="${EPIC_AUDIT_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
  cargo build --release --locked -q --workspace
  bin=$PWD/target/release/epic-audit
  labbin=$PWD/target/release/epic-audit-lab
  work=$(mktemp -d)
  export EPIC_AUDIT_LAB_DIR=$work/lab
  lab=$EPIC_AUDIT_LAB_DIR
  trap '"$labbin" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
}

bench_config() {
  cat >"$work/epic-audit.toml" <<EOT
[environments.bench]
seeds = ["127.0.1.1:$port"]
audit_user = "auditor"
signing_key = "$lab/signing/epic-audit-signing.key"
[environments.bench.tls]
ca = "$lab/pki/ca.crt"
client_cert = "$lab/pki/client.crt"
client_key = "$lab/pki/client.key"
[environments.bench.users.auditor]
password_file = "$lab/secrets/auditor.pass"
[environments.bench.users.app_user]
password_file = "$lab/secrets/app_user.pass"
[environments.bench.users.dev_user]
password_file = "$lab/secrets/dev_user.pass"
[environments.bench.monitoring]
exporter_port = $((port + 2742))
prometheus_url = "http://127.0.0.1:$((port + 2711))"
[environments.bench.aws]
region = "us-east-1"
endpoint = "http://127.0.0.1:$((port + 1000))"
credentials = "emulator"
discovery = { tag = "redis-cluster", value = "clinical-sessions" }
node_ip_map = { "127.0.1.1" = "10.0.1.102", "127.0.1.2" = "10.0.2.27", "127.0.1.3" = "10.0.3.205", "127.0.1.4" = "10.0.2.27", "127.0.1.5" = "10.0.3.205", "127.0.1.6" = "10.0.1.102" }
EOT
}
