"""What a batch run's notebook and parameters may be (issue 12): checked before anything is stored.

A notebook is nbformat 4 JSON of at most ``MAX_NOTEBOOK_BYTES`` with a Python kernel. Parameters
are papermill's: names are Python identifiers, values JSON scalars (or short lists of them), which
papermill writes into the notebook as literals, so a value can never become code. A template
declares its parameters in the cell tagged ``parameters`` (papermill's convention), as plain
``name = literal`` assignments; a template run may set only those.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from typing import Any

from enclave.errors import BadInput, Refused

MAX_NOTEBOOK_BYTES = 5 * 1024 * 1024
MAX_PARAMETERS = 50
MAX_TEXT_VALUE = 2000
MAX_LIST_ITEMS = 100
NOTEBOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,200}\.ipynb$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
PYTHON_KERNELS = frozenset({"python3", "python"})

Scalar = str | int | float | bool | None


def _bad(code: str, en: str, zh: str, **details: Any) -> BadInput:
    return BadInput(code, en, zh, details=details or None)


def check_name(name: str) -> str:
    """A notebook's display name: a plain ``.ipynb`` file name, no folders."""
    if not NOTEBOOK_NAME.match(name or ""):
        raise _bad(
            "run_notebook_name_invalid",
            f"{name!r} is not a notebook file name (letters, digits, spaces, ._()+- and .ipynb; no folders)",
            f"{name!r} 不是有效的笔记本文件名（字母、数字、空格、._()+- 并以 .ipynb 结尾；不含目录）",
            name=name,
        )
    return name


