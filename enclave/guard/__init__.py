"""The query guard (ARCHITECTURE §3): allowlisted SQL, distinct-person minimum counts, DuckDB lockdown.

>>> verdict = check("SELECT sex, count(*) FROM patients GROUP BY sex", policy)   # doctest: +SKIP
>>> limits = QueryLimits(rows=10_000, memory="2GB", threads=2, timeout_s=30)
>>> result = run(open_locked(views_db, limits), "SELECT ...", policy, limits=limits)  # doctest: +SKIP
"""

from enclave.guard.check import Verdict, check
from enclave.guard.execute import QueryResult, run
from enclave.guard.limits import QueryLimits
from enclave.guard.lockdown import open_locked
from enclave.guard.policy import GuardPolicy, ViewPolicy, policy_from_specs

__all__ = [
    "GuardPolicy",
    "QueryLimits",
    "QueryResult",
    "Verdict",
    "ViewPolicy",
    "check",
    "open_locked",
    "policy_from_specs",
    "run",
]
