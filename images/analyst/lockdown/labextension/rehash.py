"""After editing the labextension's JavaScript: rename it after its content hash and point
``package.json`` at it (JupyterLab caches everything under ``static/`` as immutable).

    python images/analyst/lockdown/labextension/rehash.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

EXTENSION = Path(__file__).resolve().parent / "enclave-runs"
HASH_CHARS = 20


def entry_name(data: bytes) -> str:
    return f"remoteEntry.{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}.js"


def main() -> None:
    static = EXTENSION / "static"
    (current,) = static.glob("remoteEntry.*.js")
    wanted = static / entry_name(current.read_bytes())
    if current != wanted:
        current.rename(wanted)
    package_file = EXTENSION / "package.json"
    package = json.loads(package_file.read_text(encoding="utf-8"))
    package["jupyterlab"]["_build"]["load"] = f"static/{wanted.name}"
    package_file.write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(wanted.relative_to(EXTENSION))


if __name__ == "__main__":
    main()
