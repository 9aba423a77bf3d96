# syntax=docker/dockerfile:1
# One image with every netpipe binary; the compose file and the Kubernetes manifests pick the
# command. Build: docker build -t netpipe .
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && for b in netpipe capture-agent processor publisher dataset-builder antinex-standin; do \
      if [ -f target/release/$b ]; then cp target/release/$b /out/; fi; \
    done

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/netpipe --create-home netpipe
COPY --from=build /out/ /usr/local/bin/
# Capture needs only CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode / buffer sizes), never root.
# The container must still be granted them (compose cap_add, Kubernetes securityContext).
RUN setcap cap_net_raw,cap_net_admin+eip /usr/local/bin/capture-agent \
 && if [ -f /usr/local/bin/netpipe ]; then setcap cap_net_raw,cap_net_admin+eip /usr/local/bin/netpipe; fi
USER netpipe
WORKDIR /var/lib/netpipe
ENV DS_DIR=/var/lib/netpipe/datasets RUST_LOG=info LOG_JSON=true
ENTRYPOINT ["/usr/local/bin/netpipe"]
CMD ["--help"]
