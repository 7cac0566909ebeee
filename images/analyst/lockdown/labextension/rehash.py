"""After editing a labextension's JavaScript: rename it after its content hash and point its
``package.json`` at it (JupyterLab caches everything under ``static/`` as immutable). Every
extension folder next to this script (one with a ``package.json``) is done.

    python images/analyst/lockdown/labextension/rehash.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
HASH_CHARS = 20


def entry_name(data: bytes) -> str:
    return f"remoteEntry.{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}.js"


def extensions() -> list[Path]:
    """The extension folders: each has a package.json and a static/remoteEntry.*.js."""
    return sorted(p.parent for p in HERE.glob("*/package.json"))


def rehash(extension: Path) -> Path:
    static = extension / "static"
    (current,) = static.glob("remoteEntry*.js")
    wanted = static / entry_name(current.read_bytes())
    if current != wanted:
        current.rename(wanted)
    package_file = extension / "package.json"
    package = json.loads(package_file.read_text(encoding="utf-8"))
    package["jupyterlab"]["_build"]["load"] = f"static/{wanted.name}"
    package_file.write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return wanted


def main() -> None:
    for extension in extensions():
        print(rehash(extension).relative_to(HERE))


if __name__ == "__main__":
    main()
