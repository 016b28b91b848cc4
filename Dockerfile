# The control plane image: `vcluster run` (API server, store, syncer,
# controllers), as `vcluster create` deploys it.
#
#   docker build -t vcluster-rs:0.1.0 .
#   docker build --build-arg FEATURES=etcd -t vcluster-rs:0.1.0-etcd .
#
# FEATURES=etcd adds the external etcd backing store
# (controlPlane.backingStore.etcd.external); its gRPC client is generated
# at build time, hence protoc in the build stage.
FROM rust:1.89-bookworm AS build
ARG FEATURES=""
RUN if [ -n "$FEATURES" ]; then \
        apt-get update && apt-get install -y --no-install-recommends protobuf-compiler \
        && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p vcluster-cli --bin vcluster --features "$FEATURES" \
    && install -m 0755 target/release/vcluster /vcluster

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /vcluster /usr/local/bin/vcluster
# The user the StatefulSet runs it as (runAsNonRoot, fsGroup on /data).
USER 12345:12345
ENTRYPOINT ["/usr/local/bin/vcluster"]
CMD ["run"]
