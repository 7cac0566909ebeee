"""Account applications, the Office's decision, memberships and account expiry (issue 11 item 6),
on SQLite and PostgreSQL: the identity number is never stored, only the Office decides (never on its
own application), expiry = min(project end, DUA end), expired and ended accounts cannot log in, a
removed member's next query is refused, and the ``enclave account`` CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import accounts, db, lifecycle, projects, roles, users
from enclave.audit import AuditAction
from enclave.cli import app
from enclave.config import Paths
from enclave.db.models import (
    AccountApplication,
    Application,
    AuditEvent,
    DataUseAgreement,
    Project,
    ProjectMember,
)
from enclave.db.session import dispose_all
from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound
from enclave.roles import Role
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)

PASSWORD = "Correct-Horse-9-Battery"
# A resident identity card number with a valid GB 11643 check character (synthetic).
ID_NUMBER = "11010519491231002X"
ID_TYPED = "110105 19491231 002x"  # as a person may type it: spaces, lower-case x
OTHER_ID = "110101199003077475"
PERIOD = {"start": "2026-01-01", "end": "2027-10-31"}
BEFORE_END = date(2027, 1, 15)


@dataclass
class Env:
    url: str
    paths: Paths
    sessions: sessionmaker[Session]

    def session(self) -> Any:
        return db.session_scope(self.sessions)


@pytest.fixture
def env(database_url: str, paths: Paths, tmp_path: Path) -> Env:
    setup = Env(database_url, paths, db.connect(database_url))
    with setup.session() as session:
        register_patients_and_visits(session, paths, tmp_path / "src", n_patients=60, actor="s")
        roles.grant(session, "olga", Role.OFFICE, actor="admin")
        roles.grant(session, "oscar", Role.OFFICE, actor="admin")
        roles.grant(session, "stan", Role.STEWARD, actor="admin")
    make_project(setup, "cardio-2026")
    return setup


def make_project(
    env: Env,
    project_id: str,
    period: dict[str, str] = PERIOD,
    prepare: bool = False,
    staff: tuple[str, str] = ("alice", "carol"),
) -> None:
    """A project whose PI and analyst is ``staff[0]``, with ``staff[1]`` on its committee."""
    pi, member = staff
    spec = parse_project_spec(
        project_spec(id=project_id, pi=pi, analysts=[pi], committee=[member, "cleo", "cyd"], period=period)
    )
    with env.session() as session:
        projects.create_project(
            session,
            env.paths,
            spec,
            actor="stan",
            today=date(2026, 6, 1),
            preparer=projects.workspace_preparer if prepare else None,
            without_application=NO_APPLICATION,
        )


def with_dua(env: Env, project_id: str, dua_end: str) -> None:
    """Link the project to an (approved) application with a DUA ending on ``dua_end``."""
    app_id = f"app-{uuid.uuid4().hex[:8]}"
    with env.session() as session:
        session.add(
            Application(
                id=app_id,
                title="t",
                applicant="alice",
                state="approved",
                track="in_house",
                level=3,
                cross_border=False,
                form_json="{}",
                revision=1,
                created_at="2026-01-01T00:00:00+00:00",
                updated_at="2026-01-01T00:00:00+00:00",
            )
        )
        session.flush()
        session.add(
            DataUseAgreement(
                application_id=app_id,
                kind="pdf",
                sha256="0" * 64,
                signer="alice",
                start="2026-01-01",
                end=dua_end,
                retain_until="2033-12-31",
                recorded_by="stan",
                recorded_at="2026-01-02T00:00:00+00:00",
            )
        )
        session.execute(update(Project).where(Project.id == project_id).values(application_id=app_id))


def apply(env: Env, user: str = "bob", project: str = "cardio-2026", **fields: Any) -> int:
    values: dict[str, Any] = {
        "role": "analyst",
        "identity_kind": "id_card",
        "identity_number": ID_TYPED,
        "actor": user,
        "today": BEFORE_END,
    }
    values.update(fields)
    with env.session() as session:
        return accounts.apply_for_account(session, env.paths, username=user, project_id=project, **values).id


def decide(env: Env, app_id: int, actor: str = "olga", approve: bool = True) -> AccountApplication:
    with env.session() as session:
        decided = accounts.decide_account(
            session, env.paths, app_id, approve=approve, actor=actor, today=BEFORE_END
        )
        session.flush()
        session.expunge(decided)
        return decided


def refused(env: Env, call: Any, code: str, kind: type[EnclaveError] = Forbidden) -> EnclaveError:
    with pytest.raises(kind) as caught, env.session() as session:
        call(session)
    assert caught.value.code == code, caught.value
    assert caught.value.message and caught.value.message_zh
    return caught.value


def add_user(env: Env, name: str) -> None:
    with env.session() as session:
        users.add_user(session, name, PASSWORD, actor="stan")


def login(env: Env, name: str, password: str = PASSWORD, *, today: date) -> users.LoginResult:
    with env.session() as session:
        return users.check_login(session, env.paths, name, password, today=today)


def audit_rows(env: Env) -> list[AuditEvent]:
    with env.session() as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        session.expunge_all()
        return rows


# ---- identity evidence (R-APP-18) ------------------------------------------------------------------


def number_forms(number: str) -> list[bytes]:
    variants = {number, number.lower(), ID_TYPED, number[:12]}
    return [v.encode() for v in variants] + [v.encode("utf-16-le") for v in variants]


def test_the_identity_number_is_stored_only_as_a_keyed_hash(env: Env, paths: Paths) -> None:
    app_id = apply(env)
    key_file = paths.vault / "keys" / accounts.IDENTITY_KEY_FILE
    key = key_file.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with env.session() as session:
        row = session.get(AccountApplication, app_id)
        assert row is not None
        expected = hmac.new(key, ID_NUMBER.encode(), hashlib.sha256).hexdigest()
        assert row.identity_hmac == expected  # normalised: no spaces, upper case
        assert row.identity_hmac != hashlib.sha256(ID_NUMBER.encode()).hexdigest()  # keyed, not bare
        # every row of every table, as text: the number is nowhere
        tables = session.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                if env.url.startswith("sqlite")
                else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ).scalars()
        dump = "\n".join(
            str(r) for table in list(tables) for r in session.execute(text(f'SELECT * FROM "{table}"')).all()
        )
    assert ID_NUMBER not in dump.upper() and ID_NUMBER[:12] not in dump
    details = "\n".join(e.details_json for e in audit_rows(env))
    assert ID_NUMBER not in details.upper() and row.identity_hmac not in details
    if env.url.startswith("sqlite"):  # the file itself, and its write-ahead log
        dispose_all()
        raw = b"".join(
            p.read_bytes() for p in Path(env.url.removeprefix("sqlite:///")).parent.glob("state.db*")
        )
        assert not any(form in raw for form in number_forms(ID_NUMBER))


def test_a_bad_number_is_refused_without_repeating_it(env: Env) -> None:
    for kind, number in (("id_card", "110105194912310021"), ("id_card", "12345"), ("passport", "E1 2")):
        with pytest.raises(BadInput) as caught:
            apply(env, identity_kind=kind, identity_number=number)
        assert caught.value.code == "identity_number_invalid"
        shown = json.dumps(caught.value.to_dict(), ensure_ascii=False)
        assert "".join(number.split()) not in shown
    for field, value, code in (
        ("role", "committee", "account_application_invalid"),
        ("identity_kind", "driving_licence", "account_application_invalid"),
    ):
        with pytest.raises(BadInput) as caught:
            apply(env, **{field: value})
        assert caught.value.code == code
    with pytest.raises(NotFound):
        apply(env, project="nope-1")


def test_one_pending_application_per_person_and_project(env: Env) -> None:
    apply(env)
    with pytest.raises(Forbidden) as caught:
        apply(env)  # the same account again
    assert caught.value.code == "account_application_pending"
    with pytest.raises(Forbidden) as caught:
        apply(env, user="robert", role="pi")  # the same person under another name, another role
    assert caught.value.code == "account_application_pending"
    make_project(env, "diab-2026")
    apply(env, project="diab-2026")  # another project is another application


def test_accounts_are_personal_one_per_person_and_role(env: Env) -> None:
    """R-ROLE-7: an account name never carries two people's evidence; one person, one account per role."""
    decide(env, apply(env))
    make_project(env, "diab-2026")
    with pytest.raises(Forbidden) as caught:
        apply(env, project="diab-2026", identity_number=OTHER_ID)  # bob's account, someone else's card
    assert caught.value.code == "identity_mismatch"
    with pytest.raises(Forbidden) as caught:
        apply(env, user="bobby", project="diab-2026")  # bob again, as a second analyst account
    assert caught.value.code == "person_has_account"
    apply(env, user="bob-pi", project="diab-2026", role="pi")  # another role: another account


