"""The ``enclave`` command. Each module in this package owns one command group.

A group module exposes ``app`` (a ``typer.Typer``) and ``NAME``; a module of top-level commands
exposes ``register(root)``. Both are listed below, once.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer

from enclave import config
from enclave.cli.common import EnclaveContext

GROUP_MODULES = (
    "dataset",
    "project",
    "audit",
    "export",
    "gateway",
    "user",
    "application",
    "agreement",
    "account",
    "console",
    "run",
)
TOP_LEVEL_MODULES = ("admin", "query")

app = typer.Typer(
    name="enclave",
    help="Enclave: a secure data enclave for health data. / 健康医疗数据安全领地。",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Enclave home (default: $ENCLAVE_HOME or ~/.enclave).", show_default=False
        ),
    ] = None,
) -> None:
    """Set up the enclave context every command uses."""
    resolved = config.enclave_home(home)
    ctx.obj = EnclaveContext(home=resolved, database_url=config.database_url(resolved))


for _name in GROUP_MODULES:
    _module = import_module(f"enclave.cli.{_name}")
    app.add_typer(_module.app, name=_module.NAME)
for _name in TOP_LEVEL_MODULES:
    import_module(f"enclave.cli.{_name}").register(app)


def main() -> None:
    config.restrict_umask()  # the state, the vault and the logs it writes are the service account's
    app()
