"""The gateway's /metrics with a real hub: Prometheus text for a `read:metrics` token, refused to
everyone else (issue 13, item 6)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from enclave_client import QueryError
from prometheus_client.parser import text_string_to_metric_families
from traitlets.config import Config

from enclave import catalog, db
from enclave.db.session import dispose_all
from tests.gateway.conftest import (
    N_PATIENTS,
    PROJECT,
    Enclave,
    Hub,
    RunningGateway,
    _create_project,
    start_gateway,
)
from tests.gateway.test_gateway import AGGREGATE, ROW_LEVEL, connection
from tests.harness.factories import (
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    visits_table,
    write_dataset,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enclave]:
    """One active project is all these tests need."""
    root = tmp_path_factory.mktemp("enclave")
    (root / "home").mkdir()
    setup = Enclave(root / "home", f"sqlite:///{root / 'home' / 'state.db'}")
    db.migrate(setup.database_url)
    for name, table, columns in (
        ("patients", patients_table(N_PATIENTS), PATIENT_COLUMNS),
        ("visits", visits_table(N_PATIENTS), VISIT_COLUMNS),
    ):
        with setup.session() as session:
            spec = write_dataset(root / "sources", name, table, columns)
            catalog.register(session, setup.paths, spec, actor="steward")
    with setup.session() as session:
        _create_project(session, setup.paths, id=PROJECT, pi="alice", analysts=["alice", "bob"])
    yield setup
    dispose_all()


@pytest.fixture(scope="module")
def watched(hub: Hub, enclave: Enclave) -> Iterator[RunningGateway]:
    """A gateway whose monitor alerts on the second refusal within the hour."""
    config = Config({"QueryMonitor": {"refused_per_hour": 1, "alerts_to_lock": 100}})
    running = start_gateway(hub, enclave, auth_cache_ttl_s=0, config=config)
    yield running
    running.stop()


def get_metrics(gateway: RunningGateway, token: str | None) -> tuple[int, str, str]:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(f"{gateway.url}metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def read(gateway: RunningGateway, hub: Hub) -> Samples:
    status, content_type, text = get_metrics(gateway, hub.user_token("mona"))
    assert status == 200, text
    assert content_type.startswith("text/plain; version=")
    return samples(text)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_queries_refusals_by_code_and_alerts(hub: Hub, watched: RunningGateway) -> None:
    before = read(watched, hub)
    db = connection(hub, watched, "bob")
    db.sql(AGGREGATE, progress=None)
    db.sql(AGGREGATE, synthetic=True, progress=None)
    codes = []
    for _ in range(2):
        with pytest.raises(QueryError) as caught:
            db.sql(ROW_LEVEL, progress=None)
        codes.append(caught.value.code)
    after = read(watched, hub)

    assert delta(after, before, "enclave_gateway_queries_total", outcome="success", synthetic="false") == 1
    assert delta(after, before, "enclave_gateway_queries_total", outcome="success", synthetic="true") == 1
    assert delta(after, before, "enclave_gateway_queries_total", outcome="refused", synthetic="false") == 2
    # a guard refusal: its stable code, and each rule it broke (what the client was told)
    assert delta(after, before, "enclave_gateway_query_refusals_total", code="query_rejected") == 2
    assert delta(after, before, "enclave_gateway_guard_violations_total", code=codes[0]) == 2
    # the second refusal passed refused_per_hour = 1: one alert, labelled by its rule only
    alerts = {dict(labels)["rule"]: v for (name, labels), v in after.items() if name.endswith("alerts_total")}
    assert sum(alerts.values()) - sum(
        v for (name, _), v in before.items() if name.endswith("alerts_total")
    ) == 1 and set(alerts) == {"refused_per_hour"}
    assert ("enclave_gateway_start_time_seconds", ()) in after


def test_metrics_carry_no_user_project_or_sql(hub: Hub, watched: RunningGateway) -> None:
    connection(hub, watched, "alice").sql(AGGREGATE, progress=None)
    _, _, text = get_metrics(watched, hub.user_token("mona"))
    assert "enclave_gateway_queries_total" in text
    for secret in ("alice", "bob", PROJECT, "patients", "SELECT"):
        assert secret not in text


def test_metrics_refuse_callers_without_read_metrics(hub: Hub, watched: RunningGateway) -> None:
    server_token, _ = hub.server_token("alice", PROJECT)
    callers = {
        "anonymous": None,
        "forged": "f" * 40,
        "an analyst's personal token": hub.user_token("alice"),
        "an analyst's server token": server_token,
        "an admin service without read:metrics": hub.admin_token,
    }
    for who, token in callers.items():
        status, content_type, body = get_metrics(watched, token)
        assert status == (401 if who in ("anonymous", "forged") else 403), (who, status, body)
        assert content_type.startswith("application/json") and "enclave_gateway" not in body, who
        if status == 403:
            assert "metrics_forbidden" in body and "read:metrics" in body, who
