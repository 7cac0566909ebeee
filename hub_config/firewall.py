"""Host firewall for project networks: a workspace reaches only the allowed host ports.

Docker's ``internal`` networks block forwarding out, but the host itself stays reachable on the
bridge's gateway address, on every port it listens on. These rules (iptables, filter table) let a
project bridge reach only the hub API and the services' ports on its gateway address, plus replies
to connections the host opened (the proxy talking to the notebook server); everything else,
DNS included, is refused at once (TCP reset, ICMP unreachable), so a test sees "refused".

```
INPUT -> ENCLAVE-WORKSPACES -> -i encl-xxxx -j ENCL-xxxx
ENCL-xxxx: ESTABLISHED,RELATED accept; tcp to <gateway>:<port> accept (each allowed port); reject
```
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

TOP_CHAIN = "ENCLAVE-WORKSPACES"


class FirewallError(RuntimeError):
    pass


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("iptables")
    if binary is None:
        raise FirewallError("iptables is not installed: workspaces cannot be isolated from the host")
    done = subprocess.run([binary, "-w", "5", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise FirewallError(f"iptables {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def chain_name(bridge: str) -> str:
    return "ENCL-" + bridge.removeprefix("encl-")


def rules_for(gateway: str, ports: Iterable[int]) -> list[list[str]]:
    """The rules of one bridge's chain, in order."""
    rules = [["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]]
    rules += [
        ["-p", "tcp", "-d", gateway, "--dport", str(port), "-j", "ACCEPT"] for port in sorted(set(ports))
    ]
    rules += [
        ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]
    return rules


def _ensure_chain(name: str) -> None:
    if _iptables("-n", "-L", name, check=False).returncode != 0:
        _iptables("-N", name)


def _ensure_jump(chain: str, rule: list[str], first: bool = False) -> None:
    if _iptables("-C", chain, *rule, check=False).returncode != 0:
        _iptables("-I" if first else "-A", chain, *([] if not first else ["1"]), *rule)


def apply(bridge: str, gateway: str, ports: Iterable[int]) -> None:
    """Install (or replace) the rules for one project bridge. Idempotent."""
    if not bridge or not gateway:
        raise FirewallError("a project network needs a named bridge and a gateway address")
    _ensure_chain(TOP_CHAIN)
    _ensure_jump("INPUT", ["-j", TOP_CHAIN], first=True)
    chain = chain_name(bridge)
    _ensure_chain(chain)
    _iptables("-F", chain)
    for rule in rules_for(gateway, ports):
        _iptables("-A", chain, *rule)
    _ensure_jump(TOP_CHAIN, ["-i", bridge, "-j", chain])


def remove(bridge: str) -> None:
    """Remove one bridge's rules (after its network is removed)."""
    chain = chain_name(bridge)
    while _iptables("-D", TOP_CHAIN, "-i", bridge, "-j", chain, check=False).returncode == 0:
        pass
    _iptables("-F", chain, check=False)
    _iptables("-X", chain, check=False)
