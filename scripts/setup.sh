#!/usr/bin/env bash
# Installs what epic-audit's lab and tests need, only if it is missing.
# Works on a fresh Debian machine that has just the Rust toolchain.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

apt_updated=0
apt_install() { # package...
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  # Packages with a daemon (prometheus, its alertmanager and exporter) must
  # not start one: it would listen on every address, where the lab listens.
  local guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ "$guard" -eq 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
}

ensure() { # command-or-path, Debian package
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "setup: installing $2 (Debian package)"
    apt_install "$2"
  fi
}

ensure /usr/bin/redis-server redis-server
ensure /usr/bin/prometheus-redis-exporter prometheus-redis-exporter
ensure /usr/bin/prometheus prometheus                        # the lab's monitoring instance
ensure /usr/bin/prometheus-alertmanager prometheus-alertmanager
ensure /usr/bin/chromium chromium   # renders report.html in a test
# Extra "command:package" pairs a caller needs (e.g. benchmarks).
for pair in "$@"; do
  ensure "${pair%%:*}" "${pair#*:}"
done

# The EC2/KMS emulator (moto, from PyPI) for the lab and the AWS tests, in
# the project's own venv (.venv, git-ignored; delete it to rebuild).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$repo/.venv/bin/moto_server" ]; then
  ensure python3 python3
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup: installing python3-venv (Debian package)"
    apt_install python3-venv
  fi
  echo "setup: creating $repo/.venv with moto[server] (EC2/KMS emulator, PyPI)"
  rm -rf "$repo/.venv"
  python3 -m venv "$repo/.venv"
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5.2,<6'
fi
# The third-party verifiers the tests run against our evidence and JUnit
# (what an auditor or a CI system uses, not our code), in the same venv.
# PyYAML reads the example CI jobs and Kubernetes manifests as those
# systems do.
if ! "$repo/.venv/bin/python" -c 'import securesystemslib.dsse, sigstore_protobuf_specs, junitparser, cryptography, yaml' >/dev/null 2>&1; then
  echo "setup: installing securesystemslib, sigstore-protobuf-specs, junitparser, PyYAML into $repo/.venv (PyPI)"
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check \
    'securesystemslib[crypto]==1.6.0' 'sigstore-protobuf-specs==0.5.2' 'junitparser==5.0.3' 'PyYAML>=6,<7'
fi

for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "setup: adding the Rust component $comp"
    rustup component add "$comp"
  fi
done
