"""Applicants: my applications, the new-application form with its attachments, one application with
its state and history, and the applicant's moves (edit, attach, submit, withdraw, e-sign the DUA).

Filing and attaching commit together; submitting is a second step, so a refused submission (an
attachment missing, the catalog changed) leaves the draft saved and shows why on its page.
"""

from __future__ import annotations

from typing import Any

from tornado.web import authenticated

from enclave import agreements
from enclave.applications import form, service
from enclave.applications.workflow import (
    EDITABLE_STATES,
    VALID_TRANSITIONS,
    ApplicationActor,
    ApplicationState,
)
from enclave.console import forms, views
from enclave.console.forms import FormValues
from enclave.console.handlers.base import APP_ID, ConsolePage, ConsoleUpload
from enclave.errors import EnclaveError, NotFound
from enclave.roles import ProjectRole


def _uploads(handler: ConsoleUpload) -> list[tuple[str, str, bytes]]:
    """(kind, filename, data) of every file chosen on the form (``attachment.<kind>`` inputs)."""
    out = []
    for name, files in handler.request.files.items():
        if not name.startswith("attachment."):
            continue
        for upload in files:
            if upload["filename"] or upload["body"]:
                out.append((name.removeprefix("attachment."), upload["filename"], upload["body"]))
    return out


class MyApplicationsPage(ConsolePage):
    """The applications the reader filed or is on the team of, with their state."""

    @authenticated
    def get(self) -> None:
        user = self.user
        rows = []
        with self.ctx.session() as session:
            for app in service.list_applications(session, viewer=user):
                if not service.involves(app, user):
                    continue
                project = views.project_of(session, app.id)
                rows.append(
                    {
                        **service.summary(app),
                        "project": project.id if project else None,
                        "dua": agreements.current_dua(session, app.id) is not None,
                    }
                )
        self.render("mine.html", rows=rows)


class ApplicationFormPage(ConsoleUpload):
    """The application form: catalog, columns, team, period, legal basis, attachments."""

    def render_form(
        self, values: FormValues, *, app_id: str | None = None, error: EnclaveError | None = None
    ) -> None:
        with self.ctx.session() as session:
            datasets = views.catalog_for_form(session)
        errors = self.show_error(error)
        self.render(
            "application_form.html",
            values=values,
            datasets=datasets,
            choices=views.form_choices(),
            attachment_labels=views.attachment_labels(),
            app_id=app_id,
            errors=errors,
        )

    def submitted_values(self) -> FormValues:
        with self.ctx.session() as session:
            names = [d["name"] for d in views.catalog_for_form(session)]
        return forms.values_from_arguments(self.get_body_arguments, names)

    def file_and_attach(self, user: str, values: FormValues, app_id: str | None) -> str:
        """File (or update) the form and attach the chosen files in one transaction."""
        with self.ctx.session() as session:
            parsed = form.parse_form(forms.form_data(values))
            if app_id is None:
                app = service.file_application(session, self.ctx.paths, parsed, applicant=user)
            else:
                app = service.update_application(session, self.ctx.paths, app_id, parsed, user=user)
            for kind, filename, data in _uploads(self):
                service.attach(
                    session, self.ctx.paths, app.id, kind=kind, filename=filename, data=data, user=user
                )
            return app.id

    def save(self, app_id: str | None) -> None:
        user = self.upload_user()
        values = self.submitted_values()
        try:
            saved = self.file_and_attach(user, values, app_id)
        except EnclaveError as error:
            self.render_form(values, app_id=app_id, error=error)
            return
        if self.get_body_argument("action", "") == "submit":
            try:
                with self.ctx.session() as session:
                    service.submit(session, self.ctx.paths, saved, user=user)
            except EnclaveError as error:
                render_application(self, saved, error=error)
                return
        self.see_other(f"applications/{saved}")


class NewApplicationPage(ApplicationFormPage):
    @authenticated
    def get(self) -> None:
        self.render_form(FormValues(team=[(self.user, ProjectRole.PI.value)]))

    def post(self) -> None:  # not @authenticated: the xsrf token is in the streamed body, parsed first
        self.save(None)


class EditApplicationPage(ApplicationFormPage):
    @authenticated
    def get(self, app_id: str) -> None:
        with self.ctx.session() as session:
            info = service.describe(session, self.ctx.paths, app_id, viewer=self.user)
        self.render_form(forms.values_from_form(info["form"]), app_id=app_id)

    def post(self, app_id: str) -> None:
        self.save(app_id)


