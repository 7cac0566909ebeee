#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of
# its own), and CJK fonts so Chinese pages render. Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-browser: run as root, or install Debian's chromium and fonts-noto-cjk yourself" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
echo "install-browser: $(/usr/bin/chromium --version)"
