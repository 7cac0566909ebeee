"""Data stewards: approved applications waiting for their data-use agreement and their project; the
DUA (a signed PDF, or the PI's e-signature on their application page); provisioning the project from
the application, narrowed if need be; the projects and their lifecycle (suspend, resume, expire,
destroy with its signed certificate); monitoring alerts and unlocking a locked analyst.

Provisioning and the DUA check the steward role themselves (``enclave.provisioning``,
``enclave.agreements``); the lifecycle and the locks take an actor without checking it (the CLI runs
as the host operator), so these pages check it first with ``roles.require``.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.web import authenticated

from enclave import agreements, audit, lifecycle, project_states, projects, provisioning, user_locks
from enclave.applications.workflow import ApplicationState
from enclave.audit import AuditAction
from enclave.console import forms, views
from enclave.console.handlers.base import APP_ID, PROJECT_ID, ConsolePage, ConsoleUpload
from enclave.errors import NotFound
from enclave.prepare.destroy import certificates_dir
from enclave.roles import PROVISION_PROJECTS, RUN_LIFECYCLE, UNLOCK_ANALYSTS, require

# Each lifecycle step and the project state it moves to (``enclave.lifecycle``).
STEP_TARGETS = {"suspend": "suspended", "resume": "active", "expire": "expired", "destroy": "destroyed"}
LIFECYCLE_STEPS = tuple(STEP_TARGETS)


class StewardQueuePage(ConsolePage):
    """Approved applications without a project yet, with their DUA."""

    @authenticated
    def get(self) -> None:
        user = self.user
        rows = []
        with self.ctx.session() as session:
            require(session, user, PROVISION_PROJECTS)
            for row in views.queue(session, user, "", state=ApplicationState.APPROVED.value):
                if views.project_of(session, row["id"]) is None:
                    rows.append({**row, "dua": agreements.current_dua(session, row["id"]) is not None})
        self.render("steward_queue.html", rows=rows)


class StewardApplicationPage(ConsolePage):
    """The DUA and the provisioning of one approved application."""

    @authenticated
    def get(self, app_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, PROVISION_PROJECTS)
            info = views.application_for(session, self.ctx.paths, app_id, user)
            duas = agreements.describe(session, self.ctx.paths, app_id)
            project = views.project_of(session, app_id)
            approved = agreements.approved_application(session, app_id)
            columns, team = approved.form.columns(), provisioning.team_of(approved)
        self.render(
            "steward_application.html",
            a=info,
            duas=duas,
            project=project.id if project else None,
            approved_columns=columns,
            team=team,
            attachment_labels=views.attachment_labels(),
        )


class RecordDuaAction(ConsoleUpload):
    """Record the signed PDF of the DUA (multipart: ``pdf``, ``signer``, ``start``, ``end``)."""

    def post(self, app_id: str) -> None:
        user = self.upload_user()
        files = self.request.files.get("pdf") or []
        upload = files[0] if files else None
        start = forms.day(self.arg("start"), "start")
        end = forms.day(self.arg("end"), "end")
        with self.ctx.session() as session:
            agreements.record_dua(
                session,
                self.ctx.paths,
                app_id,
                kind="pdf",
                start=start,
                end=end,
                actor=user,
                signer=self.arg("signer"),
                pdf=upload["body"] if upload else None,
                filename=upload["filename"] if upload else None,
            )
        self.see_other(f"steward/{app_id}")


class ProvisionAction(ConsolePage):
    """Create and prepare the project from the approved application (``provision_from_application``),
    with the columns and analysts left ticked."""

    @authenticated
    def post(self, app_id: str) -> None:
        user = self.user
        project_id = self.arg("project_id")
        with self.ctx.session() as session:
            approved = agreements.approved_application(session, app_id)
            narrowing = forms.narrowing(
                self.get_body_arguments, approved.form.columns(), provisioning.team_of(approved)
            )
            provisioning.provision_from_application(
                session,
                self.ctx.paths,
                app_id,
                project_id=project_id,
                actor=user,
                narrowing=narrowing,
                preparer=projects.workspace_preparer,
            )
        self.see_other("projects")


class ProjectsPage(ConsolePage):
    @authenticated
    def get(self) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, RUN_LIFECYCLE)
            rows = [views.project_summary(p) for p in projects.list_projects(session)]
        folder = certificates_dir(self.ctx.paths)
        for row in rows:
            row["certificate"] = folder.is_dir() and any(folder.glob(f"{row['id']}-destruction*.json"))
            moves = project_states.VALID_TRANSITIONS.get(project_states.ProjectState(row["state"]), set())
            row["steps"] = [step for step, target in STEP_TARGETS.items() if target in moves]
        self.render("projects.html", rows=rows, steps=LIFECYCLE_STEPS)


def _certificate(handler: ConsolePage, project_id: str) -> tuple[str, bytes]:
    """The newest destruction certificate of the project: its file name and content."""
    folder = certificates_dir(handler.ctx.paths)
    found = sorted(folder.glob(f"{project_id}-destruction*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise NotFound(
            "certificate_not_found",
            f"Project {project_id} has no destruction certificate",
            f"项目 {project_id} 没有销毁证明",
        )
    return found[-1].name, found[-1].read_bytes()


class LifecycleAction(ConsolePage):
    """Suspend, resume, expire or destroy a project (``enclave.lifecycle``), stopping its servers."""

    @authenticated
    def post(self, project_id: str, step: str) -> None:
        user = self.user
        reason = self.arg("reason")
        hooks = self.ctx.revocation_hooks()
        with self.ctx.session() as session:
            require(session, user, RUN_LIFECYCLE)
            if step == "suspend":
                lifecycle.suspend(session, project_id, actor=user, reason=reason, hooks=hooks)
            elif step == "resume":
                lifecycle.resume(session, project_id, actor=user, reason=reason)
            elif step == "expire":
                lifecycle.expire(
                    session, project_id, actor=user, reason=reason or "expired by a steward", hooks=hooks
                )
            else:
                lifecycle.destroy(
                    session,
                    self.ctx.paths,
                    project_id,
                    actor=user,
                    hooks=hooks,
                    volume_destroyers=self.ctx.volume_destroyers(),
                )
        self.see_other(f"projects/{project_id}/certificate" if step == "destroy" else "projects")


class CertificatePage(ConsolePage):
    """The signed destruction certificate: shown, or downloaded with ``?download=1``."""

    @authenticated
    def get(self, project_id: str) -> None:
        with self.ctx.session() as session:
            require(session, self.user, RUN_LIFECYCLE)
        name, data = _certificate(self, project_id)
        if self.get_query_argument("download", ""):
            self.send_download(name, data, "application/json")
            return
        document: dict[str, Any] = json.loads(data)
        self.render("certificate.html", project_id=project_id, c=document, name=name)


class MonitoringPage(ConsolePage):
    """Monitoring alerts (``query.alert`` events) and the analysts locked out by them (R-QRY-5)."""

    @authenticated
    def get(self) -> None:
        with self.ctx.session() as session:
            require(session, self.user, UNLOCK_ANALYSTS)
            alerts = audit.events_to_dicts(
                audit.tail(session, limit=200, action=AuditAction.QUERY_ALERT.value)
            )
            active = [user_locks.lock_to_dict(lock) for lock in user_locks.list_locks(session)]
        self.render("monitoring.html", alerts=list(reversed(alerts)), locks=active)


class UnlockAction(ConsolePage):
    @authenticated
    def post(self) -> None:
        user = self.user
        reason = self.arg("reason") or "reviewed by a steward"  # the CLI's default
        with self.ctx.session() as session:
            require(session, user, UNLOCK_ANALYSTS)
            user_locks.unlock_user(session, self.arg("project"), self.arg("user"), actor=user, reason=reason)
        self.see_other("monitoring")


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    steps = "|".join(LIFECYCLE_STEPS)
    return [
        (rf"{prefix}steward", StewardQueuePage),
        (rf"{prefix}steward/{APP_ID}", StewardApplicationPage),
        (rf"{prefix}steward/{APP_ID}/dua", RecordDuaAction),
        (rf"{prefix}steward/{APP_ID}/provision", ProvisionAction),
        (rf"{prefix}projects", ProjectsPage),
        (rf"{prefix}projects/{PROJECT_ID}/({steps})", LifecycleAction),
        (rf"{prefix}projects/{PROJECT_ID}/certificate", CertificatePage),
        (rf"{prefix}monitoring", MonitoringPage),
        (rf"{prefix}monitoring/unlock", UnlockAction),
    ]
