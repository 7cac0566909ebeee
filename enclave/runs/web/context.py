"""What every handler of the runs service shares: the state database, the enclave paths, the
deployment's run settings, and the token check of the API (the workspace's server token, as the
gateway checks it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from enclave import db
from enclave.config import Paths
from enclave.errors import BadInput, Forbidden
from enclave.runs import tokens
from enclave.services.auth import Caller, TokenAuthenticator, token_from_header
from enclave.services.handlers import UploadSlots


@dataclass
class RunsContext:
    sessions: sessionmaker[Session]
    paths: Paths
    authenticator: TokenAuthenticator
    submit_slots: UploadSlots
    image: str
    default_timeout_s: int
    max_timeout_s: int

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back (audit included) on an error."""
        with db.session_scope(self.sessions) as session:
            yield session

    async def caller(self, authorization: str | None, claimed_project: str | None) -> Caller:
        """The analyst and project of a workspace's server token (``enclave.services.auth``).

        A run's own token (``encrun_``) is refused here: a running notebook may query the gateway
        as its analyst, but never submit, cancel or read runs.
        """
        token = token_from_header(authorization)
        if tokens.is_run_token(token):
            raise Forbidden(
                "run_token_refused",
                "A batch run's token cannot use the runs service: submit runs from your workspace",
                "批处理作业的令牌不能使用作业服务：请在您的工作空间中提交作业",
            )
        return await self.authenticator.caller(authorization, claimed_project)

    def timeout(self, value: object) -> int:
        """The time limit a submission asks for (seconds), within this deployment's maximum."""
        if value is None:
            return self.default_timeout_s
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= self.max_timeout_s:
            raise BadInput(
                "run_timeout_invalid",
                f"The time limit must be 1..{self.max_timeout_s} seconds",
                f"时间限制必须为 1 到 {self.max_timeout_s} 秒",
                details={"max": self.max_timeout_s},
            )
        return value
