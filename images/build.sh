#!/usr/bin/env bash
# Build every Enclave image without a registry: the offline Debian base (build-base.sh), then the
# analyst image from wheels gathered on this host with its own pip configuration (so whatever
# index or mirror this machine uses is honoured, and nothing about it is written into the repo).
# The build itself runs with no network. Safe to run again: an image whose inputs have not changed
# is kept (its label org.enclave.inputs holds their hash); FORCE=1 rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BASE_IMAGE=${BASE_IMAGE:-enclave/base:bookworm}
ANALYST_IMAGE=${ANALYST_IMAGE:-enclave/analyst:latest}
WORK=${IMAGE_BUILD_DIR:-build/images/analyst}

BASE_IMAGE=$BASE_IMAGE bash images/build-base.sh

# Everything the image is built from lives under images/analyst (its own client and lock-down
# packages included), and the guard docs, which the client ships so that a refusal's link to its rule
# opens offline: the vault package `enclave` is not an input and is not installed.
GUARD_DOCS=docs/guard.md
inputs_hash() {
    { find images/analyst -type f \
        -not -path '*/__pycache__/*' -not -name '*.pyc' -not -path '*.egg-info/*' -not -path '*/build/*'
      echo "$GUARD_DOCS"; } \
        | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
    docker image inspect --format '{{.Id}}' "$BASE_IMAGE"
}
HASH=$(inputs_hash | sha256sum | cut -c1-16)
current=$(docker image inspect --format '{{index .Config.Labels "org.enclave.inputs"}}' "$ANALYST_IMAGE" \
    2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$HASH" ]; then
    echo "$ANALYST_IMAGE is up to date ($HASH)" >&2
    exit 0
fi

echo "gathering wheels for $ANALYST_IMAGE in $WORK" >&2
rm -rf "$WORK"
mkdir -p "$WORK/wheels"
# The client is built from a copy that holds the guard docs (package data), never from the checkout.
mkdir -p "$WORK/src"
tar -C images/analyst --exclude=__pycache__ --exclude='*.egg-info' --exclude=build -cf - client \
    | tar -C "$WORK/src" -xf -
cp "$GUARD_DOCS" "$WORK/src/client/enclave_client/guard.md"
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/wheels" "$WORK/src/client" images/analyst/lockdown
rm -rf "$WORK/src" images/analyst/lockdown/build  # setuptools leaves build/ behind
# Resolve the local wheels' dependencies together with the rest; binary wheels only, so the
# image never compiles anything. The base image is bookworm's Python 3.11, like the venv.
mapfile -t local_wheels < <(ls "$WORK"/wheels/*.whl)
"$PY" -m pip download --quiet --only-binary=:all: --python-version 3.11 --platform manylinux_2_36_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64 \
    -d "$WORK/wheels" "${local_wheels[@]}" 2> >(grep -v "is ignored: it is neither" >&2) \
    $(grep -v -E '^\s*(#|$)|^enclave-(client|lockdown)\s*$' images/analyst/requirements.txt)
cp images/analyst/Dockerfile images/analyst/requirements.txt images/analyst/jupyter_server_config.py \
    images/analyst/page_config.json "$WORK/"

echo "building $ANALYST_IMAGE (no network)" >&2
docker build --quiet --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "org.enclave.inputs=$HASH" -t "$ANALYST_IMAGE" "$WORK" >/dev/null \
    2> >(grep -v -i -E "deprecated|legacy builder|buildx|^\s*$" >&2)
rm -rf "$WORK/wheels"
echo "built $ANALYST_IMAGE ($HASH)" >&2
