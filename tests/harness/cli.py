"""The enclave CLI in-process, on the home's own SQLite state database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from enclave.cli import app

runner = CliRunner()


def enclave_cli(home: Path, *args: str, stdin: str | None = None, code: int = 0) -> Any:
    """``enclave --home home *args`` with ``ENCLAVE_DATABASE_URL`` emptied; asserts the exit code and
    returns the parsed JSON when ``--json`` is among the args, else the output."""
    result = runner.invoke(app, ["--home", str(home), *args], input=stdin, env={"ENCLAVE_DATABASE_URL": ""})
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout
