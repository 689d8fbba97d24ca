# A lab node: Debian's redis-server (the package the process lab runs).
# Its redis.conf, ACL file and PKI are mounted by compose.yaml from the lab's
# state directory (written by `epic-audit-lab up --compose`).
FROM debian:bookworm-slim
RUN command -v redis-server >/dev/null || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
      && rm -rf /var/lib/apt/lists/*; }
CMD ["redis-server", "/lab/node/redis.conf"]
