#!/usr/bin/env bash
# Makes the base image the compose lab's Dockerfiles start FROM
# (debian:bookworm-slim) on a machine that cannot pull it: a Debian
# bookworm root filesystem from Debian's package archive (debootstrap
# --variant=minbase), with the packages the lab images need installed at
# bootstrap time from bookworm, bookworm-updates and bookworm-security (the
# same versions the process lab runs from apt), then `docker import`.
#
# Where `docker pull debian:bookworm-slim` works, you do not need this: the
# Dockerfiles install the same packages themselves.
#
# Usage: scripts/docker-base.sh [--force]   (needs root and debootstrap)
set -euo pipefail

image="${EPIC_AUDIT_BASE_IMAGE:-debian:bookworm-slim}"
mirror="${EPIC_AUDIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The packages the lab images need (redis, exporter, emulator), and moto
# from PyPI in /opt/moto, as the emulator Dockerfile would install it.
packages="redis-server prometheus-redis-exporter python3 python3-venv ca-certificates"
moto_req='moto[server]>=5.2,<6'

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "docker-base: $image is present ($(docker image inspect -f '{{.Id}}' "$image" | cut -c1-19))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "docker-base: debootstrap needs root; run as root, or pull the image: docker pull $image" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "docker-base: installing debootstrap (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

root="$(mktemp -d /tmp/epic-audit-rootfs.XXXXXX)"
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

t0=$(date +%s)
echo "docker-base: debootstrap --variant=minbase bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SRC
cp /etc/resolv.conf "$root/etc/resolv.conf"
# moto's wheels are fetched by the host's pip (with the host's index, proxy
# and CA settings) and installed in the image without network.
echo "docker-base: pip wheel $moto_req (host pip)"
python3 -m pip wheel -q --disable-pip-version-check -w "$root/tmp/wheels" "$moto_req"
mount -t proc proc "$root/proc"
echo "docker-base: installing $packages"
log="$(mktemp /tmp/epic-audit-docker-base.XXXXXX.log)"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh -ec "
  export DEBIAN_FRONTEND=noninteractive
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
  python3 -m venv /opt/moto
  /opt/moto/bin/pip install -q --disable-pip-version-check --no-index --find-links /tmp/wheels '$moto_req'
  rm -rf /tmp/wheels
  apt-get clean
  rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /root/.cache
  : > /etc/resolv.conf
" >"$log" 2>&1 || { tail -30 "$log" >&2; echo "docker-base: failed (log: $log)" >&2; exit 1; }
rm -f "$log"
umount -l "$root/proc"
echo "docker-base: docker import as $image"
tar -C "$root" -c . | docker import \
  -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' \
  -m "debootstrap --variant=minbase bookworm + $packages + $moto_req (scripts/docker-base.sh)" \
  - "$image" >/dev/null
echo "docker-base: $image built in $(( $(date +%s) - t0 )) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
