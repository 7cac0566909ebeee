"""Host firewall for project networks: a workspace reaches only the allowed host ports.

The hub API and the enclave services listen on loopback only (``SERVICE_ADDRESS``), never on
``0.0.0.0``: nothing on the host's other addresses (its LAN address, ``docker0``, a project bridge)
answers on their ports. A workspace still reaches them on its network's gateway address: for each
project bridge, the rules below forward (DNAT) ``<gateway>:<port>`` of each allowed port to
``127.0.0.1:<port>``, which the kernel accepts from that bridge only because ``route_localnet`` is
switched on for that one interface. Everything else from the bridge, DNS and packets addressed to
127.0.0.0/8 by a workspace itself included, is refused at once (TCP reset, ICMP unreachable), so a
test sees "refused". The rules are installed when a project network is set up (by the spawner), so a
network created after the hub started works the same way.

```
nat    PREROUTING -> ENCLAVE-WORKSPACES -> -i encl-xxxx -j ENCL-xxxx
       ENCL-xxxx: tcp to <gateway>:<port> DNAT to 127.0.0.1:<port> (each allowed port)
filter INPUT -> ENCLAVE-WORKSPACES -> -i encl-xxxx -j ENCL-xxxx
       ENCL-xxxx: ESTABLISHED,RELATED accept; tcp to 127.0.0.1:<port> forwarded from <gateway>:<port>
       accept (each allowed port); reject
```
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

TOP_CHAIN = "ENCLAVE-WORKSPACES"
# Where the hub API and the services listen: loopback only (hub_config/jupyterhub_config.py).
SERVICE_ADDRESS = "127.0.0.1"
_BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_SYSCTL = Path("/proc/sys/net/ipv4/conf")


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
    """The rules of one bridge's filter chain, in order: only connections forwarded by
    ``nat_rules_for`` from the gateway's allowed ports reach the host."""
    rules = [["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]]
    rules += [
        [
            "-p", "tcp", "-d", SERVICE_ADDRESS, "--dport", str(port),
            "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", gateway, "--ctorigdstport", str(port),
            "-j", "ACCEPT",
        ]
        for port in sorted(set(ports))
    ]  # fmt: skip
    rules += [
        ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]
    return rules


def nat_rules_for(gateway: str, ports: Iterable[int]) -> list[list[str]]:
    """The rules of one bridge's nat chain: each allowed port of the gateway goes to loopback."""
    return [
        ["-p", "tcp", "-d", gateway, "--dport", str(port), "-j", "DNAT",
         "--to-destination", f"{SERVICE_ADDRESS}:{port}"]
        for port in sorted(set(ports))
    ]  # fmt: skip


def _ensure_chain(name: str, table: str = "filter") -> None:
    if _iptables("-t", table, "-n", "-L", name, check=False).returncode != 0:
        _iptables("-t", table, "-N", name)


def _ensure_jump(chain: str, rule: list[str], first: bool = False, table: str = "filter") -> None:
    if _iptables("-t", table, "-C", chain, *rule, check=False).returncode != 0:
        _iptables("-t", table, "-I" if first else "-A", chain, *([] if not first else ["1"]), *rule)


def _install(table: str, entry: str, bridge: str, rules: list[list[str]]) -> None:
    _ensure_chain(TOP_CHAIN, table)
    _ensure_jump(entry, ["-j", TOP_CHAIN], first=True, table=table)
    chain = chain_name(bridge)
    _ensure_chain(chain, table)
    _iptables("-t", table, "-F", chain)
    for rule in rules:
        _iptables("-t", table, "-A", chain, *rule)
    _ensure_jump(TOP_CHAIN, ["-i", bridge, "-j", chain], table=table)


def _route_localnet(bridge: str, on: bool) -> None:
    """Let the kernel accept packets for 127.0.0.1 arriving on this bridge (the DNAT's target)."""
    setting = _SYSCTL / bridge / "route_localnet"
    if not on and not setting.exists():
        return  # the bridge is gone, and its setting with it
    try:
        setting.write_text("1" if on else "0")
    except OSError as error:
        raise FirewallError(f"cannot set {setting}: {error}") from None


def apply(bridge: str, gateway: str, ports: Iterable[int]) -> None:
    """Install (or replace) the rules for one project bridge. Idempotent.

    The filter chain comes first, so the bridge never reaches loopback without it."""
    if not bridge or not gateway:
        raise FirewallError("a project network needs a named bridge and a gateway address")
    if not _BRIDGE.fullmatch(bridge):
        raise FirewallError(f"{bridge!r} is not a network interface name")
    ports = sorted(set(ports))
    _install("filter", "INPUT", bridge, rules_for(gateway, ports))
    _install("nat", "PREROUTING", bridge, nat_rules_for(gateway, ports))
    _route_localnet(bridge, True)


def remove(bridge: str) -> None:
    """Remove one bridge's rules (after its network is removed)."""
    if _BRIDGE.fullmatch(bridge):
        _route_localnet(bridge, False)
    chain = chain_name(bridge)
    for table in ("nat", "filter"):
        while _iptables("-t", table, "-D", TOP_CHAIN, "-i", bridge, "-j", chain, check=False).returncode == 0:
            pass
        _iptables("-t", table, "-F", chain, check=False)
        _iptables("-t", table, "-X", chain, check=False)
