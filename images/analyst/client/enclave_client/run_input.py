"""What a batch run sends: the notebook from a path inside the home, and its parameters as JSON.

Only what must not leave the workspace or cannot be sent is refused here; the runs service decides
everything else (nbformat, kernel, parameter names and values).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enclave_client.errors import RunError, error_entry

MAX_NOTEBOOK_BYTES = 5 * 1024 * 1024  # the service's cap: a larger notebook is refused before sending


def _error(code: str, en: str, zh: str) -> RunError:
    return RunError(0, [error_entry(code, en, zh)])


def home_dir() -> Path:
    """The current user's home (the workspace's ``/home/analyst``)."""
    return Path(os.path.expanduser("~"))


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def notebook_file(notebook_path: str | os.PathLike[str]) -> Path:
    """The notebook's real path, refused unless it is a ``.ipynb`` file inside the home.

    Relative paths are taken from the current directory (a notebook's kernel runs in the
    notebook's folder). Checked both as written and with symlinks resolved, so neither ``..``
    nor a link inside the home can point outside it.
    """
    home = home_dir()
    roots = [Path(os.path.normpath(home)), home.resolve()]
    raw = Path(notebook_path).expanduser()
    written = Path(os.path.normpath(raw if raw.is_absolute() else Path.cwd() / raw))
    outside = _error(
        "run_path_outside_home",
        f"{notebook_path} is not inside your home folder {home}: only notebooks of the workspace can run",
        f"{notebook_path} 不在您的主目录 {home} 中：只能运行工作区中的笔记本",
    )
    if not _inside(written, roots):
        raise outside
    try:
        real = written.resolve(strict=True)
    except FileNotFoundError:
        raise _error(
            "run_notebook_not_found", f"No notebook at {written}", f"找不到笔记本 {written}"
        ) from None
    except (OSError, RuntimeError):  # a symlink loop
        raise _error("run_notebook_not_found", f"Cannot open {written}", f"无法打开 {written}") from None
    if not _inside(real, roots):
        raise outside
    if not real.is_file() or real.suffix != ".ipynb":
        raise _error(
            "run_notebook_not_a_notebook",
            f"{written} is not a notebook file (.ipynb)",
            f"{written} 不是笔记本文件（.ipynb）",
        )
    return real


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_notebook_text(text: str, name: str) -> str:
    """The notebook's file text, refused when it is not a JSON object (NaN and Infinity included)."""
    try:
        notebook = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        notebook = None
    if not isinstance(notebook, dict):
        raise _error(
            "run_notebook_invalid",
            f"{name} is not a notebook (not a JSON object)",
            f"{name} 不是笔记本（不是 JSON 对象）",
        )
    return text


def read_notebook(path: Path) -> str:
    """The notebook's file text, sent as it is so that the run records the file's own sha256;
    refused locally when it is too large or not a JSON object."""
    with path.open("rb") as handle:
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise _error(
            "run_notebook_too_large",
            f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB: clear its outputs first",
            f"{path.name} 超过 {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB：请先清除其输出",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    return check_notebook_text(text, path.name)


def _plain(name: str, value: Any) -> Any:
    """A parameter value as JSON. NumPy scalars become numbers and tuples lists; what JSON cannot
    carry is refused here (the codes are the service's), and the service judges the rest."""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()  # a NumPy scalar
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        return [_plain(name, item) for item in value]
    if isinstance(value, Mapping):
        return {_name(key): _plain(name, item) for key, item in value.items()}
    raise _error(
        "run_parameter_invalid",
        f"Parameter {name}: {type(value).__name__} cannot be sent; use text, a number, True/False, "
        "None or a list of those",
        f"参数 {name}：无法发送 {type(value).__name__} 类型的值；"
        "请使用文本、数字、True/False、None 或它们的列表",
    )


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise _error(
            "run_parameter_name_invalid",
            f"Parameter names must be text, not {name!r}",
            f"参数名必须是文本，而不是 {name!r}",
        )
    return name


def encode_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters as the JSON object the service receives (it checks the names and values)."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise _error(
            "run_parameters_invalid",
            "Parameters must be a dict of name -> value",
            "参数必须是 名称 -> 值 的字典",
        )
    return {_name(name): _plain(name, value) for name, value in parameters.items()}
