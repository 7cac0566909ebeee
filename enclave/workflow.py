"""The one check every state machine here makes before a move (STYLE §5.7): is ``to`` a move from the
current state, and is ``actor`` the one who may make it. Each machine keeps its own table, error
codes and words (``enclave.applications.workflow``, ``export_review.workflow``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TypeVar

from enclave.errors import Forbidden

State = TypeVar("State", bound=StrEnum)
Actor = TypeVar("Actor", bound=StrEnum)


def check_transition(
    transitions: Mapping[State, Mapping[State, Actor]],
    current: State,
    to: State,
    actor: Actor,
    *,
    kind: str,
    obj: tuple[str, str],
    label: tuple[str, str],
    actor_zh: Callable[[Actor], str] = str,
) -> None:
    """Raise ``Forbidden`` (``{kind}_state_invalid``, ``{kind}_transition_forbidden``) unless ``to`` is
    a valid move from ``current`` for ``actor``. ``obj`` is the details key and the object's id,
    ``label`` what the messages call it in English (lower case) and in Chinese."""
    key, obj_id = obj
    label_en, label_zh = label
    allowed = transitions[current]
    if to not in allowed:
        raise Forbidden(
            f"{kind}_state_invalid",
            f"{label_en[:1].upper()}{label_en[1:]} {obj_id} is {current}: it cannot become {to}",
            f"{label_zh} {obj_id} 的状态为 {current}：不能变为 {to}",
            details={key: obj_id, "from": current.value, "to": to.value},
        )
    if allowed[to] is not actor:
        raise Forbidden(
            f"{kind}_transition_forbidden",
            f"Only the {allowed[to]} may move {label_en} {obj_id} from {current} to {to}",
            f"只有{actor_zh(allowed[to])}可以将{label_zh} {obj_id} 从 {current} 变为 {to}",
            details={key: obj_id, "from": current.value, "to": to.value, "actor": actor.value},
        )