def application_view(handler: ConsolePage, app_id: str) -> dict[str, Any]:
    """Everything the application page shows to the reader: the domain's ``describe`` (which refuses
    a reader who may not see it), the DUA, the project, and which of the applicant's buttons apply."""
    user = handler.user
    with handler.ctx.session() as session:
        info = views.application_for(session, handler.ctx.paths, app_id, user)
        dua = agreements.current_dua(session, app_id)
        project = views.project_of(session, app_id)
        project_info = views.project_summary(project) if project else None
    state = ApplicationState(info["state"])
    moves = VALID_TRANSITIONS[state]
    applicant = user == info["applicant"]
    return {
        "a": info,
        "dua": agreements.dua_to_dict(dua) if dua else None,
        "terms": [{"id": tid, "en": en, "zh": zh} for tid, en, zh in agreements.TERMS],
        "project": project_info,
        "can_edit": applicant and state in EDITABLE_STATES,
        "can_submit": applicant and moves.get(ApplicationState.SUBMITTED) is ApplicationActor.APPLICANT,
        "can_withdraw": applicant and moves.get(ApplicationState.WITHDRAWN) is ApplicationActor.APPLICANT,
        "can_sign_dua": applicant and state is ApplicationState.APPROVED and dua is None,
        "workspace": bool(project_info and any(m[0] == user for m in project_info["members"])),
        "attachment_labels": views.attachment_labels(),
    }


def render_application(handler: ConsolePage, app_id: str, *, error: EnclaveError | None = None) -> None:
    errors = handler.show_error(error)
    view = application_view(handler, app_id)
    handler.render(
        "application.html",
        errors=errors,
        spawn_url=f"{handler.hub_auth.hub_prefix}spawn/{handler.user}/",
        **view,
    )


class ApplicationPage(ConsolePage):
    @authenticated
    def get(self, app_id: str) -> None:
        render_application(self, app_id)


class AttachAction(ConsoleUpload):
    """Add attachments to a draft or returned application."""

    def post(self, app_id: str) -> None:
        user = self.upload_user()
        with self.ctx.session() as session:
            for kind, filename, data in _uploads(self):
                service.attach(
                    session, self.ctx.paths, app_id, kind=kind, filename=filename, data=data, user=user
                )
        self.see_other(f"applications/{app_id}")


class AttachmentDownload(ConsolePage):
    """An attachment, to whoever may see the application (the domain's ``check_visible`` decides)."""

    @authenticated
    def get(self, app_id: str, sha256: str) -> None:
        with self.ctx.session() as session:
            app = service.get(session, app_id)
            service.check_visible(session, app, self.user)
            filename = next((a.filename for a in app.attachments if a.sha256 == sha256), None)
        if filename is None:
            raise NotFound("attachment_not_found", "No such attachment", "没有该附件")
        data = service.attachment_path(self.ctx.paths, sha256).read_bytes()
        self.send_download(filename, data)


class DuaDownload(ConsolePage):
    """The application's current data-use agreement (the signed PDF or the e-signed statement)."""

    @authenticated
    def get(self, app_id: str) -> None:
        with self.ctx.session() as session:
            service.check_visible(session, service.get(session, app_id), self.user)
            dua = agreements.current_dua(session, app_id)
        if dua is None:
            raise NotFound("dua_not_found", "No data-use agreement is recorded yet", "尚未登记数据使用协议")
        data = agreements.document_path(self.ctx.paths, dua.sha256).read_bytes()
        kind = "application/pdf" if dua.kind == "pdf" else "application/json"
        self.send_download(dua.filename or "agreement", data, kind)


class SubmitAction(ConsolePage):
    @authenticated
    def post(self, app_id: str) -> None:
        with self.ctx.session() as session:
            service.submit(session, self.ctx.paths, app_id, user=self.user)
        self.see_other(f"applications/{app_id}")


class WithdrawAction(ConsolePage):
    @authenticated
    def post(self, app_id: str) -> None:
        with self.ctx.session() as session:
            service.withdraw(session, app_id, user=self.user)
        self.see_other(f"applications/{app_id}")


class SignDuaAction(ConsolePage):
    """The PI e-signs the data-use agreement of their approved application (R-APP-15)."""

    @authenticated
    def post(self, app_id: str) -> None:
        user = self.user
        start = forms.day(self.arg("start"), "start")
        end = forms.day(self.arg("end"), "end")
        with self.ctx.session() as session:
            agreements.record_dua(
                session, self.ctx.paths, app_id, kind="esign", start=start, end=end, actor=user, signer=user
            )
        self.see_other(f"applications/{app_id}")


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    app = f"{prefix}applications/{APP_ID}"
    return [
        (rf"{prefix}", MyApplicationsPage),
        (rf"{prefix}applications/new", NewApplicationPage),
        (rf"{app}", ApplicationPage),
        (rf"{app}/edit", EditApplicationPage),
        (rf"{app}/attachments", AttachAction),
        (rf"{app}/attachments/([0-9a-f]{{64}})", AttachmentDownload),
        (rf"{app}/dua", DuaDownload),
        (rf"{app}/dua/sign", SignDuaAction),
        (rf"{app}/submit", SubmitAction),
        (rf"{app}/withdraw", WithdrawAction),
    ]
