#!/usr/bin/env bash
# Builds the epic-audit container image (Dockerfile at the root) from a
# binary built on this host, labelled with the binary's version and the
# digest of the policy built into it.
#
# Usage: scripts/build-image.sh [--binary PATH] [--tag NAME]
#   --binary PATH  ship this binary (relative to the checkout; default: build
#                  target/release/epic-audit with `cargo build --release`)
#   --tag NAME     image name (default: epic-audit:<version>, also tagged
#                  epic-audit:latest)
# Needs Docker and the base image debian:bookworm-slim: where it cannot be
# pulled, scripts/docker-base.sh makes it from Debian's archive (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  echo "build-image: cargo build --release --locked --bin epic-audit"
  cargo build --release --locked --bin epic-audit
  binary=target/release/epic-audit
fi
case "$binary" in
  target/release/epic-audit|target/debug/epic-audit) ;;
  *) echo "build-image: --binary must be target/release/epic-audit or target/debug/epic-audit (.dockerignore sends nothing else)" >&2; exit 2 ;;
esac
[ -x "$binary" ] || { echo "build-image: $binary is missing: build it first" >&2; exit 1; }
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/docker-base.sh
  else
    echo "build-image: the base image debian:bookworm-slim is missing: docker pull debian:bookworm-slim, or run scripts/docker-base.sh as root" >&2
    exit 1
  fi
fi
version="$("$binary" --version | awk '{print $2}')"
# The built-in policy's digest: asked from an empty directory, so that no
# epic-audit.toml or checks/ here is read instead.
empty="$(mktemp -d)"
digest="$(cd "$empty" && "$OLDPWD/$binary" checks | sed -n 's/.*built-in policy (digest \([0-9a-f]\{64\}\)).*/\1/p')"
rmdir "$empty"
[ -n "$digest" ] || { echo "build-image: could not read the built-in policy's digest from \`$binary checks\`" >&2; exit 1; }
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
tag="${tag:-epic-audit:$version}"
echo "build-image: $tag from $binary (version $version, policy sha256 ${digest:0:16}…)"
docker build -q -f Dockerfile \
  --build-arg "BINARY=$binary" \
  --build-arg "VERSION=$version" \
  --build-arg "POLICY_DIGEST=$digest" \
  --build-arg "REVISION=$revision" \
  -t "$tag" . >/dev/null
# The first stage's image, left untagged by builders that keep stages.
docker image prune -f --filter label=io.epic-audit.stage=runtime-files >/dev/null 2>&1 || true
case "$tag" in epic-audit:*) [ "$tag" = "epic-audit:latest" ] || docker tag "$tag" epic-audit:latest ;; esac
size="$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}')"
echo "build-image: built $tag ($size)"
