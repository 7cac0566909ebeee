#!/usr/bin/env bash
# Build the offline Debian base image (no registry needed): debootstrap a minimal bookworm root
# filesystem from this machine's own apt mirror and import it into Docker. Safe to run again: an
# existing image is kept unless FORCE=1.
set -euo pipefail
IMAGE=${BASE_IMAGE:-enclave/base:bookworm}
SUITE=${BASE_SUITE:-bookworm}
HERE=$(cd "$(dirname "$0")" && pwd)

bash "$HERE/../scripts/docker/start-dockerd.sh"
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE is already built" >&2
    exit 0
fi

# The mirror comes from the machine's apt configuration, never from this file: deb822 .sources
# files first (URIs: ...), then the one-line format (deb URI SUITE ...).
mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources \
            | grep -v -- '-security' | head -n 1)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list | grep -v -- '-security' | head -n 1)
    fi
    [ -n "$uri" ] || { echo "no apt mirror found in /etc/apt" >&2; return 1; }
    echo "$uri"
}

MIRROR=${BASE_MIRROR:-$(mirror)}
ROOTFS=$(mktemp -d /tmp/enclave-base-XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap $SUITE from $MIRROR into $ROOTFS" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || { tail -n 30 "$ROOTFS.log" >&2; exit 1; }
rm -f "$ROOTFS.log"
# Nothing from the build machine's package caches belongs in the image.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "built $IMAGE" >&2
