"""Time ``check_login`` for a known name with a wrong password against an unknown name (issue #14).

    .venv/bin/python bench/login.py --attempts 40
    .venv/bin/python bench/login.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DBNAME

Both should cost one scrypt verification and the same queries, so the medians should match within
noise: a gap would tell an attacker which user names exist. Uses a fresh SQLite state database in a
temporary folder unless ``--database-url`` names an empty database to migrate (its schema is left
there). The two kinds of attempt alternate, so drift affects both alike. It prints figures and
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enclave import db, users
from enclave.config import Paths
from enclave.db.session import dispose_all

PASSWORD = "Correct-Horse-9-Battery"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attempts", type=int, default=40, help="attempts of each kind")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="enclave-login-bench-") as scratch:
        home = Paths(Path(scratch))
        url = args.database_url or f"sqlite:///{home.state_db}"
        db.migrate(url)
        sessions = db.connect(url)
        with db.session_scope(sessions) as session:
            users.add_user(session, "alice", PASSWORD, actor="bench")
        timings: dict[str, list[float]] = {"known name, wrong password": [], "unknown name": []}
        for i in range(args.attempts):
            for label, name in (("known name, wrong password", "alice"), ("unknown name", "mallory")):
                started = time.perf_counter()
                with db.session_scope(sessions) as session:
                    # a huge max_failures keeps the account from locking during the run
                    users.check_login(session, home, name, f"Wrong-Password-{i}", max_failures=10**9)
                timings[label].append(time.perf_counter() - started)
        dispose_all()

    print(f"{args.attempts} attempts of each kind on {url.split(':', 1)[0]}")
    for label, values in timings.items():
        print(
            f"  {label:<28} median {statistics.median(values) * 1000:8.2f} ms"
            f"   (min {min(values) * 1000:.2f}, max {max(values) * 1000:.2f})"
        )
    known, unknown = (statistics.median(v) for v in timings.values())
    print(f"  unknown / known median ratio {unknown / known:.3f}")


if __name__ == "__main__":
    main()
