# edk: every EDK service in one process (state under /var/lib/edk: mount a volume there)
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk.Dockerfile -t edk/edk .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk --bin edk
#   buildah build -f deploy/docker/edk.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk -t edk/edk .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk --bin edk \
    && install -D -m 0755 target/release/edk /out/edk

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk
COPY ${PREBUILT} /out/edk

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk" \
      org.opencontainers.image.description="every EDK service in one process (state under /var/lib/edk: mount a volume there)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk /usr/local/bin/edk
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true \
    EDK_DATA_DIR=/var/lib/edk
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edk"]
