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

``ensure`` is what a spawn runs: it reads the tables once (``iptables-save``) and compares the
bridge's chains, the jumps to them and ``route_localnet`` with what it installed before; only when
they differ (first use in this process, a changed port list, a deleted or edited rule) does it
install them again, in one ``iptables-restore`` transaction (no moment without the chain's final
REJECT), then reads them back and checks them. Anything still wrong raises ``FirewallError``: the
workspace does not start.

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
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TOP_CHAIN = "ENCLAVE-WORKSPACES"
# Where the hub API and the services listen: loopback only (hub_config/jupyterhub_config.py).
SERVICE_ADDRESS = "127.0.0.1"
_BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_SYSCTL = Path("/proc/sys/net/ipv4/conf")
ENTRY_CHAINS = {"filter": "INPUT", "nat": "PREROUTING"}  # filter first: never DNAT without it


class FirewallError(RuntimeError):
    pass


def _run(
    program: str, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(program)
    if binary is None:
        raise FirewallError(f"{program} is not installed: workspaces cannot be isolated from the host")
    done = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise FirewallError(f"{program} {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("iptables", "-w", "5", *args, check=check)


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


def _check_target(bridge: str, gateway: str) -> None:
    if not bridge or not gateway:
        raise FirewallError("a project network needs a named bridge and a gateway address")
    if not _BRIDGE.fullmatch(bridge):
        raise FirewallError(f"{bridge!r} is not a network interface name")


def apply(bridge: str, gateway: str, ports: Iterable[int]) -> None:
    """Install (or replace) the rules for one project bridge, one iptables call per rule.
    Idempotent. ``ensure`` is the spawn path; this stays for tools and tests.

    The filter chain comes first, so the bridge never reaches loopback without it."""
    _check_target(bridge, gateway)
    ports = sorted(set(ports))
    _install("filter", "INPUT", bridge, rules_for(gateway, ports))
    _install("nat", "PREROUTING", bridge, nat_rules_for(gateway, ports))
    _route_localnet(bridge, True)


# ---- check on every spawn, install only what is missing or wrong ------------------------------------

Tables = dict[str, dict[str, list[str]]]  # table -> chain -> its rules as iptables-save prints them


def read_tables() -> Tables:
    """The filter and nat tables, in one ``iptables-save`` call."""
    tables: Tables = {}
    table: dict[str, list[str]] | None = None
    for line in _run("iptables-save").stdout.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:].strip(), {})
        elif table is not None and line.startswith(":"):
            table.setdefault(line[1:].split()[0], [])
        elif table is not None and line.startswith("-A "):
            table.setdefault(line.split()[1], []).append(line)
    return tables


def _jump(bridge: str) -> str:
    return f"-A {TOP_CHAIN} -i {bridge} -j {chain_name(bridge)}"


def _is_bridge_jump(line: str) -> bool:
    """A rule of the top chain as ``_install`` writes it: one bridge to its own chain."""
    words = line.split()
    return (
        len(words) == 6
        and words[:2] == ["-A", TOP_CHAIN]
        and words[2] == "-i"
        and words[4] == "-j"
        and _BRIDGE.fullmatch(words[3]) is not None
        and words[5] == chain_name(words[3])
    )


def _normal(words: Iterable[str]) -> set[str]:
    """Words of a rule as iptables prints them back: host masks and match order aside."""
    normal = set()
    for word in words:
        word = word.removesuffix("/32")
        normal.add(",".join(sorted(word.split(","))) if "," in word else word)
    return normal


def _printed_as(rules: list[list[str]], printed: list[str]) -> bool:
    """Whether ``printed`` (iptables-save lines) are ``rules`` in the same order."""
    return len(rules) == len(printed) and all(
        _normal(rule) <= _normal(line.split()[2:]) for rule, line in zip(rules, printed, strict=True)
    )


def problems(tables: Tables, bridge: str, expected: dict[str, list[str]]) -> list[str]:
    """What differs from one bridge's expected rules (``expected``: table -> rules as printed)."""
    found = []
    for table, entry in ENTRY_CHAINS.items():
        chains = tables.get(table, {})
        if chains.get(entry, [])[:1] != [f"-A {entry} -j {TOP_CHAIN}"]:
            found.append(f"{table} {entry} does not start with the jump to {TOP_CHAIN}")
        top = chains.get(TOP_CHAIN)
        if top is None:
            found.append(f"{table} {TOP_CHAIN} is missing")
            continue
        if any(not _is_bridge_jump(line) for line in top):
            found.append(f"{table} {TOP_CHAIN} holds a rule that is not a bridge's jump")
        if [line for line in top if f" -i {bridge} " in f"{line} "] != [_jump(bridge)]:
            found.append(f"{table} {TOP_CHAIN} does not send {bridge} to {chain_name(bridge)} once")
        if chains.get(chain_name(bridge)) != expected.get(table):
            found.append(f"{table} {chain_name(bridge)} is not the expected rule list")
    setting = _SYSCTL / bridge / "route_localnet"
    try:
        on = setting.read_text().strip() == "1"
    except OSError:
        on = False
    if not on:
        found.append(f"{setting} is not 1")
    return found


