"""English and Simplified Chinese for the services' pages: the reader's language comes from ``?lang=``
or the browser; each service keeps its own labels and subclasses ``Translator`` with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

LANGUAGES = ("en", "zh")
Labels = Mapping[str, tuple[str, str]]


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """``?lang=`` wins; else the first of the browser's languages that we have; else English."""
    if requested in LANGUAGES:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


@dataclass(frozen=True)
class Translator:
    """``t("key")`` is the label in the reader's language; ``t.message(en, zh)`` picks one of two."""

    lang: str
    labels: ClassVar[Labels] = {}

    def __call__(self, key: str) -> str:
        en, zh = self.labels[key]
        return zh if self.lang == "zh" else en

    def labelled(self, prefix: str, value: str) -> str:
        """The label ``{prefix}_{value}`` in the reader's language, or ``value`` itself when there is none."""
        key = f"{prefix}_{value}"
        return self(key) if key in self.labels else value

    def state(self, state: str) -> str:
        return self.labelled("state", state)

    def message(self, en: str, zh: str) -> str:
        return zh if self.lang == "zh" else en

    def pair(self, labels: Mapping[str, str] | tuple[str, str] | None, fallback: str = "") -> str:
        """A label given as ``{"en", "zh"}`` or ``(en, zh)`` by a domain module, in the reader's language."""
        if labels is None:
            return fallback
        if isinstance(labels, Mapping):
            return str(labels.get(self.lang) or labels.get("en") or fallback)
        return self.message(labels[0], labels[1])
