"""A batch run's gateway identity: a random token bound to one run (issue 12).

A workspace's queries carry its server's hub token; a run has no hub server, so the worker issues
the run a token of its own when it starts it. Only its sha256 is stored. The gateway accepts it
while the run is ``running`` and not asked to cancel, as the run's user in the run's project; the
worker revokes it when the run ends, so a token copied out of a finished run is worth nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave.db.models import Run
from enclave.errors import Forbidden

RUN_TOKEN_PREFIX = "encrun_"


@dataclass(frozen=True)
class RunCaller:
    """Who a run token speaks for."""

    user: str
    project: str
    run_id: str


def is_run_token(token: str) -> bool:
    return token.startswith(RUN_TOKEN_PREFIX)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(run: Run) -> str:
    """A new token for ``run`` (its hash stored on the run; the caller commits)."""
    token = RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    run.token_hash = token_hash(token)
    return token


def revoke(run: Run) -> None:
    run.token_hash = None


def _invalid() -> Forbidden:
    return Forbidden(
        "token_invalid",
        "This run token is not valid: the run is unknown, not running, or was cancelled",
        "此批处理作业令牌无效：作业不存在、未在运行或已被取消",
    )


def caller_for_token(session: Session, token: str) -> RunCaller:
    """The run a token belongs to, while that run is running; ``Forbidden("token_invalid")`` otherwise."""
    if not is_run_token(token) or len(token) > 200:
        raise _invalid()
    digest = token_hash(token)
    run = session.scalars(select(Run).where(Run.token_hash == digest)).one_or_none()
    if run is None or not hmac.compare_digest(run.token_hash or "", digest):
        raise _invalid()
    if run.state != "running" or run.cancel_requested:
        raise _invalid()
    return RunCaller(user=run.user, project=run.project_id, run_id=run.id)
