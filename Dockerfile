# syntax=docker/dockerfile:1
# One image with every netpipe binary on PATH; the container command picks the service:
#   docker build -t netpipe .
#   docker run --rm netpipe processor --help
# deploy/compose.yml and deploy/k8s run capture-agent, processor, publisher, dataset-builder and
# antinex-standin from it.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crate downloads and the compiled dependencies between builds,
# so a source change recompiles only the workspace crates. The image's binaries carry no debug
# info (the release profile keeps some for local profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && cp target/release/netpipe target/release/capture-agent target/release/processor \
       target/release/publisher target/release/dataset-builder target/release/antinex-standin /out/

FROM debian:bookworm-slim
# docker build --build-arg VERSION=... --build-arg REVISION=$(git rev-parse HEAD) -t netpipe .
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="netpipe" \
      org.opencontainers.image.description="Network traffic to ML datasets and live AntiNex predictions: capture-agent, processor, publisher, dataset-builder" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# Runtime needs: libpcap, CA certificates for https/amqps/rediss, and setcap/getcap (libcap2-bin,
# ~100 kB) so the capability below can be checked in the running image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 netpipe \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/netpipe --create-home netpipe \
 && install -d -o netpipe -g netpipe /var/lib/netpipe/datasets
COPY --from=build /out/ /usr/local/bin/
# Capture needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode and buffer sizes), never root:
# the file capability grants them to capture-agent alone. Its container must grant both (compose
# cap_add, Kubernetes securityContext): the kernel refuses to exec a binary whose file
# capabilities are not all in the bounding set ("operation not permitted", even for --help). It
# must not set no-new-privileges either, which keeps file capabilities from taking effect. No
# other binary gets them, so `netpipe health-check` runs in every container.
RUN setcap cap_net_raw,cap_net_admin+eip /usr/local/bin/capture-agent
# Numeric, so Kubernetes runAsNonRoot can verify it without a runAsUser.
USER 10001:10001
WORKDIR /var/lib/netpipe
ENV DS_DIR=/var/lib/netpipe/datasets LOG_JSON=true RUST_LOG=info
# Ops ports: capture-agent 9101, processor 9102, publisher 9103, dataset-builder 9104.
EXPOSE 9101 9102 9103 9104
# GET /health on the service's ops address (OPS_ADDR, or the deprecated PUBLISHER_OPS_ADDR). `netpipe
# health-check` does it in a few lines of std Rust, so the image needs no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["netpipe", "health-check"]
CMD ["netpipe", "--help"]
