# edk-platform: the EDK platform server (first-run setup, operator authorization server,
# platform API; REST on 8080, the tenant directory over gRPC on 9090 when grpc.listen is set)
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk-platform.Dockerfile -t edk/edk-platform .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk-platform-server --bin edk-platform
#   buildah build -f deploy/docker/edk-platform.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk-platform -t edk/edk-platform .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem. /var/lib/edk-platform, owned by
# 10001, is where a volume mounted for the first-run setup token takes its owner from.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk-platform-server --bin edk-platform \
    && install -D -m 0755 target/release/edk-platform /out/edk-platform \
    && install -d /out/state

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk-platform
COPY ${PREBUILT} /out/edk-platform
WORKDIR /out/state

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk-platform" \
      org.opencontainers.image.description="the EDK platform server (REST on 8080, the tenant directory over gRPC on 9090 when grpc.listen is set)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk-platform /usr/local/bin/edk-platform
COPY --from=binary --chown=10001:10001 /out/state /var/lib/edk-platform
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/edk-platform"]
