#!/usr/bin/env bash
# Run the whole test suite: lint, then unit and integration tests (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

bash scripts/start-postgres.sh
export ENCLAVE_REQUIRE_POSTGRES=1

"$VENV/bin/ruff" check .
"$VENV/bin/pytest" "$@"
