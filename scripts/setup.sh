#!/usr/bin/env bash
# Install everything Enclave needs into a virtual environment. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
# The workspace image's own packages (not dependencies of `enclave`): the tests import them.
"$VENV/bin/python" -m pip install --quiet -e images/analyst/client -e images/analyst/lockdown
bash scripts/install-hub.sh
bash scripts/install-browser.sh
echo "enclave installed in $VENV"
