#!/usr/bin/env bash
# Other server builds for the lab: a Debian 13 (trixie) root with its
# redis-server (8.x) and valkey-server (8.x), bootstrapped from Debian's
# package archive (debootstrap --variant=minbase) into .servers/trixie
# (git-ignored) if it is not there. The lab runs those binaries through the
# root's own dynamic loader and libraries, so they read the host's paths:
#
#   .servers/trixie/usr/lib64/ld-linux-x86-64.so.2 --library-path \
#     .servers/trixie/usr/lib/x86_64-linux-gnu .servers/trixie/usr/bin/valkey-server ...
#
# `epic-audit-lab up --server valkey` (or `redis8`) finds them there.
# Usage: scripts/server-builds.sh [--force]   (needs root and debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/.servers/trixie"
mirror="${EPIC_AUDIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ "${1:-}" != "--force" ] && [ -x "$root/usr/bin/valkey-server" ] && [ -x "$root/usr/bin/redis-server" ]; then
  echo "server-builds: $root has $(basename "$(readlink -f "$root/usr/bin/redis-server")") and $(basename "$(readlink -f "$root/usr/bin/valkey-server")")"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "server-builds: debootstrap needs root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "server-builds: installing debootstrap (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
tmp="$PWD/.servers/.trixie.partial"
rm -rf "$tmp" "$root"
mkdir -p "$tmp"
echo "server-builds: bootstrapping Debian 13 (trixie) with redis-server and valkey-server into $root"
debootstrap --variant=minbase --include=redis-server,valkey-server trixie "$tmp" "$mirror" >"$PWD/.servers/debootstrap.log" 2>&1 || {
  echo "server-builds: debootstrap failed; see .servers/debootstrap.log" >&2
  tail -5 "$PWD/.servers/debootstrap.log" >&2
  exit 1
}
# Nothing of the root runs as a system: no services, just the binaries.
mv "$tmp" "$root"
for b in redis-server valkey-server; do
  "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" "$root/usr/bin/$b" --version
done