# ---- the Office's decision (R-APP-16, R-ROLE-3) -----------------------------------------------------


def test_only_the_office_decides_and_never_on_its_own_application(env: Env) -> None:
    app_id = apply(env)
    refused(
        env,
        lambda s: accounts.decide_account(s, env.paths, app_id, approve=True, actor="stan"),
        "role_required",
    )
    refused(
        env,
        lambda s: accounts.decide_account(s, env.paths, app_id, approve=True, actor="bob"),
        "role_required",
    )
    own = apply(env, user="olga", identity_number=OTHER_ID)  # an Office member applies for herself
    refused(
        env,
        lambda s: accounts.decide_account(s, env.paths, own, approve=True, actor="olga"),
        "own_application",
    )
    make_project(env, "diab-2026")
    filed = apply(
        env, user="dora", project="diab-2026", identity_number="E12345678", identity_kind="passport"
    )
    with env.session() as session:
        session.execute(
            update(AccountApplication).where(AccountApplication.id == filed).values(requested_by="oscar")
        )
    refused(
        env,
        lambda s: accounts.decide_account(s, env.paths, filed, approve=True, actor="oscar"),
        "own_application",
    )
    with env.session() as session:
        assert "analyst" not in projects.roles_of(session, "cardio-2026", "bob")
    assert decide(env, own, actor="oscar").state == "approved"  # another Office member may
    assert decide(env, app_id).state == "approved"
    refused(
        env,
        lambda s: accounts.decide_account(s, env.paths, app_id, approve=False, actor="oscar"),
        "account_application_decided",
    )


