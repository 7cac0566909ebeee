#!/usr/bin/env bash
# Install configurable-http-proxy (JupyterHub's proxy) into the repo's node_modules/, as pinned in
# package.json. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if ! command -v npm >/dev/null 2>&1; then
    echo "install-hub: npm is required (apt-get install nodejs npm)" >&2
    exit 1
fi

wanted="$(node -p "require('./package.json').dependencies['configurable-http-proxy']")"
installed=""
if [ -f node_modules/configurable-http-proxy/package.json ]; then
    installed="$(node -p "require('./node_modules/configurable-http-proxy/package.json').version")"
fi

if [ -n "$installed" ] && [ "$installed" = "$wanted" ] && [ -x node_modules/.bin/configurable-http-proxy ]; then
    echo "install-hub: configurable-http-proxy $installed already installed"
    exit 0
fi

if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi
echo "install-hub: configurable-http-proxy $(node -p "require('./node_modules/configurable-http-proxy/package.json').version") in $repo/node_modules/.bin"
