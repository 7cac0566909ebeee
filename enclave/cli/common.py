"""What every CLI command shares: the enclave context, JSON output, tables, progress and error rendering.

A command is a plain function decorated with ``@command_errors``: any ``EnclaveError`` it raises is
printed (as the ``{"error": ...}`` JSON shape with ``--json``, as text otherwise) and the process
exits with the error's exit code (ARCHITECTURE §9). Rows print as rich tables (``print_table``), one
object as a key/value table (``print_record``); a long operation shows a ``ProgressView`` on stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from enclave import audit, config, db
from enclave.errors import BadInput, EnclaveError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

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


NO_WRAP_WIDTH = 10_000


def _cell(value: Any) -> Text:
    """A cell as plain text: "[x]" in a value is not rich markup, ``None`` is empty."""
    return Text("" if value is None else str(value))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, to: Console | None = None) -> None:
    """Rows as a rich table with these column headers (plain text, no markup or highlighting).

    Not on a terminal (a pipe, a log), a row stays on one line however wide, so ``grep`` finds it.
    """
    out = to or console
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    if not out.is_terminal:
        out = Console(file=out.file, width=NO_WRAP_WIDTH, color_system=None, highlight=False)
    out.print(table)


def print_record(fields: Mapping[str, Any], *, to: Console | None = None) -> None:
    """One object as a two-column key/value table."""
    print_table(("field", "value"), fields.items(), to=to)


ProgressCallback = Callable[[str, int, int], None]


class ProgressView:
    """Progress of a long operation on stderr: a rich bar on a terminal; otherwise one plain line per
    new step (with ``every_change``: per change of step, done or total), for logs and CI; nothing
    at all with ``--json``. ``update(step, done, total)`` is the ``progress`` callback a domain
    function takes (``total`` 0: not known); ``unit="bytes"`` shows sizes and speed.

    >>> import io
    >>> out = io.StringIO()
    >>> with ProgressView("destroy p1", console=Console(file=out, force_terminal=False)) as view:
    ...     view.update("volumes", 0, 2)
    ...     view.update("volumes", 1, 2)
    ...     view.update("files", 2, 2)
    >>> print(out.getvalue(), end="")
    destroy p1: volumes 0/2
    destroy p1: files 2/2
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "",
        as_json: bool = False,
        every_change: bool = False,
        console: Console | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.every_change = every_change
        self.enabled = not as_json
        self.console = console or err_console
        self.last: tuple[str, int, int] | None = None
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        if self.enabled and self.console.is_terminal:
            self.bar = self._start_bar()

    def _start_bar(self) -> Progress:
        from rich import progress as p

        if self.unit == "bytes":
            counts: list[p.ProgressColumn] = [p.DownloadColumn(), p.TransferSpeedColumn()]
        else:
            counts = [p.MofNCompleteColumn(), p.TextColumn(self.unit)]
        bar = p.Progress(
            p.TextColumn("{task.description}"),
            p.BarColumn(),
            *counts,
            p.TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        bar.start()
        self.task = bar.add_task(self.label, total=None)
        return bar

    def update(self, step: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``step``."""
        if not self.enabled or (step, done, total) == self.last:
            return
        new_step = self.last is None or self.last[0] != step
        self.last = (step, done, total)
        if self.bar is not None and self.task is not None:
            self.bar.update(
                self.task, description=f"{self.label} {step}", completed=done, total=total or None
            )
        elif new_step or self.every_change:
            self.console.print(self._plain(step, done, total), highlight=False, markup=False)

    def _plain(self, step: str, done: int, total: int) -> str:
        if not total:
            return f"{self.label}: {step}"
        if self.unit == "bytes":
            return f"{self.label}: {step} {total:,} bytes"
        return f"{self.label}: {step} {done}/{total}" + (f" {self.unit}" if self.unit else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


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