def test_approval_makes_the_member_at_once_and_ends_the_account_with_the_dua(env: Env) -> None:
    add_user(env, "bob")
    with_dua(env, "cardio-2026", "2027-06-30")  # the DUA ends before the project (2027-10-31)
    decided = decide(env, apply(env))
    assert (decided.state, decided.decided_by, decided.expires_on) == ("approved", "olga", "2027-06-30")
    with env.session() as session:
        assert projects.roles_of(session, "cardio-2026", "bob") == {"analyst"}
        assert users.get_user(session, "bob").expires_on == "2027-06-30"
        assert accounts.account_expiry(session, "bob") == date(2027, 6, 30)
    actions = [(e.action, e.project) for e in audit_rows(env) if e.action.startswith("account.")]
    assert actions == [
        ("account.apply", "cardio-2026"),
        ("account.decide", "cardio-2026"),
        ("account.membership", "cardio-2026"),
        ("account.expire", None),
    ]


def test_expiry_is_the_project_end_when_the_dua_runs_longer_or_there_is_none(env: Env) -> None:
    add_user(env, "bob")
    decide(env, apply(env))
    with env.session() as session:
        assert users.get_user(session, "bob").expires_on == PERIOD["end"]
    make_project(env, "diab-2026", {"start": "2026-01-01", "end": "2027-03-31"})
    with_dua(env, "diab-2026", "2028-12-31")
    with env.session() as session:
        assert accounts.project_account_end(session, session.get(Project, "diab-2026")) == date(2027, 3, 31)


def test_a_later_approval_extends_the_account_only_to_that_projects_end(env: Env) -> None:
    add_user(env, "bob")
    make_project(env, "short-2026", {"start": "2026-01-01", "end": "2027-03-31"})
    make_project(env, "later-2026", {"start": "2026-01-01", "end": "2028-10-31"})
    make_project(env, "early-2026", {"start": "2026-01-01", "end": "2027-02-28"})
    with_dua(env, "later-2026", "2027-08-31")

    def expiry() -> str | None:
        with env.session() as session:
            return users.get_user(session, "bob").expires_on

    decide(env, apply(env, project="short-2026"))
    assert expiry() == "2027-03-31"
    decide(env, apply(env, project="later-2026"))
    assert expiry() == "2027-08-31"  # that project's DUA end, not its 2028 end
    decide(env, apply(env, project="early-2026"))
    assert expiry() == "2027-08-31"  # an earlier project does not shorten it


