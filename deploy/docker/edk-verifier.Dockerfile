# edk-verifier: the EDK OpenID4VP verifier
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk-verifier.Dockerfile -t edk/edk-verifier .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk-verifier-server --bin edk-verifier
#   buildah build -f deploy/docker/edk-verifier.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk-verifier -t edk/edk-verifier .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk-verifier-server --bin edk-verifier \
    && install -D -m 0755 target/release/edk-verifier /out/edk-verifier

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk-verifier
COPY ${PREBUILT} /out/edk-verifier

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk-verifier" \
      org.opencontainers.image.description="the EDK OpenID4VP verifier" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk-verifier /usr/local/bin/edk-verifier
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edk-verifier"]
