# A lab node on another server build: Debian 13 (trixie)'s redis-server 8.x
# or valkey-server 8.x. Its base is the root `bash scripts/server-builds.sh`
# bootstraps from Debian's archive into .servers/trixie, which
# `epic-audit-lab up --compose --server redis8|valkey` imports once as
# epic-audit-lab/trixie-root (nothing is pulled). compose.yaml names the
# binary to run (LAB_SERVER); its config is mounted as for the bookworm node.
FROM epic-audit-lab/trixie-root:latest
