"""The REST API under ``{prefix}api/``, for scripts: authenticated with a hub token
(``Authorization: token …``) carrying ``access:services!service=<this service>``.

GET  api/requests                      the requests the caller may see (``?state=``, ``?project=``,
                                       ``?mine=yes``: only the caller's own)
POST api/requests                      multipart: files, justification, project[, abroad, records,
                                       revises (the changes-requested request this one revises),
                                       run, output (repeatable): a run's outputs, no upload needed]
GET  api/projects/<id>                 the project's title, access mode, state, period_end and
                                       days_left (in the enclave's time zone), for its members and
                                       stewards; 404 for everyone else, as for a project that does
                                       not exist (no way to learn which projects exist)
GET  api/requests/<id>                 one request as the caller may see it (blind votes applied)
POST api/requests/<id>/votes           JSON {choice, file?, comment?, override?}
POST api/requests/<id>/release         release an approved request to the outbox
POST api/requests/<id>/rerun           another reproducibility rerun of a request made from a run
GET  api/requests/<id>/download        zip of the released files and the signed manifest (audited)
POST api/auth-cache/clear              forget cached token answers (a steward's token, the revocation hook)
GET  metrics                           Prometheus metrics of the queue (a token with `read:metrics`)

A workspace server's own token (JupyterLab's "Request export") may use only the first four routes,
and only for its own project (``handlers.base.WorkspaceTokens``); everything else answers 403
``export_workspace_refused``, another project 403 ``export_project_mismatch`` (404 on api/projects).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from enclave import metrics
from enclave.db.models import Project
from enclave.errors import BadInput, Forbidden, NotFound
from enclave.lifecycle import enclave_today
from enclave.projects import roles_of
from enclave.services.auth import token_from_header
from enclave.services.handlers import NotFoundApi
from enclave.services.hub import check_metrics_reader, check_revoker, clear_token_cache
from enclave.specs import PROJECT_ID_PATTERN
from export_review.metrics import export_families
from export_review.web import actions
from export_review.web.handlers.base import ApiHandler, UploadHandler
from export_review.web.handlers.pages import REQUEST_ID


def project_mismatch(bound: str, project: str) -> Forbidden:
    return Forbidden(
        "export_project_mismatch",
        f"This workspace belongs to project {bound}: it cannot act for {project!r}",
        f"此工作区属于项目 {bound}，不能为 {project!r} 操作",
    )


class RequestsApi(UploadHandler, ApiHandler):
    workspace_may = True  # a workspace submits its files and lists its own project's requests

    def get(self) -> None:
        user = self.user
        project = self.get_query_argument("project", None)
        bound = self.workspace_project()
        if bound is not None and project not in (None, bound):
            raise project_mismatch(bound, project)
        mine = self.get_query_argument("mine", "") in ("yes", "true", "1")
        rows = self.ctx.list(
            viewer=user,
            state=self.get_query_argument("state", None),
            project=bound or project,
            requester=user if mine else None,
        )
        self.write_json({"ok": True, "requests": rows})

    def post(self) -> None:
        user = self.upload_user()
        project = self.get_body_argument("project", "")
        bound = self.workspace_project()
        if bound is not None and project != bound:  # one project's files never go to another's committee
            raise project_mismatch(bound, project)
        uploads = [actions.Upload(f["filename"], f["body"]) for f in self.request.files.get("files", [])]
        result = actions.submit_uploads(
            self.ctx,
            user=user,
            project=project,
            justification=self.get_body_argument("justification", ""),
            uploads=uploads,
            abroad=self.get_body_argument("abroad", "") in ("yes", "true", "1"),
            records=actions.parse_records(self.get_body_argument("records", None)),
            revises=self.get_body_argument("revises", "") or None,
            run=self.get_body_argument("run", "") or None,
            outputs=self.get_body_arguments("output") or None,
        )
        self.write_json({"ok": True, **result}, 201)


class ProjectApi(ApiHandler):
    """What a workspace shows of its project: title, access mode, state and the days it has left."""

    workspace_may = True

    def get(self, project_id: str) -> None:
        user = self.user
        stewards = self.ctx.settings().stewards
        # Another project of the analyst's, asked from a workspace: not found, as for a stranger.
        readable = re.fullmatch(PROJECT_ID_PATTERN, project_id) and self.workspace_project() in (
            None,
            project_id,
        )
        with self.ctx.session() as session:
            project = session.get(Project, project_id) if readable else None
            member = project is not None and (user in stewards or bool(roles_of(session, project_id, user)))
            if not member:  # the same answer whether it exists or not: no list of projects by probing
                raise NotFound(
                    "project_not_found", f"No project {project_id!r} of yours", f"您没有项目 {project_id!r}"
                )
            end = date.fromisoformat(project.period_end)
            found = {
                "project": project.id,
                "title": project.title,
                "access": project.access,
                "state": project.state,
                "period_end": project.period_end,
                "days_left": (end - enclave_today()).days,
            }
        self.write_json({"ok": True, **found})


class RequestApi(ApiHandler):
    workspace_may = True

    def get(self, request_id: str) -> None:
        found = actions.describe(self.ctx, request_id, self.user)
        bound = self.workspace_project()
        if bound is not None and found["project"] != bound:
            raise project_mismatch(bound, found["project"])
        self.write_json({"ok": True, "request": found})


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput("field_invalid", f"{key!r} must be a string", f"{key!r} 必须是字符串")
    return value


class VotesApi(ApiHandler):
    def post(self, request_id: str) -> None:
        user = self.user
        body = self.json_body()
        result = self.ctx.vote(
            request_id,
            user=user,
            choice=_text(body, "choice") or "",
            file_name=_text(body, "file"),
            comment=_text(body, "comment"),
            override=_text(body, "override"),
        )
        self.write_json({"ok": True, **result})


class ReleaseApi(ApiHandler):
    def post(self, request_id: str) -> None:
        self.write_json({"ok": True, **actions.release(self.ctx, request_id, user=self.user)})


class RerunApi(ApiHandler):
    def post(self, request_id: str) -> None:
        self.write_json({"ok": True, **self.ctx.rerun(request_id, user=self.user)}, 201)


class DownloadApi(ApiHandler):
    def get(self, request_id: str) -> None:
        name, data = actions.download_zip(self.ctx, request_id, user=self.user)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


class AuthCacheApi(ApiHandler):
    """Forget every cached token answer (the revocation hook, ``hub_config.revocation``); the caller's
    token is checked with the hub afresh and must be allowed to stop any server."""

    async def post(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"))
        who = await check_revoker(self.hub_auth, token)
        cleared = clear_token_cache(self.hub_auth)
        self.application.settings["log"].info("token cache cleared by %s (%d entries)", who, cleared)
        self.write_json({"ok": True, "cleared": cleared})


class MetricsApi(ApiHandler):
    """Requests per state and the oldest wait (``export_review.metrics``), for Prometheus; the caller's
    token is checked with the hub afresh and must hold ``read:metrics``."""

    async def get(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"))
        await check_metrics_reader(self.hub_auth, token)
        with self.ctx.session() as session:
            families = export_families(session)
        self.set_header("Content-Type", metrics.CONTENT_TYPE)
        self.finish(metrics.render(families))


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    api = f"{prefix}api/"
    return [
        (rf"{api}requests", RequestsApi),
        (rf"{api}requests/{REQUEST_ID}", RequestApi),
        (rf"{api}requests/{REQUEST_ID}/votes", VotesApi),
        (rf"{api}requests/{REQUEST_ID}/release", ReleaseApi),
        (rf"{api}requests/{REQUEST_ID}/rerun", RerunApi),
        (rf"{api}requests/{REQUEST_ID}/download", DownloadApi),
        (rf"{api}projects/([^/]+)", ProjectApi),
        (rf"{api}auth-cache/clear", AuthCacheApi),
        (rf"{prefix}metrics", MetricsApi),
        (rf"{api}.*", NotFoundApi),
    ]