def _restore_script(tables: Tables, bridge: str, wanted: dict[str, list[list[str]]]) -> str:
    """One ``iptables-restore --noflush`` transaction per table that makes the bridge's rules right:
    its chain declared (created, or emptied in the same transaction) and filled, the top chain and
    the entry jump repaired, foreign rules in the top chain removed; other bridges' jumps kept."""
    chain = chain_name(bridge)
    lines = []
    for table, entry in ENTRY_CHAINS.items():
        chains = tables.get(table, {})
        lines.append(f"*{table}")
        if TOP_CHAIN not in chains:
            lines.append(f":{TOP_CHAIN} - [0:0]")
        lines.append(f":{chain} - [0:0]")
        lines += [f"-A {chain} {' '.join(rule)}" for rule in wanted[table]]
        for line in chains.get(TOP_CHAIN, []):
            if not _is_bridge_jump(line) or f" -i {bridge} " in f"{line} ":
                lines.append("-D" + line[2:])
        lines.append(_jump(bridge))
        entry_rules = chains.get(entry, [])
        if entry_rules[:1] != [f"-A {entry} -j {TOP_CHAIN}"]:
            lines += [f"-D {entry} -j {TOP_CHAIN}"] * entry_rules.count(f"-A {entry} -j {TOP_CHAIN}")
            lines.append(f"-I {entry} 1 -j {TOP_CHAIN}")
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Installed:
    gateway: str
    ports: tuple[int, ...]
    rules: dict[str, list[str]]  # table -> the bridge chain's rules as iptables-save printed them


_installed: dict[str, _Installed] = {}  # bridge -> what this process installed and read back
_lock = threading.Lock()


def forget() -> None:
    """Drop what this process knows it installed: the next ``ensure`` installs again (tests)."""
    with _lock:
        _installed.clear()


def ensure(bridge: str, gateway: str, ports: Iterable[int]) -> str:
    """Make sure one project bridge's rules are in place and exactly right; returns "ok" (nothing
    to do: one ``iptables-save``), "installed" (first use in this process, or new ports), or
    "repaired" (they had been changed or removed). Raises ``FirewallError`` if they cannot be made
    right, so the caller refuses to start the workspace."""
    _check_target(bridge, gateway)
    key = tuple(sorted(set(ports)))
    wanted = {"filter": rules_for(gateway, key), "nat": nat_rules_for(gateway, key)}
    with _lock:
        known = _installed.get(bridge)
        tables = read_tables()
        if known is not None and (known.gateway, known.ports) == (gateway, key):
            if not problems(tables, bridge, known.rules):
                return "ok"
            outcome = "repaired"
        else:
            outcome = "installed"
        _installed.pop(bridge, None)
        _run("iptables-restore", "-w", "5", "--noflush", stdin=_restore_script(tables, bridge, wanted))
        _route_localnet(bridge, True)
        tables = read_tables()
        printed = {table: tables.get(table, {}).get(chain_name(bridge), []) for table in wanted}
        for table, rules in wanted.items():  # what iptables printed back must be what was written
            if not _printed_as(rules, printed[table]):
                raise FirewallError(f"{table} {chain_name(bridge)} does not hold the rules just written")
        left = problems(tables, bridge, printed)
        if left:
            raise FirewallError(f"the firewall of {bridge} could not be set up: {'; '.join(left)}")
        _installed[bridge] = _Installed(gateway, key, printed)
        return outcome


def remove(bridge: str) -> None:
    """Remove one bridge's rules (after its network is removed)."""
    with _lock:
        _installed.pop(bridge, None)
    if _BRIDGE.fullmatch(bridge):
        _route_localnet(bridge, False)
    chain = chain_name(bridge)
    for table in ("nat", "filter"):
        while _iptables("-t", table, "-D", TOP_CHAIN, "-i", bridge, "-j", chain, check=False).returncode == 0:
            pass
        _iptables("-t", table, "-F", chain, check=False)
        _iptables("-t", table, "-X", chain, check=False)
