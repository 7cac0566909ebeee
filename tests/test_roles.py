"""Platform roles and the separation of duties (R-ROLE-4, R-ROLE-5, R-ROLE-7, R-ROLE-9), on SQLite
and PostgreSQL: the whole compatibility matrix, project membership of de-identification operators,
user-name spellings, second accounts of one person, audit, immediate revocation, and two sessions
granting conflicting roles at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from enclave import projects, roles
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import AccountApplication, AuditEvent, Project, ProjectMember, StaffRole
from enclave.errors import BadInput, EnclaveError, Forbidden
from enclave.roles import Role
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)

A, AUD, SYS, DEID = Role.SECURITY_ADMIN, Role.SECURITY_AUDITOR, Role.SYSTEM_ADMIN, Role.DEID_OPERATOR
# Written out rather than read from roles.INCOMPATIBLE, so the table itself is under test.
EXPECTED_CONFLICTS = {
    frozenset(pair)
    for pair in [
        (A, AUD),  # R-ROLE-4: the three administrative duties, pairwise
        (A, SYS),
        (AUD, SYS),
        (DEID, A),  # the de-identification operator holds no administrative duty either
        (DEID, AUD),
        (DEID, SYS),
        (AUD, Role.STEWARD),  # the auditor audits the stewards and the Office
        (AUD, Role.OFFICE),
        (DEID, Role.COMMITTEE),  # R-ROLE-5: no one involved in the agreement de-identifies
        (DEID, Role.OFFICE),
        (DEID, Role.STEWARD),
    ]
}


def grant(sessions: sessionmaker[Session], user: str, role: Role | str, actor: str = "root") -> None:
    with session_scope(sessions) as s:
        roles.grant(s, user, role, actor=actor)  # type: ignore[arg-type]


def revoke(sessions: sessionmaker[Session], user: str, role: Role, actor: str = "root") -> None:
    with session_scope(sessions) as s:
        roles.revoke(s, user, role, actor=actor)


def held(sessions: sessionmaker[Session], user: str) -> set[Role]:
    with session_scope(sessions) as s:
        return roles.roles_of(s, user)


def role_events(sessions: sessionmaker[Session]) -> list[tuple[str, str, str, str]]:
    with session_scope(sessions) as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("role.%")).order_by(AuditEvent.seq)
        ).all()
        return [(e.action, e.actor, e.object, json.loads(e.details_json)["role"]) for e in rows]


def refused(call: Callable[[], Any]) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        call()
    assert caught.value.code == "role_conflict"
    assert caught.value.message and caught.value.message_zh
    return caught.value


# ---- the matrix --------------------------------------------------------------------------------------


def test_every_conflicting_pair_is_refused_in_both_orders(sessions: sessionmaker[Session]) -> None:
    for i, (first, second) in enumerate(
        (a, b) for pair in sorted(EXPECTED_CONFLICTS, key=sorted) for a, b in permutations(sorted(pair))
    ):
        user = f"u{i}"
        grant(sessions, user, first)
        error = refused(lambda: grant(sessions, user, second))  # noqa: B023
        assert error.details == {"user": user, "role": second.value, "held": first.value, "account": user}
        assert held(sessions, user) == {first}, (first, second)
    # Nothing of the refusals was written: one grant record per account, no second role row.
    events = role_events(sessions)
    assert len(events) == 2 * len(EXPECTED_CONFLICTS)
    assert all(action == "role.grant" for action, *_ in events)


def test_every_other_pair_may_be_combined(sessions: sessionmaker[Session]) -> None:
    allowed = [(a, b) for a, b in permutations(Role, 2) if frozenset({a, b}) not in EXPECTED_CONFLICTS]
    assert (Role.OFFICE, A) in allowed  # 001 App.C: the Office's deputy head doubles as security admin
    for i, (first, second) in enumerate(allowed):
        grant(sessions, f"u{i}", first)
        grant(sessions, f"u{i}", second)
        assert held(sessions, f"u{i}") == {first, second}


def test_the_table_is_exactly_the_rules() -> None:
    assert roles.INCOMPATIBLE == EXPECTED_CONFLICTS


def test_check_compatible_refuses_without_writing(sessions: sessionmaker[Session]) -> None:
    grant(sessions, "alice", A)
    with session_scope(sessions) as s:
        refused(lambda: roles.check_compatible(s, "alice", AUD))
        roles.check_compatible(s, "alice", Role.COMMITTEE)
        assert s.scalars(select(StaffRole.role).where(StaffRole.username == "alice")).all() == [A.value]


# ---- R-ROLE-5: de-identification operators and the users of the data ------------------------------


@pytest.fixture
def catalogued(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> sessionmaker[Session]:
    with session_scope(sessions) as s:
        register_patients_and_visits(s, paths, tmp_path, actor="st")
    return sessions


def create(session: Session, paths: Paths, **fields: Any) -> dict[str, Any]:
    spec = parse_project_spec(project_spec(**fields))
    return projects.create_project(
        session, paths, spec, actor="steward", preparer=None, without_application=NO_APPLICATION
    )


@pytest.mark.parametrize("member", ["pi", "analyst"])
def test_a_data_user_cannot_become_a_deid_operator(
    catalogued: sessionmaker[Session], paths: Paths, member: str
) -> None:
    fields = {"pi": "zoe", "analysts": ["zoe"]} if member == "pi" else {"pi": "alice", "analysts": ["zoe"]}
    with session_scope(catalogued) as s:
        create(s, paths, **fields)
    error = refused(lambda: grant(catalogued, "zoe", DEID))
    assert error.details["project"] == "cardio-2026"
    assert held(catalogued, "zoe") == set()


def test_a_project_committee_member_may_be_a_deid_operator(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    """The exclusion is of the people who use the data (R-ROLE-5), not of export reviewers."""
    with session_scope(catalogued) as s:
        create(s, paths)
    grant(catalogued, "carol", DEID)
    assert held(catalogued, "carol") == {DEID}


@pytest.mark.parametrize("fields", [{"analysts": ["alice", "dora"]}, {"pi": "dora", "analysts": ["bob"]}])
def test_a_deid_operator_cannot_join_a_project_as_a_data_user(
    catalogued: sessionmaker[Session], paths: Paths, fields: dict[str, Any]
) -> None:
    grant(catalogued, "dora", DEID)
    with pytest.raises(Forbidden) as caught, session_scope(catalogued) as s:
        create(s, paths, **fields)
    assert caught.value.code == "role_conflict"
    assert caught.value.details["user"] == "dora"
    with session_scope(catalogued) as s:  # all or nothing: no project, no member rows
        assert s.get(Project, "cardio-2026") is None
        assert s.scalars(select(ProjectMember)).all() == []


def test_check_project_member_allowed(sessions: sessionmaker[Session]) -> None:
    grant(sessions, "dora", DEID)
    with session_scope(sessions) as s:
        for project_role in ("pi", "analyst"):
            error = refused(lambda: roles.check_project_member_allowed(s, "dora", project_role))  # noqa: B023
            assert error.details["project_role"] == project_role
        roles.check_project_member_allowed(s, "dora", "committee")
        roles.check_project_member_allowed(s, "bob", "analyst")


# ---- the cheapest ways around ------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["Alice", "ALICE", "alice ", " alice", "alicе", "", "9alice"])
def test_a_second_spelling_of_a_name_is_refused(sessions: sessionmaker[Session], spelling: str) -> None:
    """User names are lower-case ASCII (``users.check_username``): ``Alice`` is not a second holder."""
    grant(sessions, "alice", A)
    with pytest.raises(BadInput) as caught:
        grant(sessions, spelling, AUD)
    assert caught.value.code == "username_invalid"
    with pytest.raises(BadInput):
        revoke(sessions, spelling, A)
    with session_scope(sessions) as s:
        assert s.scalars(select(StaffRole.username)).all() == ["alice"]


def test_a_name_without_a_local_account_may_hold_a_role(sessions: sessionmaker[Session]) -> None:
    """Accounts of an external identity provider (OIDC, LDAP) never appear in ``local_users``."""
    grant(sessions, "oidc.user", Role.COMMITTEE)
    with session_scope(sessions) as s:
        assert roles.holders(s, Role.COMMITTEE) == ["oidc.user"]


def test_an_unknown_role_is_bad_input(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(BadInput) as caught:
        grant(sessions, "alice", "superuser")
    assert caught.value.code == "role_unknown"
    assert roles.parse_role("steward") is Role.STEWARD


def apply_for_account(session: Session, username: str, identity_hmac: str) -> None:
    session.add(
        AccountApplication(
            username=username,
            project_id="cardio-2026",
            role="analyst",
            identity_kind="resident_id",
            identity_hmac=identity_hmac,
            state="approved",
            requested_by="pi",
            requested_at="2026-11-01T00:00:00+00:00",
        )
    )


def test_a_second_account_of_the_same_person_is_no_way_around(sessions: sessionmaker[Session]) -> None:
    """R-ROLE-7 gives one person one account per role; the duties still stay apart per person."""
    with session_scope(sessions) as s:
        apply_for_account(s, "alice", "f" * 64)
        apply_for_account(s, "alice2", "f" * 64)
        apply_for_account(s, "bob", "b" * 64)
    grant(sessions, "alice", A)
    error = refused(lambda: grant(sessions, "alice2", AUD))
    assert error.details["account"] == "alice" and "alice" in error.message_zh
    grant(sessions, "bob", AUD)  # another person
    grant(sessions, "alice2", Role.COMMITTEE)  # a compatible role
    with session_scope(sessions) as s:
        assert roles.same_person(s, "alice2") == {"alice", "alice2"}
        assert roles.same_person(s, "nobody") == {"nobody"}


def test_a_deid_operators_second_account_cannot_use_the_data(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    with session_scope(catalogued) as s:
        apply_for_account(s, "dora", "d" * 64)
        apply_for_account(s, "dora2", "d" * 64)
    grant(catalogued, "dora", DEID)
    with pytest.raises(Forbidden) as caught, session_scope(catalogued) as s:
        create(s, paths, analysts=["alice", "dora2"])
    assert caught.value.code == "role_conflict" and caught.value.details["account"] == "dora"
    # and the other way: the data user's second account is no de-identification operator
    revoke(catalogued, "dora", DEID)
    with session_scope(catalogued) as s:
        create(s, paths, analysts=["alice", "dora2"])
    error = refused(lambda: grant(catalogued, "dora", DEID))
    assert error.details["account"] == "dora2"


# ---- audit and immediate effect ----------------------------------------------------------------------


def test_grants_and_revokes_are_audited_once(sessions: sessionmaker[Session]) -> None:
    grant(sessions, "alice", Role.OFFICE, actor="sec")
    grant(sessions, "alice", Role.OFFICE, actor="sec")  # already held: nothing new
    revoke(sessions, "alice", Role.OFFICE, actor="sec2")
    revoke(sessions, "alice", Role.OFFICE, actor="sec2")  # not held: nothing to record
    revoke(sessions, "bob", Role.STEWARD, actor="sec2")
    assert role_events(sessions) == [
        ("role.grant", "sec", "user:alice", "office"),
        ("role.revoke", "sec2", "user:alice", "office"),
    ]


def test_revoking_takes_effect_at_once(sessions: sessionmaker[Session]) -> None:
    grant(sessions, "alice", A)
    grant(sessions, "bob", A)
    with session_scope(sessions) as s:
        roles.check_role(s, "alice", A, "grant roles", "授予角色")
    revoke(sessions, "alice", A)
    with session_scope(sessions) as s:
        with pytest.raises(Forbidden) as caught:
            roles.check_role(s, "alice", A, "grant roles", "授予角色")
        assert caught.value.code == "role_required"
        assert caught.value.details == {"user": "alice", "role": "security_admin"}
        assert roles.holders(s, A) == ["bob"]
    grant(sessions, "alice", AUD)  # the conflict went with the role
    assert held(sessions, "alice") == {AUD}


def test_a_revoke_in_one_open_session_is_seen_by_the_next_check(sessions: sessionmaker[Session]) -> None:
    """No role is cached: a long-lived session checking again sees the committed revocation."""
    grant(sessions, "alice", Role.COMMITTEE)
    reader = sessions()
    try:
        assert roles.has_role(reader, "alice", Role.COMMITTEE)
        reader.commit()
        revoke(sessions, "alice", Role.COMMITTEE)
        assert not roles.has_role(reader, "alice", Role.COMMITTEE)
    finally:
        reader.close()


# ---- two sessions at once ----------------------------------------------------------------------------


@contextmanager
def first_write_of_other_threads(sessions: sessionmaker[Session]) -> Iterator[threading.Event]:
    """An event set when a thread other than this one sends its first write statement."""
    engine = sessions.kw["bind"]
    main = threading.get_ident()
    wrote = threading.Event()

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() != main and statement.lstrip().split()[0].upper() in {
            "INSERT",
            "UPDATE",
            "DELETE",
        }:
            wrote.set()

    event.listen(engine, "before_cursor_execute", spy)
    try:
        yield wrote
    finally:
        event.remove(engine, "before_cursor_execute", spy)


def interleave(
    sessions: sessionmaker[Session], first: Callable[[Session], Any], second: Callable[[Session], Any]
) -> BaseException | None:
    """Run ``first`` in an open transaction; start ``second`` in its own session on a thread; commit
    the first only once the second has begun writing (when, without a lock, it has already read)."""
    outcome: list[BaseException | None] = []

    def run_second() -> None:
        try:
            with session_scope(sessions) as s:
                second(s)
            outcome.append(None)
        except BaseException as error:  # handed to the test
            outcome.append(error)

    with first_write_of_other_threads(sessions) as wrote, session_scope(sessions) as s:
        first(s)
        thread = threading.Thread(target=run_second, daemon=True)
        thread.start()
        assert wrote.wait(60), "the second session never wrote"
    thread.join(60)
    assert not thread.is_alive() and len(outcome) == 1
    return outcome[0]


def test_two_sessions_granting_conflicting_roles_at_once(sessions: sessionmaker[Session]) -> None:
    error = interleave(
        sessions,
        lambda s: roles.grant(s, "alice", A, actor="sec1"),
        lambda s: roles.grant(s, "alice", AUD, actor="sec2"),
    )
    assert isinstance(error, Forbidden) and error.code == "role_conflict"
    assert held(sessions, "alice") == {A}
    assert role_events(sessions) == [("role.grant", "sec1", "user:alice", "security_admin")]


def test_a_deid_grant_racing_the_project_that_makes_the_person_an_analyst(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    error = interleave(
        catalogued,
        lambda s: create(s, paths, analysts=["alice", "dora"]),
        lambda s: roles.grant(s, "dora", DEID, actor="sec"),
    )
    assert isinstance(error, Forbidden) and error.code == "role_conflict"
    assert held(catalogued, "dora") == set()


def test_a_project_racing_the_deid_grant_of_its_analyst(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    error = interleave(
        catalogued,
        lambda s: roles.grant(s, "dora", DEID, actor="sec"),
        lambda s: create(s, paths, analysts=["alice", "dora"]),
    )
    assert isinstance(error, Forbidden) and error.code == "role_conflict"
    with session_scope(catalogued) as s:
        assert s.get(Project, "cardio-2026") is None


def test_many_sessions_granting_the_four_duties_at_once_leave_one(sessions: sessionmaker[Session]) -> None:
    duties = [A, AUD, SYS, DEID] * 2
    barrier = threading.Barrier(len(duties))

    def attempt(role: Role) -> str:
        barrier.wait()
        try:
            grant(sessions, "alice", role)
            return "granted"
        except EnclaveError as error:
            return error.code

    with ThreadPoolExecutor(len(duties)) as pool:
        results = list(pool.map(attempt, duties))
    assert set(results) <= {"granted", "role_conflict"}
    assert len(held(sessions, "alice")) == 1
    assert len(role_events(sessions)) == 1
