"""Spawn refusals: a stable ``reason`` code and the user's text in English and Simplified Chinese."""

from __future__ import annotations

from jupyterhub.spawner import SpawnException

from enclave.errors import EnclaveError, Forbidden


class WorkspaceRefused(SpawnException):
    """A policy refusal of a workspace spawn (STYLE §5.3); no traceback, status 403.

    ``reason`` is the stable code (it labels the hub's spawn-failure metric); the message shown to
    the user carries both languages.
    """

    def __init__(self, code: str, message: str, message_zh: str, *, log_message: str | None = None) -> None:
        super().__init__(
            f"[{code}] {message} / {message_zh}",
            reason=code,
            log_message=log_message or f"workspace refused [{code}]: {message}",
            status_code=403,
        )
        self.code = code
        self.message_en = message
        self.message_zh = message_zh

    @classmethod
    def from_error(cls, error: EnclaveError) -> WorkspaceRefused:
        return cls(error.code, error.message, error.message_zh)


def named_server_required() -> WorkspaceRefused:
    return WorkspaceRefused(
        "named_server_required",
        "Start a workspace for a project: the server name must be the project id",
        "请为项目启动工作空间：服务器名称必须是项目编号",
    )


def not_prepared(project_id: str) -> WorkspaceRefused:
    error = Forbidden(
        "workspace_not_prepared",
        f"Project {project_id} has no prepared workspace data yet",
        f"项目 {project_id} 的工作空间数据尚未准备好",
    )
    return WorkspaceRefused.from_error(error)
