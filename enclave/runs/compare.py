"""The reproducibility check: an export's files against the outputs of a rerun of the same run.

Per file one status:

* ``identical``: the same bytes, or the same after removing execution metadata (``normalise``:
  notebooks' timings and counts, XLSX created/modified times, PDF dates; the result says what was
  ignored);
* ``different``: the rerun wrote other content; tables (CSV, TSV, XLSX) get a cell diff, notebooks
  and text a cell or line diff, and the likely cause is named plainly when every differing value is
  a timestamp (``"timestamps"``) or a number (``"numbers differ (unseeded randomness or floating
  point)"``, with the largest absolute and relative gap);
* ``missing``: the rerun did not write it;
* ``edited_after_run``: the exported bytes do not hash to the run's recorded output: not reproduced,
  whatever the rerun wrote;
* ``not_in_run``: the run has no output of that name;
* ``rerun_output_changed``: the rerun's stored output no longer hashes to what the rerun recorded.

The verdict is ``reproduced`` only when every file is ``identical``; anything else is
``not_reproduced``, with each file's reason and the nondeterminism notes. Pure: no database, and the
only files read are the ones passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from enclave.runs import normalise
from enclave.runs.tablediff import DEFAULT_EXAMPLES, diff_tables
from enclave.runs.values import Tally, token_pairs

TABLE_KINDS = frozenset({"csv", "tsv", "xlsx"})
KIND_ALIASES = {"jpeg": "jpg", "htm": "html"}
EXCERPT = 200


class Status(StrEnum):
    IDENTICAL = "identical"
    DIFFERENT = "different"
    MISSING = "missing"
    EDITED_AFTER_RUN = "edited_after_run"
    NOT_IN_RUN = "not_in_run"
    RERUN_OUTPUT_CHANGED = "rerun_output_changed"


class Verdict(StrEnum):
    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not_reproduced"


REASONS: dict[Status, tuple[str, str]] = {
    Status.IDENTICAL: ("identical in the rerun", "重跑结果相同"),
    Status.DIFFERENT: ("the rerun wrote different content", "重跑生成的内容不同"),
    Status.MISSING: ("the rerun did not write this file", "重跑未生成此文件"),
    Status.EDITED_AFTER_RUN: (
        "edited after the run: its hash is not the run's recorded output hash, so it is not "
        "reproduced whatever the rerun writes",
        "运行后被修改：其哈希与运行记录的输出哈希不同，无论重跑结果如何均视为未复现",
    ),
    Status.NOT_IN_RUN: ("not an output of the run, so it cannot be reproduced", "不是该运行的输出，无法复现"),
    Status.RERUN_OUTPUT_CHANGED: (
        "the rerun's stored output no longer matches the hash the rerun recorded",
        "重跑存储的输出与其记录的哈希不符",
    ),
}


@dataclass(frozen=True)
class Exported:
    """A file of the export: its bytes (or stored path) and the hash the original run recorded for
    the output of the same name (``None``: the run has no such output)."""

    source: bytes | Path
    run_sha256: str | None


@dataclass(frozen=True)
class Produced:
    """An output of the rerun: its bytes (or stored path) and the hash the rerun recorded."""

    source: bytes | Path
    sha256: str | None = None


def kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower().lstrip(".")
    return KIND_ALIASES.get(suffix, suffix)


def _read(source: bytes | Path) -> bytes | None:
    if isinstance(source, bytes):
        return source
    try:
        return source.read_bytes()
    except OSError:
        return None


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def _text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _text_diff(before: str, after: str, tally: Tally, max_examples: int) -> dict[str, Any]:
    """Lines matched by position; differing lines that keep their tokens feed the tally."""
    left, right = before.splitlines(), after.splitlines()
    if len(left) != len(right):
        tally.structural = True
    changed, examples = 0, []
    for number, (a, b) in enumerate(zip(left, right, strict=False), start=1):
        if a == b:
            continue
        changed += 1
        pairs = token_pairs(a, b)
        if pairs is None:
            tally.structural = True
        else:
            tally.add_all(pairs)
        if len(examples) < max_examples:
            examples.append([number, _excerpt(a), _excerpt(b)])
    return {
        "lines_before": len(left),
        "lines_after": len(right),
        "changed_lines": changed,
        "examples": examples,
    }


def _outputs_text(cell: Any) -> str:
    outputs = cell.get("outputs", []) if isinstance(cell, dict) else []
    return json.dumps(outputs, sort_keys=True, ensure_ascii=False)


def _notebook_diff(before: dict, after: dict, tally: Tally, max_examples: int) -> dict[str, Any]:
    """Which cells differ (source, outputs, other fields) once execution metadata is gone."""
    left, right = before["cells"], after["cells"]
    out: dict[str, Any] = {
        "cells_before": len(left),
        "cells_after": len(right),
        "metadata_changed": {k: v for k, v in before.items() if k != "cells"}
        != {k: v for k, v in after.items() if k != "cells"},
    }
    if len(left) != len(right) or out["metadata_changed"]:
        tally.structural = True
    cells, examples = [], []
    for number, (a, b) in enumerate(zip(left, right, strict=False), start=1):
        if a == b:
            continue
        both = isinstance(a, dict) and isinstance(b, dict)
        parts = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) if both else ["cell"]
        cells.append({"cell": number, "parts": parts})
        if parts != ["outputs"]:
            tally.structural = True  # the code or the cell's type changed, not just its results
            continue
        pairs = token_pairs(_outputs_text(a), _outputs_text(b))
        if pairs is None:
            tally.structural = True
            continue
        tally.add_all(pairs)
        for x, y in pairs:
            if len(examples) < max_examples:
                examples.append([number, _excerpt(x), _excerpt(y)])
    out["changed_cells"] = len(cells)
    out["cells"] = cells[:max_examples]
    out["examples"] = examples
    return out


def _details(kind: str, before: bytes, after: bytes, max_examples: int) -> dict[str, Any]:
    """What differs between two versions of a file, and the nondeterminism note when it applies."""
    tally = Tally()
    out: dict[str, Any] = {}
    if kind in TABLE_KINDS:
        try:
            out["table"] = diff_tables(before, after, kind, tally, max_examples)
        except ValueError as error:
            out["table_unreadable"] = str(error)
    if not out.get("table") and kind == "ipynb":
        left, right = normalise.notebook(before), normalise.notebook(after)
        if left is not None and right is not None:
            out["notebook"] = _notebook_diff(left, right, tally, max_examples)
    if "table" not in out and "notebook" not in out:
        left_text, right_text = _text(before), _text(after)
        if left_text is not None and right_text is not None:
            out["text"] = _text_diff(left_text, right_text, tally, max_examples)
        else:
            tally.structural = True
            out["binary"] = {"size_before": len(before), "size_after": len(after)}
    if "table" in out and not out["table"]["changed_cells"] and not tally.structural:
        # Same cells, other bytes (quoting, line ends, formatting): a difference, but not a value.
        tally.structural = True
        out["table"]["same_cells_other_bytes"] = True
    note = tally.note()
    if note:
        out.update(note)
    elif tally.numbers:
        out["numbers"] = tally.numbers_dict()
    return out


def _compare_file(
    name: str, exported: Exported, produced: Produced | None, max_examples: int
) -> dict[str, Any]:
    kind = kind_of(name)
    data = _read(exported.source)
    sha = _sha(data)
    out: dict[str, Any] = {"name": name, "sha256": sha, "run_sha256": exported.run_sha256}
    rerun_data = None if produced is None else _read(produced.source)
    if produced is not None:
        out["rerun_sha256"] = _sha(rerun_data)
    if exported.run_sha256 is None:
        status = Status.NOT_IN_RUN
    elif sha != exported.run_sha256:
        status = Status.EDITED_AFTER_RUN
    elif produced is None:
        status = Status.MISSING
    elif rerun_data is None or (produced.sha256 is not None and out["rerun_sha256"] != produced.sha256):
        status = Status.RERUN_OUTPUT_CHANGED
    elif rerun_data == data:
        status = Status.IDENTICAL
    elif normalise.comparable(kind, data or b"") == normalise.comparable(kind, rerun_data):
        status = Status.IDENTICAL
        en, zh = normalise.IGNORED[kind]
        out["ignored"], out["ignored_zh"] = en, zh
    else:
        status = Status.DIFFERENT
    informative = status in (Status.DIFFERENT, Status.EDITED_AFTER_RUN, Status.NOT_IN_RUN)
    if informative and data is not None and rerun_data is not None and data != rerun_data:
        out.update(_details(kind, data, rerun_data, max_examples))
    out["status"] = status.value
    out["reason"], out["reason_zh"] = _reason(status, out)
    return out


def _reason(status: Status, result: dict[str, Any]) -> tuple[str, str]:
    en, zh = REASONS[status]
    if status is Status.IDENTICAL and "ignored" in result:
        return f"identical apart from {result['ignored']}", f"除{result['ignored_zh']}外相同"
    if status is not Status.DIFFERENT:
        return en, zh
    table = result.get("table")
    if table:
        en += f": {table['changed_cells']} cell(s) changed"
        zh += f"：{table['changed_cells']} 个单元格有变化"
        shapes = [t for t in table["tables"] if t["shape_changed"]]
        if shapes or table["sheets_added"] or table["sheets_removed"]:
            en += ", and the table's shape changed"
            zh += "，且表格形状有变化"
    elif "notebook" in result:
        en += f": {result['notebook']['changed_cells']} notebook cell(s) differ"
        zh += f"：{result['notebook']['changed_cells']} 个笔记本单元不同"
    elif "text" in result:
        en += f": {result['text']['changed_lines']} line(s) differ"
        zh += f"：{result['text']['changed_lines']} 行不同"
    if "nondeterminism" in result:
        en += f" ({result['nondeterminism']})"
        zh += f"（{result['nondeterminism_zh']}）"
    return en, zh


def compare(
    exported: Mapping[str, Exported],
    rerun: Mapping[str, Produced],
    *,
    max_examples: int = DEFAULT_EXAMPLES,
) -> dict[str, Any]:
    """Compare every exported file with the rerun's output of the same name; JSON-ready result."""
    files = [_compare_file(n, exported[n], rerun.get(n), max_examples) for n in sorted(exported)]
    counts: dict[str, int] = {}
    for f in files:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    reproduced = bool(files) and all(f["status"] == Status.IDENTICAL for f in files)
    notes = [
        {
            "file": f["name"],
            "nondeterminism": f["nondeterminism"],
            "nondeterminism_zh": f["nondeterminism_zh"],
        }
        | ({"numbers": f["numbers"]} if "numbers" in f else {})
        for f in files
        if "nondeterminism" in f
    ]
    return {
        "verdict": (Verdict.REPRODUCED if reproduced else Verdict.NOT_REPRODUCED).value,
        **_summary(files, reproduced),
        "files": files,
        "counts": counts,
        "notes": notes,
        "rerun_only": sorted(set(rerun) - set(exported)),
    }


