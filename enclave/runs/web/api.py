"""The runs service's JSON API, for a workspace (``enclave_client.runs``, the JupyterLab extension).

The caller is identified by the workspace's server token (``Authorization: token
$JUPYTERHUB_API_TOKEN``), exactly as the gateway identifies it: the hub says whose server the token
belongs to, and the server's name is the project. Every call needs an analyst of an active project
(the gateway's check), sees only runs of that project, and the rules are ``enclave.runs.service``'s.

POST   api/runs                      {"notebook_name", "notebook", "parameters"?, "timeout_s"?} or
                                     {"template", "parameters"?, "timeout_s"?} -> 201 the run
GET    api/runs[?state=S]            {"runs": [...]}: the caller's runs in the project
GET    api/runs/<id>                 the run (``service.describe``)
DELETE api/runs/<id>                 cancel it (queued: at once; running: the worker stops it)
GET    api/runs/<id>/log             the log, text/plain
GET    api/runs/<id>/outputs/<name>  one output's bytes
GET    api/runs/<id>/executed        the executed notebook
GET    api/templates                 {"templates": [...]}: the project's approved templates
POST   api/auth-cache/clear          forget cached token answers (a steward's token, the revocation hook)

The identity is checked when the headers arrive, before a byte of the body is read; a submission's
body may reach the notebook cap (``MAX_SUBMIT_BYTES``), every other body stays small.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from enclave.errors import BadInput, NotFound
from enclave.query_service import check_analyst_access
from enclave.runs import notebooks, service
from enclave.runs.states import RunState
from enclave.runs.web.context import RunsContext
from enclave.services.auth import PROJECT_HEADER, Caller, token_from_header
from enclave.services.handlers import DOWNLOAD_CSP, MAX_FORM_BYTES, ApiHandler, NotFoundApi
from enclave.services.hub import check_revoker, clear_token_cache

RUN_ID = r"(run-[0-9a-f]{12})"
# The notebook travels as JSON inside the body: room for its escaping and the other fields.
MAX_SUBMIT_BYTES = 2 * notebooks.MAX_NOTEBOOK_BYTES
DOWNLOAD_CHUNK = 256 * 1024


def run_not_found(run_id: str) -> NotFound:
    return NotFound("run_not_found", f"No run {run_id!r}", f"没有批处理作业 {run_id!r}")


class RunsApi(ApiHandler):
    """Token-authenticated (never a cookie, so there is no cross-site request to forge); the body
    streams in and is capped as ``ApiHandler``'s, a submission's at the notebook cap."""

    ctx: RunsContext
    submit = False  # a handler whose POST carries a notebook

    _caller: Caller | None = None

    @property
    def body_cap(self) -> int:
        return MAX_SUBMIT_BYTES if self.submit and self.request.method == "POST" else MAX_FORM_BYTES

    async def prepare(self) -> None:
        await super().prepare()  # the body's declared length (``http_errors.check_content_length``)
        self._caller = await self.ctx.caller(
            self.request.headers.get("Authorization"), self.request.headers.get(PROJECT_HEADER)
        )
        with self.ctx.session() as session:
            check_analyst_access(session, self._caller.project, self._caller.user)
        if self.body_cap > MAX_FORM_BYTES:
            self.hold_slot(self.ctx.submit_slots, self._caller.user)
            self.request.connection.set_max_body_size(self.body_cap)

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated: no cookie is read, so there is nothing to forge."""

    @property
    def caller(self) -> Caller:
        assert self._caller is not None
        return self._caller

    def visible_run(self, session: Session, run_id: str) -> Any:
        """A run of the token's project that the caller may see; ``run_not_found`` for any other."""
        run = service.get_visible(session, run_id, self.caller.user)
        if run.project_id != self.caller.project:  # the token is for one project, and so is the answer
            raise run_not_found(run_id)
        return run


def _notebook_bytes(notebook: Any) -> bytes:
    """The notebook as sent: its file text (kept byte for byte), or its JSON object (written as
    nbformat writes a file: one-space indent, sorted keys, a final newline)."""
    if isinstance(notebook, str):
        return notebook.encode("utf-8")
    if isinstance(notebook, dict):
        return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    raise BadInput(
        "run_notebook_invalid",
        "Send the notebook as its nbformat JSON object (or its file text)",
        "请以 nbformat JSON 对象（或其文件文本）发送笔记本",
    )