def test_an_account_added_after_approval_gets_its_end_date(env: Env) -> None:
    with_dua(env, "cardio-2026", "2027-05-31")
    decided = decide(env, apply(env))
    assert decided.expires_on == "2027-05-31"
    add_user(env, "bob")
    with env.session() as session:
        assert users.get_user(session, "bob").expires_on == "2027-05-31"


def test_a_rejection_adds_nobody(env: Env) -> None:
    assert decide(env, apply(env), approve=False).state == "rejected"
    with env.session() as session:
        assert projects.roles_of(session, "cardio-2026", "bob") == set()
        assert accounts.account_expiry(session, "bob") is None


def test_a_deid_operator_cannot_apply_to_use_data(env: Env) -> None:
    with env.session() as session:
        roles.grant(session, "dan", Role.DEID_OPERATOR, actor="admin")
    with pytest.raises(Forbidden) as caught:
        apply(env, user="dan")
    assert caught.value.code == "role_conflict"


# ---- expiry at login (R-APP-17, T6) --------------------------------------------------------------------


def test_login_is_refused_the_day_after_the_account_ends(env: Env) -> None:
    add_user(env, "bob")
    with_dua(env, "cardio-2026", "2027-06-30")
    decide(env, apply(env))
    assert login(env, "bob", today=date(2027, 6, 29)).ok
    assert login(env, "bob", today=date(2027, 6, 30)).ok  # usable through its last day
    after = login(env, "bob", today=date(2027, 7, 1))
    assert (after.ok, after.reason, after.change_required) == (False, "account_expired", False)
    wrong = login(env, "bob", "Wrong-Password-1", today=date(2027, 7, 1))
    assert wrong.reason == "bad_password"  # no word about the expiry without the password
    with env.session() as session:
        fails = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.login_fail")).all()
        assert [json.loads(e.details_json)["reason"] for e in fails] == ["account_expired", "bad_password"]
        assert users.get_user(session, "bob").failed_logins == 1  # the expiry is not a failure


def test_analyst_login_is_refused_once_every_project_ended(env: Env) -> None:
    for name in ("alice", "carol", "stan", "newcomer"):
        add_user(env, name)
    make_project(env, "later-2026", {"start": "2026-01-01", "end": "2028-06-30"}, staff=("pat", "kim"))
    day_after = date(2027, 11, 1)
    assert login(env, "alice", today=date(2027, 10, 31)).ok
    assert login(env, "alice", today=day_after).reason == "projects_ended"  # alice: cardio only
    assert login(env, "carol", today=day_after).reason == "projects_ended"  # committee of cardio only
    assert login(env, "stan", today=day_after).ok  # staff: not an analyst account
    assert login(env, "newcomer", today=day_after).ok  # no project yet: may file an application
    with env.session() as session:
        session.add(ProjectMember(project_id="later-2026", username="alice", role="analyst"))
    assert login(env, "alice", today=day_after).ok  # one project still runs
    with env.session() as session:
        lifecycle.expire(session, "later-2026", actor="stan", reason="closed early")
    assert login(env, "alice", today=day_after).reason == "projects_ended"  # expired ahead of its end


