"""The progress indicator of a long query: one line that updates in place (an output in a notebook,
``stderr`` elsewhere) and is cleared when the query ends."""

from __future__ import annotations

import html
import sys
from typing import Any

HINT = "(interrupt to cancel / 中断以取消)"


def progress_line(elapsed: float, status: dict[str, Any] | None = None) -> str:
    """One line for a long query: running, or queued on the gateway with its place in line.

    >>> progress_line(3.0, {"state": "queued", "position": 2})
    'query queued… position 2 / 排队中，第 2 位 · 3.0 s (interrupt to cancel / 中断以取消)'
    """
    if status and status.get("state") == "queued":
        position = status.get("position")
        return f"query queued… position {position} / 排队中，第 {position} 位 · {elapsed:.1f} s {HINT}"
    return f"query running… / 查询运行中… {elapsed:.1f} s {HINT}"


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (where a display can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ProgressDisplay:
    """Called with the elapsed time (and the gateway's status) while a query runs; ``finish`` clears it."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._width = 0
        self._kernel = _in_kernel()

    def __call__(self, elapsed: float, status: dict[str, Any] | None = None) -> None:
        line = progress_line(elapsed, status)
        if self._kernel:
            from IPython.display import HTML, display

            shown = HTML(f'<div class="enclave-progress"><code>{html.escape(line)}</code></div>')
            if self._handle is None:
                self._handle = display(shown, display_id=True)
            else:
                self._handle.update(shown)
            return
        self._width = max(self._width, len(line))
        sys.stderr.write("\r" + line.ljust(self._width))
        sys.stderr.flush()

    def finish(self) -> None:
        """Remove the line: the result (or the error) is what stays in the cell."""
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(""))
        elif self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
