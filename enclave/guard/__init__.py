"""The query guard (ARCHITECTURE §3): allowlisted SQL, distinct-person minimum counts, DuckDB lockdown.

>>> verdict = check("SELECT sex, count(*) FROM patients GROUP BY sex", policy)   # doctest: +SKIP
>>> result = run(open_locked(views_db), "SELECT ...", policy)                     # doctest: +SKIP
"""

from enclave.guard.check import Verdict, check
from enclave.guard.execute import QueryResult, run
from enclave.guard.lockdown import open_locked
from enclave.guard.policy import GuardPolicy, ViewPolicy, policy_from_specs

__all__ = [
    "GuardPolicy",
    "QueryResult",
    "Verdict",
    "ViewPolicy",
    "check",
    "open_locked",
    "policy_from_specs",
    "run",
]
