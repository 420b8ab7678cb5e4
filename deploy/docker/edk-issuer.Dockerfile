# edk-issuer: the EDK OpenID4VCI credential issuer
#
# Built from source (the default), from the repository root:
#   buildah build -f deploy/docker/edk-issuer.Dockerfile -t edk/edk-issuer .
# or from a binary built on the host (offline: no Rust image is pulled), with a context holding
# it at $PREBUILT:
#   cargo build --release -p edk-issuer-server --bin edk-issuer
#   buildah build -f deploy/docker/edk-issuer.Dockerfile --build-arg BINARY=prebuilt \
#     --build-arg PREBUILT=target/release/edk-issuer -t edk/edk-issuer .
# The runtime is distroless (glibc, CA certificates, no shell), uid 10001, and writes nothing
# to its root filesystem: it runs with readOnlyRootFilesystem.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `source` compiles in the build stage; `prebuilt` copies $PREBUILT from the build context.
ARG BINARY=source

FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edk-issuer-server --bin edk-issuer \
    && install -D -m 0755 target/release/edk-issuer /out/edk-issuer

FROM scratch AS prebuilt
ARG PREBUILT=target/release/edk-issuer
COPY ${PREBUILT} /out/edk-issuer

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="edk-issuer" \
      org.opencontainers.image.description="the EDK OpenID4VCI credential issuer" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary --chown=0:0 /out/edk-issuer /usr/local/bin/edk-issuer
ENV EDK_HTTP__LISTEN=0.0.0.0:8080 \
    EDK_LOG__JSON=true
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edk-issuer"]
