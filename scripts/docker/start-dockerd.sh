#!/usr/bin/env bash
# Make sure a Docker Engine runs on this machine: install Debian's docker.io (and debootstrap, which
# images/build-base.sh needs) when missing, start dockerd in the background when it is not running, and wait
# until `docker info` answers. Safe to run again; needs root.
set -euo pipefail
LOG=${DOCKERD_LOG:-/var/log/enclave-dockerd.log}

need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_packages+=(debootstrap)
if [ "${#need_packages[@]}" -gt 0 ]; then
    echo "installing ${need_packages[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_packages[@]}" iptables ca-certificates >/dev/null
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "starting dockerd (log: $LOG)" >&2
    nohup dockerd >"$LOG" 2>&1 &
fi
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "dockerd did not come up; see $LOG" >&2
tail -n 30 "$LOG" >&2 || true
exit 1
