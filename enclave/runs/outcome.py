"""What a run's own files say about it: progress from papermill's log, the error that failed it, and
the ``error_json`` records of every way a run can end badly (English and Simplified Chinese).

papermill (``--log-output``) logs ``Executing Cell N---`` and ``Ending Cell N---`` for every cell of
the notebook it executes, markdown cells and its injected ``parameters`` cell included; progress
counts only the analyst's code cells among the first N (``cell_layout``), so it ends at the
``cells_total`` that ``service.submit`` recorded. The log and the executed notebook come from the
analyst's code: they are parsed with caps and never trusted beyond what is displayed.
"""

from __future__ import annotations

import json
import re
from typing import Any

ENDING_CELL = re.compile(rb"^Ending Cell (\d{1,6})-", re.MULTILINE)
EXCEPTION_AT = re.compile(r'Exception encountered at "In \[(\d*)\]":')
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ERROR_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,100}(?:Error|Exception|Exit|Interrupt|Warning)): ?(.*)$")
MAX_TEXT = 2000


def clean(text: str, limit: int = MAX_TEXT) -> str:
    text = ANSI.sub("", text).replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tags(cell: dict[str, Any]) -> list[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _first_tagged(cells: list[dict[str, Any]], tag: str) -> int:
    return next((i for i, cell in enumerate(cells) if tag in _tags(cell)), -1)


def cell_layout(notebook: dict[str, Any], parameters: dict[str, Any]) -> list[bool]:
    """For each cell papermill executes, in order: whether it is one of the analyst's code cells.
    Where papermill puts its injected parameters cell is its own rule (``parameterize_notebook``)."""
    cells = [c for c in notebook.get("cells", []) if isinstance(c, dict)]
    layout = [cell.get("cell_type") == "code" for cell in cells]
    if not parameters:
        return layout  # papermill injects nothing
    if _first_tagged(cells, "injected-parameters") >= 0:
        return layout  # replaced in place: still one code cell there
    after = _first_tagged(cells, "parameters")
    layout.insert(after + 1, False)  # after the parameters cell, or first (after = -1)
    return layout


def highest_ended(log: bytes) -> int:
    """The highest ``N`` of papermill's ``Ending Cell N`` lines in ``log`` (0 if none)."""
    return max((int(m.group(1)) for m in ENDING_CELL.finditer(log)), default=0)


def cells_done(ended: int, layout: list[bool]) -> int:
    """The analyst's code cells among the first ``ended`` cells papermill executed."""
    return sum(layout[: max(0, min(ended, len(layout)))])


# ---- errors ------------------------------------------------------------------------------------


def error(code: str, en: str, zh: str, **details: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "message": en, "message_zh": zh}
    if details:
        out["details"] = details
    return out


PAPERMILL_CELLS = frozenset({"papermill-error-cell-tag", "injected-parameters"})


def cell_error_from_notebook(data: bytes) -> dict[str, Any] | None:
    """The first error output of an executed notebook: ``{"cell", "execution_count", "ename",
    "evalue"}``, or ``None``. ``cell`` is the cell's place (from 1) in the analyst's notebook: the
    cells papermill adds (its parameters and its error banners) are not counted."""
    try:
        notebook = json.loads(data)
    except (ValueError, RecursionError):
        return None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    place = 0
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        if PAPERMILL_CELLS & set(_tags(cell)):
            continue
        place += 1
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else []:
            if not isinstance(output, dict) or output.get("output_type") != "error":
                continue
            ename, evalue = str(output.get("ename", "")), str(output.get("evalue", ""))
            if ename == "SystemExit" and evalue in ("", "0"):
                continue  # papermill's own rule: a clean exit is no failure
            count = cell.get("execution_count")
            return {
                "cell": place,
                "execution_count": count if isinstance(count, int) else None,
                "ename": clean(ename, 200),
                "evalue": clean(evalue),
            }
    return None


def cell_error_from_log(log: str) -> dict[str, Any] | None:
    """papermill's report of a failed cell at the end of its log, when no executed notebook says."""
    found = list(EXCEPTION_AT.finditer(log))
    if not found:
        return None
    tail = log[found[-1].end() :]
    for line in reversed([ANSI.sub("", line).strip() for line in tail.splitlines()]):
        match = ERROR_LINE.match(line)
        if match:
            count = found[-1].group(1)
            return {
                "cell": None,
                "execution_count": int(count) if count else None,
                "ename": clean(match.group(1), 200),
                "evalue": clean(match.group(2)),
            }
    return None


def cell_failed(cell: dict[str, Any]) -> dict[str, Any]:
    where = f"cell {cell['cell']}" if cell.get("cell") else "a cell"
    where_zh = f"第 {cell['cell']} 个单元格" if cell.get("cell") else "某个单元格"
    if cell.get("execution_count"):
        where += f" (In [{cell['execution_count']}])"
        where_zh += f"（In [{cell['execution_count']}]）"
    text = f"{cell['ename']}: {cell['evalue']}" if cell["evalue"] else cell["ename"]
    return error(
        "run_failed",
        f"The notebook failed in {where}: {text}",
        f"笔记本在{where_zh}失败：{text}",
        **cell,
    )


def exited(code: int, last_line: str) -> dict[str, Any]:
    return error(
        "run_failed",
        f"papermill ended with status {code}: {clean(last_line, 500)}",
        f"papermill 以状态 {code} 结束：{clean(last_line, 500)}",
        exit_code=code,
    )


def out_of_memory(limit: int | None) -> dict[str, Any]:
    return error(
        "run_out_of_memory",
        "The run used more memory than its limit and was stopped",
        "作业使用的内存超过上限，已被停止",
        **({"limit_bytes": limit} if limit else {}),
    )


def timed_out(timeout_s: int) -> dict[str, Any]:
    return error(
        "run_timed_out",
        f"The run passed its time limit of {timeout_s} s and was stopped",
        f"作业超过了 {timeout_s} 秒的时间限制，已被停止",
        timeout_s=timeout_s,
    )


def cancelled(by: str | None = None) -> dict[str, Any]:
    return error(
        "run_cancelled", "The run was cancelled on request", "作业已按请求取消", **({"by": by} if by else {})
    )


def worker_lost() -> dict[str, Any]:
    return error(
        "worker_lost",
        "The worker running this run stopped before it ended, and its container is gone",
        "执行此作业的批处理执行器在作业结束前停止，其容器已不存在",
    )


def start_failed(reason: str) -> dict[str, Any]:
    return error(
        "run_start_failed",
        f"The run's container could not be started: {clean(reason, 300)}",
        f"无法启动作业的容器：{clean(reason, 300)}",
    )


def data_version_changed(recorded: int, current: int) -> dict[str, Any]:
    return error(
        "run_data_version_changed",
        f"The project's data changed from version {recorded} to {current} after the run was "
        "submitted: it was not run on other data than its record says; submit it again",
        f"作业提交后项目数据已从版本 {recorded} 变为 {current}：作业不会在与记录不符的数据上运行；请重新提交",
        recorded=recorded,
        current=current,
    )


def outputs_overflow(max_files: int, max_bytes: int) -> dict[str, Any]:
    return error(
        "run_outputs_overflow",
        f"The run wrote more than {max_files} files or {max_bytes} bytes and was stopped",
        f"作业写入的文件超过 {max_files} 个或 {max_bytes} 字节，已被停止",
        max_files=max_files,
        max_bytes=max_bytes,
    )
