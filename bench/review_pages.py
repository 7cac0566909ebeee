"""Time the export review's pages a reviewer works in, over a busy state database (issue 16).

    .venv/bin/python bench/review_pages.py --requests 5000 --repeat 20
    .venv/bin/python bench/review_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DBNAME

A real JupyterHub and the export review service behind its proxy (as the tests start them), one
project with a committee of three, and ``--requests`` older requests spread over four projects, every
state and 90 days (rows written straight into the database, one to three files each), plus one
request submitted for real and revised once. Each page is fetched ``--repeat`` times with a
reviewer's hub token through the proxy: the queue as it opens, the queue searched, the history
filtered, the request page with its previews, the comparison of the two versions, and the
analyst's own list (what JupyterLab's panel polls). Uses a fresh SQLite state database in a
temporary folder unless ``--database-url`` names an empty database to migrate (its schema is left
there). It prints figures and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enclave import db
from enclave.config import Paths
from enclave.db.models import ExportFile, ExportRequest
from enclave.db.session import dispose_all
from export_review.workflow import ExportState
from tests.export_review.factories import PROJECT, ExportEnv, make_project
from tests.export_review.web.conftest import HUB_CONFIG, SERVICE, RunningExportService, call, multipart
from tests.harness.services import hub_with_service

OTHER_PROJECTS = ("onco-2026", "renal-2026", "neuro-2026")
# Released rows would need their outbox copies: the service completes releases when it starts.
STATES = [s.value for s in ExportState if s not in (ExportState.DRAFT, ExportState.RELEASED)]
V1 = b"dx,n\nI10,25\nE11,3\nJ18,15\n"  # a cell under k: the preview marks it
V2 = b"dx,n\nI10,25\nE11-E14,8\nJ18,15\n"


def seed(env: ExportEnv, count: int) -> None:
    """``count`` requests written straight into the database, newest last."""
    now = datetime.now(UTC)
    projects = (PROJECT, *OTHER_PROJECTS)
    with env.session() as session:
        for i in range(count):
            created = (now - timedelta(minutes=90 * 24 * 60 * (count - i) / count)).isoformat()
            request_id = f"exp-{hashlib.sha256(str(i).encode()).hexdigest()[:16]}"
            session.add(
                ExportRequest(
                    id=request_id,
                    project_id=projects[i % len(projects)],
                    requester="bob" if i % 3 else "alice",
                    state=STATES[i % len(STATES)],
                    version=1,
                    justification=f"Table {i} of the cohort paper: admissions by department and year",
                    abroad=False,
                    records=0,
                    digest="0" * 64,
                    k=5,
                    lineage_json="{}",
                    created_at=created,
                    updated_at=created,
                )
            )
            for f in range(1 + i % 3):
                session.add(
                    ExportFile(
                        request_id=request_id,
                        name=f"table{f}_{i}.csv",
                        sha256=hashlib.sha256(f"{i}/{f}".encode()).hexdigest(),
                        size=100,
                        kind="csv",
                        findings_json="[]",
                        failed=False,
                    )
                )


def timed(url: str, token: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call("GET", url, token)
        times.append(time.perf_counter() - started)
        if answer.status != 200:
            raise SystemExit(f"GET {url}: HTTP {answer.status} {answer.body[:300]!r}")
    return times


def submit(service_url: str, token: str, data: bytes, **fields: str) -> str:
    body, content_type = multipart(
        {"project": PROJECT, "justification": "Table 1", **fields}, [("t.csv", data)]
    )
    answer = call("POST", f"{service_url}api/requests", token, body=body, content_type=content_type)
    if answer.status != 201:
        raise SystemExit(f"submit: HTTP {answer.status} {answer.body[:300]!r}")
    return str(answer.json()["request"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="older requests in the database")
    parser.add_argument("--repeat", type=int, default=20, help="fetches of each page")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="enclave-review-bench-") as scratch:
        root = Path(scratch)
        url = args.database_url or f"sqlite:///{root / 'state.db'}"
        db.migrate(url)
        (root / "home").mkdir()
        (root / "work").mkdir()
        env = ExportEnv(db.connect(url), Paths(root / "home"), root / "work")
        for project in (PROJECT, *OTHER_PROJECTS):
            make_project(env, project_id=project)
        seeded = time.perf_counter()
        seed(env, args.requests)
        seeded = time.perf_counter() - seeded
        with (
            hub_with_service(root, HUB_CONFIG, SERVICE) as hub,
            hub.serving(RunningExportService, env.paths.home, url, "api/requests") as _service,
        ):
            tokens = hub.user_tokens(("bob", "rev1"), "bench")
            base = f"{hub.public_url}/services/{SERVICE}/"
            v1 = submit(base, tokens["bob"], V1)
            vote = json.dumps({"choice": "changes", "comment": "pool E11"}).encode()
            call(
                "POST",
                f"{base}api/requests/{v1}/votes",
                tokens["rev1"],
                body=vote,
                content_type="application/json",
            )
            v2 = submit(base, tokens["bob"], V2, revises=v1)
            pages = {
                "queue (as it opens)": (f"{base}review", "rev1"),
                "queue searched (q=cohort)": (f"{base}review?q=cohort", "rev1"),
                "history filtered (rejected, > 7 days)": (f"{base}review?state=rejected&age=7", "rev1"),
                "request page with preview": (f"{base}requests/{v2}", "rev1"),
                "two versions compared": (f"{base}requests/{v2}/compare", "rev1"),
                "own requests (JupyterLab panel)": (f"{base}api/requests?project={PROJECT}&mine=yes", "bob"),
            }
            figures = {label: timed(page, tokens[user], args.repeat) for label, (page, user) in pages.items()}
        dispose_all()

    print(
        f"{args.requests} requests over {1 + len(OTHER_PROJECTS)} projects on {url.split(':', 1)[0]} "
        f"(seeded in {seeded:.1f} s); {args.repeat} fetches each through the hub's proxy"
    )
    for label, values in figures.items():
        ordered = sorted(values)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(f"  {label:<40} median {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