def load(data: bytes) -> dict[str, Any]:
    """The notebook as JSON, or a clear refusal (too large, not JSON, not nbformat 4, not Python)."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise Refused(
            "run_notebook_too_large",
            f"The notebook is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB: clear its outputs first",
            f"笔记本超过 {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB：请先清除其输出",
            details={"cap": MAX_NOTEBOOK_BYTES},
        )
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad(
            "run_notebook_invalid", "The notebook is not valid JSON", "笔记本不是有效的 JSON"
        ) from None
    if (
        not isinstance(notebook, dict)
        or notebook.get("nbformat") != 4
        or not isinstance(notebook.get("cells"), list)
        or not isinstance(notebook.get("metadata", {}), dict)
        or not all(isinstance(cell, dict) and "cell_type" in cell for cell in notebook["cells"])
    ):
        raise _bad(
            "run_notebook_invalid",
            "The notebook is not an nbformat 4 notebook (a JSON object with nbformat 4 and a list of cells)",
            "笔记本不是 nbformat 4 格式（应为含 nbformat 4 和单元格列表的 JSON 对象）",
        )
    kernel = (notebook.get("metadata", {}).get("kernelspec") or {}).get("name", "python3")
    if kernel not in PYTHON_KERNELS:
        raise _bad(
            "run_notebook_kernel",
            f"The notebook's kernel is {kernel!r}: batch runs use the Python 3 kernel",
            f"笔记本的内核为 {kernel!r}：批处理作业只使用 Python 3 内核",
            kernel=str(kernel),
        )
    return notebook


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def code_cells(notebook: dict[str, Any]) -> int:
    """How many code cells papermill will execute (the progress total)."""
    return sum(1 for cell in notebook["cells"] if cell.get("cell_type") == "code")


def declared_parameters(notebook: dict[str, Any]) -> dict[str, Scalar | list[Scalar]]:
    """The names and defaults of the cell tagged ``parameters``: plain ``name = literal`` lines.

    A template must have such a cell; anything else in it (calls, imports) is refused, so the
    declared set is exactly what an analyst may change.
    """
    cells = [
        cell
        for cell in notebook["cells"]
        if cell.get("cell_type") == "code" and "parameters" in (cell.get("metadata", {}).get("tags") or [])
    ]
    if len(cells) != 1:
        raise _bad(
            "run_template_parameters_cell",
            "A template needs exactly one code cell tagged `parameters` (papermill's convention)",
            "模板需要恰好一个带 `parameters` 标签的代码单元格（papermill 约定）",
            found=len(cells),
        )
    try:
        tree = ast.parse(cell_source(cells[0]))
    except SyntaxError:
        raise _bad(
            "run_template_parameters_cell",
            "The `parameters` cell is not valid Python",
            "`parameters` 单元格不是有效的 Python 代码",
        ) from None
    declared: dict[str, Scalar | list[Scalar]] = {}
    for statement in tree.body:
        if (
            not isinstance(statement, ast.Assign | ast.AnnAssign)
            or len(getattr(statement, "targets", [None])) != 1
        ):
            raise _bad(
                "run_template_parameters_cell",
                "The `parameters` cell may hold only `name = literal` assignments",
                "`parameters` 单元格只能包含 `名称 = 字面量` 形式的赋值",
                line=getattr(statement, "lineno", 0),
            )
        target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
        if not isinstance(target, ast.Name) or statement.value is None:
            raise _bad(
                "run_template_parameters_cell",
                "The `parameters` cell may hold only `name = literal` assignments",
                "`parameters` 单元格只能包含 `名称 = 字面量` 形式的赋值",
                line=statement.lineno,
            )
        try:
            value = ast.literal_eval(statement.value)
        except ValueError:
            raise _bad(
                "run_template_parameters_cell",
                f"The default of {target.id} is not a literal",
                f"{target.id} 的默认值不是字面量",
                name=target.id,
            ) from None
        declared[target.id] = check_value(target.id, value)
    return declared


def check_value(name: str, value: Any) -> Scalar | list[Scalar]:
    """A parameter value papermill can write as a literal: a JSON scalar or a short list of them."""
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST_ITEMS:
            raise _bad(
                "run_parameter_invalid",
                f"Parameter {name}: at most {MAX_LIST_ITEMS} items",
                f"参数 {name}：最多 {MAX_LIST_ITEMS} 项",
                name=name,
            )
        return [_check_scalar(name, item) for item in value]
    return _check_scalar(name, value)


def _check_scalar(name: str, value: Any) -> Scalar:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= MAX_TEXT_VALUE:
        return value
    raise _bad(
        "run_parameter_invalid",
        f"Parameter {name}: a value must be text (≤ {MAX_TEXT_VALUE} characters), a number, true/false, "
        "null, or a list of those",
        f"参数 {name}：值必须是文本（≤ {MAX_TEXT_VALUE} 个字符）、数字、true/false、null 或它们的列表",
        name=name,
    )


def check_parameters(
    parameters: Any, declared: dict[str, Any] | None = None
) -> dict[str, Scalar | list[Scalar]]:
    """Valid parameters (a dict of identifier -> literal); with ``declared``, only those names."""
    if not isinstance(parameters, dict):
        raise _bad("run_parameters_invalid", "Parameters must be a JSON object", "参数必须是 JSON 对象")
    if len(parameters) > MAX_PARAMETERS:
        raise _bad(
            "run_parameters_invalid",
            f"At most {MAX_PARAMETERS} parameters",
            f"最多 {MAX_PARAMETERS} 个参数",
        )
    checked: dict[str, Scalar | list[Scalar]] = {}
    for name, value in parameters.items():
        if (
            not isinstance(name, str)
            or not PARAMETER_NAME.match(name)
            or keyword.iskeyword(name)
            or name.startswith("__")
        ):
            raise _bad(
                "run_parameter_name_invalid",
                f"{name!r} is not a parameter name (a Python identifier, not a keyword or dunder)",
                f"{name!r} 不是有效的参数名（须为 Python 标识符，且不是关键字或双下划线名称）",
                name=str(name),
            )
        if declared is not None and name not in declared:
            raise _bad(
                "run_parameter_not_declared",
                f"The template does not declare a parameter {name!r}; "
                f"it declares: {', '.join(sorted(declared))}",
                f"模板未声明参数 {name!r}；已声明：{', '.join(sorted(declared))}",
                name=name,
                declared=sorted(declared),
            )
        checked[name] = check_value(name, value)
    return checked


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