def test_an_expired_account_does_the_same_work_for_a_wrong_password(env: Env, monkeypatch: Any) -> None:
    """The expiry check runs after the password, so it adds no query to a wrong guess (timing, #14)."""
    from sqlalchemy import event

    add_user(env, "bob")
    with env.session() as session:
        users.get_user(session, "bob").expires_on = "2026-01-01"
    statements: list[str] = []
    engine = env.sessions.kw["bind"]

    def trace(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", trace)
    try:
        work = {}
        for name in ("bob", "mallory"):
            statements.clear()
            assert not login(env, name, "Wrong-Password-1", today=BEFORE_END).ok
            work[name] = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", trace)
    assert work["bob"] == work["mallory"]


def test_expire_check_lists_ended_accounts_and_audits_each_once(env: Env) -> None:
    add_user(env, "bob")
    add_user(env, "alice")
    decide(env, apply(env))
    with env.session() as session:
        assert accounts.expired_accounts(session, today=date(2027, 10, 31)) == []
        first = accounts.record_expiries(session, actor="stan", today=date(2027, 11, 1))
        again = accounts.record_expiries(session, actor="stan", today=date(2027, 11, 2))
    assert [(r["user"], r["reason"], r["newly_recorded"]) for r in first] == [
        ("alice", "projects_ended", True),
        ("bob", "account_expired", True),
    ]
    assert [r["newly_recorded"] for r in again] == [False, False]
    ended = [e for e in audit_rows(env) if e.action == "account.expire" and "ended" in e.details_json]
    assert len(ended) == 2


# ---- membership removal (R-ROLE-9) -------------------------------------------------------------------


def test_removing_a_member_refuses_the_next_gateway_query_at_once(env: Env) -> None:
    """The gateway checks the membership in the database for every query (its token cache holds who
    the caller is, never what they may do)."""
    from enclave.gateway.monitor import QueryMonitor
    from enclave.gateway.runner import QueryRunner
    from enclave.guard.limits import QueryLimits
    from enclave.services.auth import Caller

    make_project(env, "live-2026", {"start": "2026-01-01", "end": "2099-12-31"}, prepare=True)
    decide(env, apply(env, project="live-2026"))
    limits = QueryLimits(rows=1000, memory="1GB", threads=1, timeout_s=30)
    runner = QueryRunner(env.session, env.paths, QueryMonitor(), limits, workers=1)
    caller = Caller("bob", "live-2026")

    def query() -> Any:
        work = runner.run(
            caller,
            "SELECT count(*) AS n FROM patients",
            synthetic=False,
            source="t",
            query_id=uuid.uuid4().hex,
        )
        return asyncio.run(work)

    try:
        assert query().rows == [[60]]
        refused(env, lambda s: accounts.remove_member(s, "live-2026", "bob", actor="olga"), "role_required")
        with env.session() as session:
            assert accounts.remove_member(session, "live-2026", "bob", actor="stan")["removed"] == ["analyst"]
        with pytest.raises(Forbidden) as caught:
            query()
        assert caught.value.code == "not_a_project_analyst"
    finally:
        runner.shutdown()
    with env.session() as session:
        states = [a.state for a in accounts.list_applications(session, username="bob")]
        assert states == ["revoked"]
    refused(
        env,
        lambda s: accounts.remove_member(s, "live-2026", "bob", actor="stan"),
        "member_not_found",
        NotFound,
    )


# ---- the CLI ----------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", env.url)
    yield env


def cli(env: Env, *args: str, stdin: str | None = None, code: int = 0) -> Any:
    result = runner.invoke(app, ["--home", str(env.paths.home), *args], input=stdin)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_cli_apply_decide_show_list_and_remove(cli_env: Env) -> None:
    env = cli_env
    add_user(env, "bob")
    apply = ("account", "apply", "--project", "cardio-2026", "--role", "analyst", "--id-kind", "id_card")
    filed = cli(
        env,
        *apply,
        "--user",
        "bob",
        "--id-number-stdin",
        "--actor",
        "bob",
        "--today",
        "2027-01-15",
        "--json",
        stdin=ID_TYPED + "\n",
    )
    assert filed["state"] == "pending" and ID_NUMBER not in json.dumps(filed).upper()
    missing = cli(env, *apply, "--user", "eve", "--json", code=2)
    assert missing["error"]["code"] == "identity_number_missing"
    own = cli(env, "account", "decide", str(filed["id"]), "approve", "--user", "bob", "--json", code=4)
    assert own["error"]["code"] == "role_required"
    bad = cli(env, "account", "decide", str(filed["id"]), "maybe", "--user", "olga", "--json", code=2)
    assert bad["error"]["code"] == "decision_invalid"
    assert cli(env, "account", "decide", "999", "approve", "--user", "olga", "--json", code=2)["error"][
        "code"
    ] == ("account_application_not_found")
    decided = cli(
        env,
        "account",
        "decide",
        str(filed["id"]),
        "approve",
        "--user",
        "olga",
        "--today",
        "2027-01-15",
        "--json",
    )
    assert (decided["state"], decided["expires_on"], decided["account_exists"]) == (
        "approved",
        PERIOD["end"],
        True,
    )
    listed = cli(env, "account", "list", "--project", "cardio-2026", "--json")
    assert [(a["user"], a["state"]) for a in listed] == [("bob", "approved")]
    assert cli(env, "account", "list", "--project", "other", "--json") == []
    shown = cli(env, "account", "show", "bob", "--today", "2027-01-15", "--json")
    assert shown["expires_on"] == PERIOD["end"] and shown["totp"] is False
    assert shown["memberships"] == [
        {
            "project": "cardio-2026",
            "role": "analyst",
            "period_end": PERIOD["end"],
            "project_state": "approved",
            "ended": False,
        }
    ]
    assert shown["password_age_days"] == 0 and shown["password_max_age_days"] == 90
    assert shown["login"] == "allowed"
    text_out = cli(env, "account", "show", "bob")
    with env.session() as session:
        secrets_ = [
            users.get_user(session, "bob").password_hash,
            session.get(AccountApplication, filed["id"]).identity_hmac,
        ]
    for out in (json.dumps(shown), json.dumps(listed), text_out):
        assert "scrypt$" not in out and not any(s in out for s in secrets_)
    assert cli(env, "account", "show", "nobody", "--json", code=2)["error"]["code"] == "account_not_found"
    assert (
        cli(env, "account", "remove-member", "cardio-2026", "bob", "--user", "olga", "--json", code=4)[
            "error"
        ]["code"]
        == "role_required"
    )
    removed = cli(env, "account", "remove-member", "cardio-2026", "bob", "--user", "stan", "--json")
    assert removed == {"project": "cardio-2026", "user": "bob", "removed": ["analyst"]}


def test_cli_roles_refuse_separation_of_duty_conflicts(cli_env: Env) -> None:
    env = cli_env
    granted = cli(env, "account", "role", "grant", "sam", "security_admin", "--user", "root", "--json")
    assert granted["roles"] == ["security_admin"]
    conflict = cli(
        env, "account", "role", "grant", "sam", "security_auditor", "--user", "root", "--json", code=4
    )
    assert conflict["error"]["code"] == "role_conflict"
    assert (
        cli(env, "account", "role", "grant", "sam", "wizard", "--user", "root", "--json", code=2)["error"][
            "code"
        ]
        == "role_unknown"
    )
    listed = cli(env, "account", "role", "list", "--json")
    assert listed["security_admin"] == ["sam"] and listed["office"] == ["olga", "oscar"]
    assert (
        cli(env, "account", "role", "revoke", "sam", "security_admin", "--user", "root", "--json")["roles"]
        == []
    )
    assert cli(env, "account", "role", "grant", "sam", "security_auditor", "--user", "root", "--json")[
        "roles"
    ] == ["security_auditor"]
    with env.session() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.object == "user:sam")
            .order_by(AuditEvent.seq)
        ).all()
    # The refused grants are audited too (R-AUD-6): the conflict and the unknown role.
    assert [tuple(r) for r in rows] == [
        ("role.grant", "success"),
        ("role.grant", "refused"),
        ("role.grant", "refused"),
        ("role.revoke", "success"),
        ("role.grant", "success"),
    ]


def test_cli_expire_check(cli_env: Env) -> None:
    env = cli_env
    add_user(env, "alice")
    assert cli(env, "account", "expire-check", "--today", "2027-10-31", "--json") == []
    rows = cli(env, "account", "expire-check", "--today", "2027-11-01", "--actor", "stan", "--json")
    assert rows == [{"user": "alice", "reason": "projects_ended", "expires_on": None, "newly_recorded": True}]
    assert "alice" in cli(env, "account", "expire-check", "--today", "2027-11-01")
    assert (
        cli(env, "account", "expire-check", "--today", "soon", "--json", code=2)["error"]["code"]
        == "date_invalid"
    )
    assert [e.actor for e in audit_rows(env) if e.action == AuditAction.ACCOUNT_EXPIRE.value] == ["stan"]
