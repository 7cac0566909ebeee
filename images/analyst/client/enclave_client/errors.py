"""The exceptions analysts see: a refusal or failure from the gateway (``QueryError``) or from the
runs service (``RunError``, a ``QueryError`` too), in both languages."""

from __future__ import annotations

import html
from typing import Any

from enclave_client.guide import guard_docs


class QueryError(Exception):
    """The gateway said no. ``code`` is the first error's code; ``errors`` holds them all.

    Each entry is ``{"code": ..., "message": {"en": ..., "zh": ...}}`` (the gateway's error shape); a
    guard refusal's entries also carry ``hint`` (how to rewrite the query) and ``doc`` (the guard docs'
    section, shipped with the client: ``enclave_client.guard_docs(doc)``), each ``{"en": ..., "zh": ...}``.
    """

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors or [
            {"code": "unknown_error", "message": {"en": "Unknown error", "zh": "未知错误"}}
        ]
        first = self.errors[0]
        self.code: str = str(first.get("code", "unknown_error"))
        self.message: str = str(first.get("message", {}).get("en", ""))
        self.message_zh: str = str(first.get("message", {}).get("zh", ""))
        super().__init__(str(self))

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code")) for e in self.errors]

    @property
    def refused(self) -> bool:
        """True when a disclosure rule (the guard) refused the query."""
        return self.status == 422

    def __str__(self) -> str:
        lines = []
        for entry in self.errors:
            message = entry.get("message", {})
            lines.append(f"[{entry.get('code')}] {message.get('en', '')}")
            lines.append(f"    {message.get('zh', '')}")
            hint, doc = _text(entry, "hint"), _text(entry, "doc")
            if hint["en"]:
                lines.append(f"    How to rewrite: {hint['en']}")
                lines.append(f"    如何改写：{hint['zh']}")
            if doc["en"]:
                lines.append(
                    f"    Guard docs / 查询守卫文档: {doc['en']}  (enclave_client.guard_docs({doc['en']!r}))"
                )
        return "\n".join(lines)

    def _title(self) -> str:
        return "Query refused / 查询被拒绝" if self.refused else "Query failed / 查询失败"

    def _repr_html_(self) -> str:
        items = "".join(
            "<li><code>{}</code> {}<br>{}{}</li>".format(
                html.escape(str(e.get("code"))),
                html.escape(str(e.get("message", {}).get("en", ""))),
                html.escape(str(e.get("message", {}).get("zh", ""))),
                _guidance_html(e),
            )
            for e in self.errors
        )
        title = html.escape(self._title())
        return f'<div class="enclave-error"><strong>{title}</strong><ul>{items}</ul></div>'


class RunError(QueryError):
    """A batch run could not be submitted, found, cancelled or read (``enclave_client.runs``).

    The same shape as ``QueryError`` (so ``except QueryError`` catches both); ``code`` is stable.
    """

    @property
    def refused(self) -> bool:
        """True when a rule of the enclave refused the request (not a fault of the service)."""
        return self.status in (403, 413, 422)

    def _title(self) -> str:
        return "Batch run refused / 批处理作业被拒绝" if self.refused else "Batch run failed / 批处理作业失败"


def _text(entry: dict[str, Any], key: str) -> dict[str, str]:
    """An optional bilingual field of an error entry (``hint``, ``doc``); empty strings when absent."""
    value = entry.get(key)
    if not isinstance(value, dict):
        return {"en": "", "zh": ""}
    return {"en": str(value.get("en") or ""), "zh": str(value.get("zh") or "")}


def _guidance_html(entry: dict[str, Any]) -> str:
    """How to rewrite the query, and the guard docs' section inline (offline, from the client's copy)."""
    hint, doc = _text(entry, "hint"), _text(entry, "doc")
    out = ""
    if hint["en"]:
        out += "<br><em>How to rewrite / 如何改写:</em> {}<br>{}".format(
            html.escape(hint["en"]), html.escape(hint["zh"])
        )
    if doc["en"]:
        text = guard_docs(doc["en"])
        body = f"<pre>{html.escape(text)}</pre>" if text else ""
        out += (
            f'<details class="enclave-guard-docs"><summary>Guard docs / 查询守卫文档: '
            f"<code>{html.escape(doc['en'])}</code></summary>{body}</details>"
        )
    return out


def error_entry(code: str, en: str, zh: str) -> dict[str, Any]:
    """One entry of the services' error shape."""
    return {"code": code, "message": {"en": en, "zh": zh}}
