"""The runs pages (hub login, English and Chinese, no script): the runs the reader may see, one run
with its state, progress, parameters, log, outputs and queries, and its cancel button.

Who sees what is ``service.get_visible``'s rule (the run's analyst, the project's PI, stewards and
security auditors, the committee for reruns); who may cancel is ``service.cancel``'s. The pages
offer no download: a run's outputs stay in the enclave, reached from the workspace (the API) or
through the export review.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from tornado.web import authenticated

from enclave.errors import BadInput
from enclave.runs import service
from enclave.runs.states import RunState, is_terminal
from enclave.runs.web.context import RunsContext
from enclave.runs.web.i18n import RunsTranslator
from enclave.services import handlers

RUN_ID = r"(run-[0-9a-f]{12})"
LOG_TAIL_CHARS = 64 * 1024
REFRESH_S = 5


class RunsPage(handlers.StylesheetPage):
    ctx: RunsContext
    translator: ClassVar[type[RunsTranslator]] = RunsTranslator

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(
            as_json=lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True),
            lang_chosen=self.get_query_argument("lang", None) in ("en", "zh"),
            refresh=None,
        )
        return namespace


class ListPage(RunsPage):
    """The runs the reader may see, newest first, optionally of one project or state."""

    @authenticated
    def get(self) -> None:
        user = self.user
        project = self.get_query_argument("project", "").strip() or None
        state = self.get_query_argument("state", "").strip() or None
        if state is not None and state not in {s.value for s in RunState}:
            raise BadInput("run_state_unknown", f"Unknown run state {state!r}", f"未知的作业状态 {state!r}")
        with self.ctx.session() as session:
            runs = [
                service.describe(session, run)
                for run in service.list_runs(session, viewer=user, project=project, state=state)
            ]
        self.render("runs.html", runs=runs, project=project, state=state, states=[s.value for s in RunState])


class RunDetailPage(RunsPage):
    """One run; the page reloads itself (a meta refresh, no script) until the run has ended."""

    @authenticated
    def get(self, run_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            run = service.get_visible(session, run_id, user)
            shown = service.describe(session, run)
            log = service.log_text(self.ctx.paths, run)
        finished = is_terminal(shown["state"])
        self.render(
            "run.html",
            r=shown,
            finished=finished,
            can_cancel=not finished and user == shown["user"] and not shown["cancel_requested"],
            log=log[-LOG_TAIL_CHARS:],
            log_cut=len(log) > LOG_TAIL_CHARS,
            errors=[],
            refresh=None if finished else REFRESH_S,
        )


class CancelPage(RunsPage):
    """The cancel button (a form with the xsrf token): post, then back to the run's page."""

    @authenticated
    def post(self, run_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            service.cancel(session, run_id, actor=user)
        self.redirect(self.href(f"runs/{run_id}"), status=303)


class NotFoundPage(RunsPage):
    def prepare(self) -> None:
        self.send_error(404)


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}", ListPage),
        (rf"{prefix}runs/{RUN_ID}", RunDetailPage),
        (rf"{prefix}runs/{RUN_ID}/cancel", CancelPage),
    ]
