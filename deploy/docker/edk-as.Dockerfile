# edk-as: the EDK tenant OAuth 2 authorization server
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk-as.Dockerfile -t edk/edk-as .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk-as-server --bin edk-as
#   buildah build -f deploy/docker/edk-as.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk-as -t edk/edk-as .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk-as-server --bin edk-as \
    && install -D -m 0755 target/release/edk-as /out/edk-as

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk-as
COPY ${PREBUILT} /out/edk-as

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk-as" \
      org.opencontainers.image.description="the EDK tenant OAuth 2 authorization server" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk-as /usr/local/bin/edk-as
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edk-as"]