def _summary(files: list[dict[str, Any]], reproduced: bool) -> dict[str, str]:
    if not files:
        return {"summary": "Not reproduced: no files to compare", "summary_zh": "未复现：没有可比较的文件"}
    if reproduced:
        return {
            "summary": f"Reproduced: all {len(files)} file(s) are identical in the rerun",
            "summary_zh": f"已复现：重跑后全部 {len(files)} 个文件相同",
        }
    bad = [f for f in files if f["status"] != Status.IDENTICAL]
    return {
        "summary": f"Not reproduced: {len(bad)} of {len(files)} file(s) not identical ("
        + "; ".join(f"{f['name']}: {f['reason']}" for f in bad)
        + ")",
        "summary_zh": f"未复现：{len(files)} 个文件中有 {len(bad)} 个不同（"
        + "；".join(f"{f['name']}：{f['reason_zh']}" for f in bad)
        + "）",
    }


def not_reproduced(code: str, message: str, message_zh: str, **details: Any) -> dict[str, Any]:
    """The result when no file comparison can decide (the rerun failed, the data changed...)."""
    return {
        "verdict": Verdict.NOT_REPRODUCED.value,
        "reason": {"code": code, "message": message, "message_zh": message_zh, **details},
        "summary": f"Not reproduced: {message}",
        "summary_zh": f"未复现：{message_zh}",
        "files": [],
        "counts": {},
        "notes": [],
        "rerun_only": [],
    }
