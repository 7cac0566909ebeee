#!/usr/bin/env bash
# Install the node packages pinned in package.json into the repo's node_modules/: configurable-http-proxy
# (JupyterHub's proxy) and, for development, axe-core (the browser tests' accessibility check).
# Idempotent: does nothing when every pinned version is already there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if ! command -v npm >/dev/null 2>&1; then
    echo "install-hub: npm is required (apt-get install nodejs npm)" >&2
    exit 1
fi

# Every dependency pinned in package.json must be installed at exactly its pinned version; one
# missing or different (a new pin such as axe-core, an upgrade) re-installs from the lock file.
stale="$(node -e '
const fs = require("fs");
const pinned = require("./package.json");
const wanted = { ...pinned.dependencies, ...pinned.devDependencies };
for (const [name, version] of Object.entries(wanted)) {
  const file = `node_modules/${name}/package.json`;
  const installed = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")).version : "";
  if (installed !== version) console.log(`${name} ${installed || "missing"} (wanted ${version})`);
}')"

if [ -z "$stale" ] && [ -x node_modules/.bin/configurable-http-proxy ]; then
    echo "install-hub: the pinned node packages are already installed"
    exit 0
fi
if [ -n "$stale" ]; then
    echo "install-hub: not installed as pinned: $stale"
fi

if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi
echo "install-hub: configurable-http-proxy $(node -p "require('./node_modules/configurable-http-proxy/package.json').version") in $repo/node_modules/.bin," \
    "axe-core $(node -p "require('./node_modules/axe-core/package.json').version")"
