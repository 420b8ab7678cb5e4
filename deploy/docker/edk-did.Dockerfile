# edk-did: the EDK DID server (did:web and did:webvh publishing, Universal Resolver, registrar)
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk-did.Dockerfile -t edk/edk-did .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk-did-server --bin edk-did
#   buildah build -f deploy/docker/edk-did.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk-did -t edk/edk-did .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk-did-server --bin edk-did \
    && install -D -m 0755 target/release/edk-did /out/edk-did

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk-did
COPY ${PREBUILT} /out/edk-did

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk-did" \
      org.opencontainers.image.description="the EDK DID server (did:web and did:webvh publishing, Universal Resolver, registrar)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk-did /usr/local/bin/edk-did
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edk-did"]
