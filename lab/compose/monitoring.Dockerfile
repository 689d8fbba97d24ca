# The lab's monitoring instance: Debian's Prometheus and Alertmanager (one
# image, two services in compose.yaml), configured from files the lab
# writes into LAB_DIR/monitoring.
FROM debian:bookworm-slim
RUN command -v prometheus >/dev/null || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus prometheus-alertmanager \
      && rm -rf /var/lib/apt/lists/*; }
