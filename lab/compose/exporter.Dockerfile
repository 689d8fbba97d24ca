# A node's Prometheus exporter: Debian's prometheus-redis-exporter. It runs
# in its node's network namespace (compose.yaml: network_mode service:nodeN)
# and so listens on the node's own address, as the process lab's does.
FROM debian:bookworm-slim
RUN command -v prometheus-redis-exporter >/dev/null || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-redis-exporter \
      && rm -rf /var/lib/apt/lists/*; }
