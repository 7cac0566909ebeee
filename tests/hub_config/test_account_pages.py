"""The hub's account pages in a real JupyterHub (the enclave's own hub config, its EnclaveAuthenticator)
driven by headless Chromium: a first login with a steward's password lands on the change page and
reaches the hub once the password is changed; TOTP enrolment on its page makes the next login ask for
a code (R-SEC-1). The hub launcher is the e2e tests' and the browser the export-review UI tests'."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from enclave import db, totp, users
from enclave.config import Paths
from enclave.db.models import AuditEvent, LocalUser
from enclave.db.session import dispose_all
from hub_config.auth import LOGIN_REFUSED
from tests.e2e.conftest import Hub, launch_hub
from tests.export_review.web.test_browser import browser  # noqa: F401 (a fixture)

STEWARDS_PASSWORD = "Steward-Chose-This-1"
OWN_PASSWORD = "Picked-My-Own-Pass-22"
TINA_PASSWORD = "Has-A-Password-Of-3"
SCREENSHOT = Path("/tmp/enclave-account-password.png")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    paths = Paths(tmp_path_factory.mktemp("account-pages"))
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    with db.session_scope(db.connect(url)) as session:
        users.add_user(session, "newbie", STEWARDS_PASSWORD, actor="steward", must_change_password=True)
        users.add_user(session, "tina", TINA_PASSWORD, actor="steward")
    yield paths
    dispose_all()


@pytest.fixture(scope="module")
def hub(home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with launch_hub(home, tmp_path_factory.mktemp("account-hub")) as running:
        yield running


def account(home: Paths, name: str) -> LocalUser:
    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        found = users.get_user(session, name)
        session.expunge(found)
        return found


def actions(home: Paths, name: str) -> list[str]:
    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        query = select(AuditEvent.action).where(AuditEvent.object == f"user:{name}").order_by(AuditEvent.seq)
        return list(session.scalars(query))


def submit_login(page, hub: Hub, name: str, password: str, code: str = "") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    if code:
        page.fill("input[name=otp]", code)
    page.click("[type=submit]")
    page.wait_for_load_state()


def test_first_login_goes_to_the_change_page_then_to_the_hub(hub: Hub, home: Paths, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    submit_login(page, hub, "newbie", STEWARDS_PASSWORD)
    assert page.url.startswith(f"{hub.url}/hub/account/password")
    assert page.get_attribute("#notice", "data-reason") == "first_login"
    assert page.inner_text("#account") == "newbie"
    # not logged in meanwhile: the hub itself still sends the browser to the login form
    assert not context.cookies() or all(c["name"] != "jupyterhub-hub-login" for c in context.cookies())

    page.fill("#current", "Wrong-Password-9")
    page.fill("#new", OWN_PASSWORD)
    page.fill("#new2", OWN_PASSWORD)
    page.click("#change")
    assert "wrong" in page.inner_text("#errors")
    assert account(home, "newbie").failed_logins == 1  # counted towards the lockout

    page.fill("#current", STEWARDS_PASSWORD)
    page.fill("#new", "too-simple")
    page.fill("#new2", "too-simple")
    page.click("#change")
    assert "at least 12" in page.inner_text("#errors")

    page.fill("#current", STEWARDS_PASSWORD)
    page.fill("#new", OWN_PASSWORD)
    page.fill("#new2", OWN_PASSWORD)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#change")
    page.wait_for_url(f"{hub.url}/hub/home**")
    assert "newbie" in page.inner_text("body")
    changed = account(home, "newbie")
    assert changed.must_change_password is False and changed.failed_logins == 0
    assert actions(home, "newbie")[-1] == "user.password"

    # the logged-in user changes it again on the same page, in Chinese
    page.goto(f"{hub.url}/hub/account/password?lang=zh")
    assert "修改密码" in page.inner_text("h1") and page.locator("#notice").count() == 0
    page.fill("#current", OWN_PASSWORD)
    page.fill("#new", "Second-Own-Password-33")
    page.fill("#new2", "Second-Own-Password-33x")
    page.click("#change")
    assert "两次输入的新密码不一致" in page.inner_text("#errors")
    # a forged form post without the hub's xsrf token is refused
    forged = page.request.post(
        f"{hub.url}/hub/account/password",
        form={"current": OWN_PASSWORD, "new": "Forged-Password-44", "new2": "Forged-Password-44"},
    )
    assert forged.status == 403
    context.close()

    fresh = browser.new_context()
    page = fresh.new_page()
    submit_login(page, hub, "newbie", OWN_PASSWORD)
    page.wait_for_url(f"{hub.url}/hub/home**")  # a full login now
    fresh.close()


def test_the_change_page_is_closed_without_a_login(hub: Hub, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.url}/hub/account/password")
    assert page.url.startswith(f"{hub.url}/hub/login")
    page.goto(f"{hub.url}/hub/account/totp")
    assert page.url.startswith(f"{hub.url}/hub/login")
    context.close()


def test_totp_enrolment_makes_the_next_login_ask_for_a_code(hub: Hub, home: Paths, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    submit_login(page, hub, "tina", TINA_PASSWORD)
    page.wait_for_url(f"{hub.url}/hub/home**")
    page.goto(f"{hub.url}/hub/account/totp")
    assert page.get_attribute("#state", "data-enrolled") == "no"
    secret = totp.from_base32(page.inner_text("#secret"))
    assert page.inner_text("#uri").startswith("otpauth://totp/Enclave%3Atina?")
    assert account(home, "tina").totp_secret is None  # shown, not stored yet

    page.fill("#code", "000000" if totp.totp(secret, time.time()) != "000000" else "111111")
    page.click("#enrol")
    assert page.locator("#errors").count() == 1 and account(home, "tina").totp_secret is None
    page.fill("#code", totp.totp(secret, time.time()))
    page.click("#enrol")
    assert page.locator("#done").count() == 1
    assert account(home, "tina").totp_secret is not None
    assert "user.totp_enable" in actions(home, "tina")

    page.goto(f"{hub.url}/hub/account/totp")  # enrolled: replacing it needs the password
    assert page.get_attribute("#state", "data-enrolled") == "yes"
    assert page.locator("#current").count() == 1
    context.close()

    fresh = browser.new_context()
    page = fresh.new_page()
    submit_login(page, hub, "tina", TINA_PASSWORD)  # no code
    assert page.url.startswith(f"{hub.url}/hub/login")
    assert LOGIN_REFUSED.split(" / ")[1] in page.inner_text("body")  # the refusal, in both languages
    submit_login(page, hub, "tina", TINA_PASSWORD, totp.totp(secret, time.time() + totp.STEP_SECONDS))
    page.wait_for_url(f"{hub.url}/hub/home**")
    fresh.close()


# ---- the authenticator called directly: refused by date, sent to the change page --------------------


class _Request:
    remote_ip = "127.0.0.9"


class _Handler:
    request = _Request()


def test_the_authenticator_refuses_ended_accounts_and_ends_their_sessions(home: Paths) -> None:
    """T6: the day after the account's end date, the hub login is refused with the one bilingual
    message, and an open session is sent back to the login at the next refresh."""
    import asyncio

    from tornado import web

    from enclave.lifecycle import enclave_today
    from hub_config.account_pages import PasswordChangeRequired
    from hub_config.auth import EnclaveAuthenticator

    url = f"sqlite:///{home.state_db}"
    with db.session_scope(db.connect(url)) as session:
        users.add_user(session, "ending", "Last-Day-Pass-4x", actor="steward")
        users.add_user(session, "forced", "Set-By-Steward-5x", actor="steward", must_change_password=True)
    auth = EnclaveAuthenticator(enclave_home=str(home.home), database_url=url)

    def run(work: Any) -> Any:  # on a thread of its own: the sync browser holds this thread's loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, work).result()

    def attempt(name: str, password: str) -> str:
        return run(auth.authenticate(_Handler(), {"username": name, "password": password}))

    class _User:
        def __init__(self, name: str) -> None:
            self.name = name

    def refreshed(name: str) -> bool:
        return run(auth.refresh_user(_User(name)))

    today = enclave_today()
    for last_day, allowed in ((today, True), (today - timedelta(days=1), False)):
        with db.session_scope(db.connect(url)) as session:
            users.get_user(session, "ending").expires_on = last_day.isoformat()
        if allowed:
            assert attempt("ending", "Last-Day-Pass-4x") == "ending" and refreshed("ending")
        else:
            with pytest.raises(web.HTTPError) as refused:
                attempt("ending", "Last-Day-Pass-4x")
            assert refused.value.status_code == 403 and refused.value.log_message == LOGIN_REFUSED
            assert not isinstance(refused.value, PasswordChangeRequired)
            assert refreshed("ending") is False
    with pytest.raises(PasswordChangeRequired) as change:
        attempt("forced", "Set-By-Steward-5x")
    assert (change.value.status_code, change.value.username, change.value.reason) == (
        403,
        "forced",
        "password_change_required",
    )
    assert refreshed("forced") is False
