"""What every CLI command shares: the enclave context, JSON output, and error rendering.

A command is a plain function decorated with ``@command_errors``: any ``EnclaveError`` it raises is
printed (as the ``{"error": ...}`` JSON shape with ``--json``, as text otherwise) and the process
exits with the error's exit code (ARCHITECTURE §9).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.orm import Session

from enclave import audit, config, db
from enclave.errors import BadInput, EnclaveError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (default: $ENCLAVE_ACTOR or the OS user).")
]


@dataclass
class EnclaveContext:
    """The enclave a command works on: its home, paths and state database."""

    home: Path
    database_url: str

    def __post_init__(self) -> None:
        audit.use_vault(self.database_url, self.paths)  # this home's vault keys the audit chain

    @property
    def paths(self) -> config.Paths:
        return config.Paths(self.home)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction on the state database."""
        factory = db.connect(self.database_url)
        with db.session_scope(factory) as session:
            yield session


def get_context(ctx: typer.Context | None = None) -> EnclaveContext:
    """The context set up by the root callback (``--home``), or one from the environment."""
    if ctx is not None:
        root = ctx.find_root()
        if isinstance(root.obj, EnclaveContext):
            return root.obj
    home = config.enclave_home()
    return EnclaveContext(home=home, database_url=config.database_url(home))


def actor_or_default(actor: str | None) -> str:
    return actor or audit.default_actor()


def emit_json(value: Any) -> None:
    """Print JSON on stdout (no rich markup, so it stays parseable)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_result(result: Any, as_json: bool, text: str) -> None:
    """``result`` as JSON with ``--json``, else ``text`` as it is (no rich markup or highlighting)."""
    if as_json:
        emit_json(result)
    else:
        console.print(text, highlight=False, markup=False)


def parse_today(today: str | None) -> date | None:
    """The ``--today`` option (YYYY-MM-DD) as a date; ``None`` when it is not given."""
    try:
        return date.fromisoformat(today) if today else None
    except ValueError:
        raise BadInput(
            "date_invalid", f"--today: not a date: {today!r}", f"--today：不是日期：{today!r}"
        ) from None


def _wants_json() -> bool:
    return "--json" in sys.argv


def render_error(error: EnclaveError, as_json: bool) -> None:
    if as_json:
        emit_json(error.to_dict())
        return
    # The code and message are plain text: rich would take "[code]" for markup and drop it.
    err_console.print(Text("error", style="bold red").append(f" [{error.code}] {error.message}", style=""))
    err_console.print(f"      {error.message_zh}", highlight=False, markup=False)
    for reason in error.reasons:
        err_console.print(f"  - [{reason.code}] {reason.message}", highlight=False, markup=False)
        err_console.print(f"    {reason.message_zh}", highlight=False, markup=False)


def command_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an ``EnclaveError`` into its printed shape and exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except EnclaveError as error:
            render_error(error, bool(kwargs.get("as_json")) or _wants_json())
            raise typer.Exit(error.exit_code) from None

    return wrapper
