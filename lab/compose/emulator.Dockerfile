# The EC2/KMS emulator: moto from PyPI in a venv, on Debian's python3 (the
# process lab runs the same moto from the project's .venv).
FROM debian:bookworm-slim
RUN test -x /opt/moto/bin/moto_server || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/* \
      && python3 -m venv /opt/moto \
      && /opt/moto/bin/pip install --no-cache-dir --disable-pip-version-check 'moto[server]>=5.2,<6'; }
CMD ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "5000"]