def _state_filter(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in {s.value for s in RunState}:
        raise BadInput(
            "run_state_unknown",
            f"Unknown run state {value!r}; one of: {', '.join(s.value for s in RunState)}",
            f"未知的作业状态 {value!r}；可选：{', '.join(s.value for s in RunState)}",
        )
    return value


class RunsCollectionApi(RunsApi):
    submit = True

    def get(self) -> None:
        state = _state_filter(self.get_query_argument("state", None))
        with self.ctx.session() as session:
            found = service.list_runs(
                session, viewer=self.caller.user, project=self.caller.project, state=state
            )
            runs = [service.describe(session, run) for run in found if run.user == self.caller.user]
        self.write_json({"ok": True, "runs": runs})

    def post(self) -> None:
        body = self.json_body()
        template = body.get("template")
        if template is not None and not isinstance(template, str):
            raise BadInput("run_template_invalid", "template must be a name", "template 必须是模板名")
        name = body.get("notebook_name", "")
        if not isinstance(name, str):
            raise BadInput(
                "run_notebook_name_invalid", "notebook_name must be text", "notebook_name 必须是文本"
            )
        if template is None:
            if "notebook" not in body:
                raise BadInput(
                    "run_notebook_missing",
                    "Send a notebook (notebook_name and notebook) or the name of a template",
                    "请发送笔记本（notebook_name 和 notebook）或模板名称",
                )
            notebook = _notebook_bytes(body["notebook"])
        else:
            notebook = b"" if body.get("notebook") in (None, "", {}) else _notebook_bytes(body["notebook"])
        with self.ctx.session() as session:
            run = service.submit(
                session,
                self.ctx.paths,
                project=self.caller.project,
                user=self.caller.user,
                notebook=notebook,
                notebook_name=name,
                parameters=body.get("parameters") or {},
                template=template,
                actor=self.caller.user,
                timeout_s=self.ctx.timeout(body.get("timeout_s")),
                image=self.ctx.image,
            )
            shown = service.describe(session, run)
        self.write_json({"ok": True, **shown}, 201)


class RunApi(RunsApi):
    def get(self, run_id: str) -> None:
        with self.ctx.session() as session:
            shown = service.describe(session, self.visible_run(session, run_id))
        self.write_json({"ok": True, **shown})

    def delete(self, run_id: str) -> None:
        with self.ctx.session() as session:
            self.visible_run(session, run_id)
            run = service.cancel(session, run_id, actor=self.caller.user)
            shown = service.describe(session, run)
        self.write_json({"ok": True, **shown})


class LogApi(RunsApi):
    def get(self, run_id: str) -> None:
        with self.ctx.session() as session:
            text = service.log_text(self.ctx.paths, self.visible_run(session, run_id))
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text.encode("utf-8"))


class OutputApi(RunsApi):
    async def get(self, run_id: str, name: str) -> None:
        with self.ctx.session() as session:
            path = service.output_path(self.ctx.paths, self.visible_run(session, run_id), name)
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.rsplit("/", 1)[-1])
        self.set_header("Content-Type", "application/octet-stream")  # as send_download, in chunks
        self.set_header("Content-Disposition", f'attachment; filename="{safe or "output"}"')
        self.set_header("Content-Security-Policy", DOWNLOAD_CSP)
        with path.open("rb") as stored:
            while chunk := stored.read(DOWNLOAD_CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


class ExecutedApi(RunsApi):
    def get(self, run_id: str) -> None:
        with self.ctx.session() as session:
            run = self.visible_run(session, run_id)
            if not run.executed_sha256:
                raise NotFound(
                    "run_executed_not_found",
                    f"Run {run_id} has no executed notebook (yet)",
                    f"作业 {run_id} （尚）没有已执行的笔记本",
                )
            data = service.read_stored(self.ctx.paths, run.executed_sha256)
            name = run.notebook_name
        self.send_download(name, data, "application/x-ipynb+json")


class TemplatesApi(RunsApi):
    def get(self) -> None:
        with self.ctx.session() as session:
            found = [
                service.describe_template(t) for t in service.list_templates(session, self.caller.project)
            ]
        self.write_json({"ok": True, "templates": found})


class AuthCacheApi(ApiHandler):
    """Forget every cached token answer (the revocation hook, ``hub_config.revocation``); the caller's
    token is asked of the hub afresh and must be allowed to stop any server."""

    ctx: RunsContext

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated only."""

    async def post(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"))
        api_auth = self.ctx.authenticator.hub_auth
        who = await check_revoker(api_auth, token)
        cleared = clear_token_cache(api_auth) + clear_token_cache(self.hub_auth)
        self.application.settings["log"].info("token cache cleared by %s (%d entries)", who, cleared)
        self.write_json({"ok": True, "cleared": cleared})


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    api = f"{prefix}api/"
    return [
        (rf"{api}runs/?", RunsCollectionApi),
        (rf"{api}runs/{RUN_ID}", RunApi),
        (rf"{api}runs/{RUN_ID}/log", LogApi),
        (rf"{api}runs/{RUN_ID}/outputs/(.+)", OutputApi),
        (rf"{api}runs/{RUN_ID}/executed", ExecutedApi),
        (rf"{api}templates", TemplatesApi),
        (rf"{api}auth-cache/clear", AuthCacheApi),
        (rf"{api}.*", NotFoundApi),
    ]
