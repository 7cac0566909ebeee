"""A set of output files that appear together or not at all.

Each file is written under a hidden temporary name in the target directory and renamed into place
only after every file is complete; any failure removes the temporary files and leaves earlier
output untouched.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {
    "compression": "zstd",
    # Without the stored Arrow schema, dictionary columns read back as plain strings.
    "store_schema": False,
    # Room for the largest dictionary (the note texts, about 1 MB): past the limit Parquet falls back to
    # plain encoding, which is larger and, in our runs, was not byte-for-byte reproducible.
    "dictionary_pagesize_limit": 4 << 20,
}


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: categories, dates and integers (not IDs, names or amounts)."""
    return [
        field.name
        for field in schema
        if pa.types.is_dictionary(field.type)
        or pa.types.is_date(field.type)
        or pa.types.is_integer(field.type)
    ]


class OutputSet:
    """Files written under temporary names, renamed into place by ``commit``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._token = secrets.token_hex(6)
        self._pending: dict[Path, Path] = {}  # temporary -> final
        self._writers: list[pq.ParquetWriter] = []

    def _temporary(self, filename: str) -> Path:
        final = self.directory / filename
        temporary = self.directory / f".{filename}.{self._token}.partial"
        self._pending[temporary] = final
        return temporary

    def parquet(self, filename: str, schema: pa.Schema) -> pq.ParquetWriter:
        writer = pq.ParquetWriter(
            self._temporary(filename), schema, use_dictionary=dictionary_columns(schema), **PARQUET_OPTIONS
        )
        self._writers.append(writer)
        return writer

    def text(self, filename: str, content: str) -> None:
        self._temporary(filename).write_text(content, encoding="utf-8")

    def _close_writers(self, *, quiet: bool = False) -> None:
        while self._writers:
            writer = self._writers.pop()
            try:
                writer.close()
            except Exception:
                if not quiet:
                    raise

    def commit(self) -> list[Path]:
        """Close every file and move it into place; returns the final paths."""
        self._close_writers()
        for temporary, final in self._pending.items():
            os.replace(temporary, final)
        finals = list(self._pending.values())
        self._pending.clear()
        return finals

    def abort(self) -> None:
        """Forget everything not yet committed."""
        self._close_writers(quiet=True)  # the files are thrown away, so a failing close does not matter
        for temporary in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending.clear()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pending or self._writers:
            self.abort()
