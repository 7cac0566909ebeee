"""SHA-256 of files in a background thread, while the data engine keeps working.

``hashlib`` releases the GIL while it digests a large buffer, so hashing the source and prepared
files of one dataset overlaps with the engine's work on the next. Only finished files are
submitted: a prepared file is complete when its ``COPY`` returns and nothing writes to it again.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from enclave.files import sha256_file


class BackgroundHasher:
    """Submit files by name; :meth:`results` waits for every digest (and re-raises any error)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enclave-sha256")
        self._futures: dict[str, Future[str]] = {}

    def submit(self, name: str, path: Path) -> None:
        if name in self._futures:
            raise ValueError(f"already hashing {name}")
        self._futures[name] = self._pool.submit(sha256_file, path)

    def results(self) -> dict[str, str]:
        return {name: future.result() for name, future in self._futures.items()}

    def __enter__(self) -> BackgroundHasher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # Wait for a digest under way, so a failed build is removed only after it is no longer read.
        self._pool.shutdown(wait=True, cancel_futures=True)
