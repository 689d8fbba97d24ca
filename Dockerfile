# epic-audit as a container image: the audit binary only (not the lab), on
# an empty base with the C runtime it links, the CA bundle and a non-root
# user. No shell, no package manager: `docker run` runs the audit and
# nothing else.
#
# Build it with scripts/build-image.sh, which builds the release binary on
# the host and passes the labels below. The binary is built on the host,
# not in the image, because the project's machines pull nothing: the
# rust toolchain has no image here, and a host build is the one the test
# suite already proves. The first stage is the Debian 12 base that
# scripts/docker-base.sh makes from Debian's archive (or
# `docker pull debian:bookworm-slim` where pulling works): the same C
# library the binary was linked against on a Debian 12 host.
#
#   scripts/build-image.sh                 # epic-audit:<version>, epic-audit:latest
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work \
#     -e EPIC_AUDIT_PASSWORD epic-audit run --env prod
ARG BASE=debian:bookworm-slim
FROM ${BASE} AS runtime
# Marks this stage's leftovers, which scripts/build-image.sh removes.
LABEL io.epic-audit.stage=runtime-files
# The binary to ship, relative to the build context (the checkout).
ARG BINARY=target/release/epic-audit
COPY ${BINARY} /rootfs/usr/local/bin/epic-audit
# The shared libraries the binary loads (glibc, libgcc_s), the dynamic
# loader, the CA bundle (for AWS, KMS and Prometheus over HTTPS), and a
# passwd entry so the non-root user has a name and a home.
RUN set -eu; \
    test -s /etc/ssl/certs/ca-certificates.crt || { echo "the base image has no CA bundle (install ca-certificates)" >&2; exit 1; }; \
    for lib in $(ldd /rootfs/usr/local/bin/epic-audit | grep -o '/[^ ]*'); do \
      mkdir -p "/rootfs$(dirname "$lib")"; cp -L "$lib" "/rootfs$lib"; \
    done; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/work /rootfs/home/epic-audit /rootfs/tmp; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nepic-audit:x:10001:10001:epic-audit:/home/epic-audit:/sbin/nologin\n' > /rootfs/etc/passwd; \
    printf 'root:x:0:\nepic-audit:x:10001:\n' > /rootfs/etc/group; \
    chown 10001:10001 /rootfs/work /rootfs/home/epic-audit; \
    chmod 1777 /rootfs/tmp; \
    /rootfs/usr/local/bin/epic-audit --version

FROM scratch
ARG VERSION=unknown
ARG POLICY_DIGEST=unknown
ARG REVISION=unknown
COPY --from=runtime /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    HOME=/home/epic-audit \
    NO_COLOR=1
LABEL org.opencontainers.image.title="epic-audit" \
      org.opencontainers.image.description="HIPAA compliance audit of a self-managed Redis Cluster on AWS: live probes, signed evidence" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      io.epic-audit.policy.sha256="${POLICY_DIGEST}"
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/epic-audit"]
CMD ["--help"]
