"""Check-versus-install of a project bridge's firewall (issue 17, item 5): a spawn reads the tables
once and changes nothing when they are right; a missing or tampered chain is repaired in one
transaction, and what cannot be made right refuses the spawn. A fake iptables (``FakeTables``)
prints rules back the way iptables-save does (host masks, sorted state lists), so the check does
not rely on the rules reading back as they were written. Real iptables: tests/e2e/test_firewall_check.py.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dockerspawner import DockerSpawner
from jupyterhub import orm

from hub_config import firewall, network
from hub_config.spawner import EnclaveSpawner

BRIDGE = "encl-0123456789"
OTHER = "encl-abcdefabcd"
GATEWAY = "10.9.0.1"
PORTS = [8081, 8101]


def printed(words: list[str]) -> str:
    """A rule as iptables-save prints it back."""
    out = []
    for word in words:
        if word in {GATEWAY, "127.0.0.1"}:
            word += "/32"
        elif word == "ESTABLISHED,RELATED":
            word = "RELATED,ESTABLISHED"
        out.append(word)
    return " ".join(out)


class FakeTables:
    """Just enough iptables-save / iptables-restore --noflush for the firewall module."""

    def __init__(self, sysctl: Path) -> None:
        self.tables: dict[str, dict[str, list[str]]] = {
            "filter": {"INPUT": [], "FORWARD": []},
            "nat": {"PREROUTING": ["-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"], "DOCKER": []},
        }
        self.calls: list[str] = []
        self.restore_works = True
        self.sysctl = sysctl

    def save(self) -> str:
        lines = []
        for table, chains in self.tables.items():
            lines.append(f"*{table}")
            lines += [f":{chain} ACCEPT [0:0]" for chain in chains]
            lines += [rule for rules in chains.values() for rule in rules]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def restore(self, script: str) -> None:
        if not self.restore_works:
            return
        table: dict[str, list[str]] = {}
        for line in script.splitlines():
            words = line.split()
            if line.startswith("*"):
                table = self.tables[line[1:]]
            elif line.startswith(":"):
                table[words[0][1:]] = []
            elif words[:1] == ["-A"]:
                table[words[1]].append(f"-A {words[1]} {printed(words[2:])}")
            elif words[:1] == ["-D"]:
                table[words[1]].remove(f"-A {words[1]} {' '.join(words[2:])}")
            elif words[:1] == ["-I"]:
                table[words[1]].insert(int(words[2]) - 1, f"-A {words[1]} {' '.join(words[3:])}")

    def run(self, program: str, *args: str, check: bool = True, stdin: str | None = None) -> Any:
        self.calls.append(program)
        if program == "iptables-save":
            return subprocess.CompletedProcess([program], 0, self.save(), "")
        assert program == "iptables-restore" and "--noflush" in args and stdin
        self.restore(stdin)
        return subprocess.CompletedProcess([program], 0, "", "")

    def chain(self, table: str, bridge: str = BRIDGE) -> list[str]:
        return self.tables[table][firewall.chain_name(bridge)]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTables:
    for bridge in (BRIDGE, OTHER):
        (tmp_path / bridge).mkdir()
        (tmp_path / bridge / "route_localnet").write_text("0")
    tables = FakeTables(tmp_path)
    monkeypatch.setattr(firewall, "_SYSCTL", tmp_path)
    monkeypatch.setattr(firewall, "_run", tables.run)
    firewall.forget()
    yield tables
    firewall.forget()


def installed(fake: FakeTables) -> dict[str, list[str]]:
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "installed"
    fake.calls.clear()
    return {table: list(fake.chain(table)) for table in firewall.ENTRY_CHAINS}


def test_first_use_installs_in_one_transaction_then_a_check_is_one_read(fake: FakeTables) -> None:
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "installed"
    assert fake.calls == ["iptables-save", "iptables-restore", "iptables-save"]
    assert fake.tables["filter"]["INPUT"][0] == "-A INPUT -j ENCLAVE-WORKSPACES"
    assert fake.tables["nat"]["PREROUTING"][0] == "-A PREROUTING -j ENCLAVE-WORKSPACES"
    assert (
        fake.chain("filter")[-1]
        == f"-A {firewall.chain_name(BRIDGE)} -j REJECT --reject-with icmp-port-unreachable"
    )
    assert len(fake.chain("nat")) == len(PORTS)
    assert (fake.sysctl / BRIDGE / "route_localnet").read_text() == "1"
    fake.calls.clear()
    assert firewall.ensure(BRIDGE, GATEWAY, [8101, 8081]) == "ok"
    assert fake.calls == ["iptables-save"]


def test_a_second_bridge_keeps_the_first_ones_jump(fake: FakeTables) -> None:
    before = installed(fake)
    assert firewall.ensure(OTHER, "10.9.1.1", PORTS) == "installed"
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "ok"
    assert {table: fake.chain(table) for table in before} == before
    top = fake.tables["filter"][firewall.TOP_CHAIN]
    assert sorted(top) == sorted(
        f"-A {firewall.TOP_CHAIN} -i {b} -j {firewall.chain_name(b)}" for b in (BRIDGE, OTHER)
    )


@pytest.mark.parametrize(
    "tamper",
    [
        "drop the final reject",
        "accept everything first",
        "empty the nat chain",
        "delete the chain",
        "drop the bridge's jump",
        "accept in the top chain",
        "a second jump for the bridge",
        "entry jump not first",
        "entry jump gone",
        "route_localnet off",
    ],
)
def test_a_tampered_firewall_is_repaired_before_the_start(fake: FakeTables, tamper: str) -> None:
    before = installed(fake)
    chain, top = firewall.chain_name(BRIDGE), firewall.TOP_CHAIN
    filt = fake.tables["filter"]
    if tamper == "drop the final reject":
        filt[chain].pop()
    elif tamper == "accept everything first":
        filt[chain].insert(0, f"-A {chain} -j ACCEPT")
    elif tamper == "empty the nat chain":
        fake.tables["nat"][chain].clear()
    elif tamper == "delete the chain":
        del filt[chain]
        filt[top].remove(f"-A {top} -i {BRIDGE} -j {chain}")
    elif tamper == "drop the bridge's jump":
        filt[top].clear()
    elif tamper == "accept in the top chain":
        filt[top].insert(0, f"-A {top} -j ACCEPT")
    elif tamper == "a second jump for the bridge":
        filt[top].insert(0, f"-A {top} -i {BRIDGE} -j ACCEPT")
    elif tamper == "entry jump not first":
        filt["INPUT"].insert(0, "-A INPUT -i lo -j ACCEPT")
    elif tamper == "entry jump gone":
        filt["INPUT"].clear()
    elif tamper == "route_localnet off":
        (fake.sysctl / BRIDGE / "route_localnet").write_text("0")
    assert firewall.problems(fake.tables, BRIDGE, before)
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "repaired"
    assert {table: fake.chain(table) for table in before} == before
    assert not firewall.problems(fake.tables, BRIDGE, before)
    assert filt[top] == [f"-A {top} -i {BRIDGE} -j {chain}"]
    assert filt["INPUT"][0] == "-A INPUT -j ENCLAVE-WORKSPACES"
    assert filt["INPUT"].count("-A INPUT -j ENCLAVE-WORKSPACES") == 1
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "ok"


def test_new_ports_replace_the_rules(fake: FakeTables) -> None:
    installed(fake)
    assert firewall.ensure(BRIDGE, GATEWAY, [8081]) == "installed"
    assert len(fake.chain("nat")) == 1 and len(fake.chain("filter")) == 4


def test_rules_set_up_by_another_process_are_installed_again_not_trusted(fake: FakeTables) -> None:
    installed(fake)
    firewall.forget()  # a restarted hub: it has not read these rules back itself
    assert firewall.ensure(BRIDGE, GATEWAY, PORTS) == "installed"
    assert fake.calls[1] == "iptables-restore"


def test_what_cannot_be_made_right_raises(fake: FakeTables) -> None:
    fake.restore_works = False
    with pytest.raises(firewall.FirewallError):
        firewall.ensure(BRIDGE, GATEWAY, PORTS)
    fake.restore_works = True
    installed(fake)
    fake.chain("filter").pop()
    fake.restore_works = False
    with pytest.raises(firewall.FirewallError):
        firewall.ensure(BRIDGE, GATEWAY, PORTS)
    with pytest.raises(firewall.FirewallError):  # and it stays refused: nothing was remembered
        firewall.ensure(BRIDGE, GATEWAY, PORTS)


def test_ensure_refuses_an_unnamed_bridge(fake: FakeTables) -> None:
    with pytest.raises(firewall.FirewallError, match="interface name"):
        firewall.ensure("../../all", GATEWAY, PORTS)
    assert fake.calls == []


# ---- the network check ----------------------------------------------------------------------------


def listed(project: str = "p-1", **changes: Any) -> dict[str, Any]:
    name = network.network_name(project)
    info = {
        "Name": name,
        "Id": "abc",
        "Driver": "bridge",
        "Internal": True,
        "Labels": {network.LABEL_PROJECT: project},
        "Options": network.network_options(name),
        "IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]},
    }
    return {**info, **changes}


def test_a_network_that_is_not_the_projects_is_refused() -> None:
    assert network.check_network(listed(), "p-1") == ""
    assert network.check_network(listed(Internal=False), "p-1") == "not internal"
    assert network.check_network(listed(), "p-2") == "not labelled with the project"
    icc = {
        **network.network_options(network.network_name("p-1")),
        "com.docker.network.bridge.enable_icc": "true",
    }
    assert network.check_network(listed(Options=icc), "p-1") == "bridge options differ"
    assert network.check_network(listed(IPAM={"Config": []}), "p-1") == "no subnet or gateway"
    client = SimpleNamespace(networks=lambda names: [listed(Internal=False)])
    with pytest.raises(RuntimeError, match="not internal"):
        network.ensure_network(client, "p-1")
    assert network.find_network(SimpleNamespace(networks=lambda names: []), "p-1") is None
    found = network.ensure_network(SimpleNamespace(networks=lambda names: [listed()]), "p-1")
    assert (found.gateway, found.bridge) == ("10.9.0.1", network.bridge_name(network.network_name("p-1")))


# ---- the spawner: no container without the firewall ------------------------------------------------


def test_the_spawn_is_refused_when_the_firewall_cannot_be_set_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[str] = []

    async def runtime_start(self: DockerSpawner) -> None:
        started.append("container")

    def broken(*args: Any) -> str:
        raise firewall.FirewallError("iptables-restore failed")

    net = network.ProjectNetwork("enclave-project-p-1", "abc", BRIDGE, GATEWAY, "10.9.0.0/24")
    monkeypatch.setattr(DockerSpawner, "start", runtime_start)
    monkeypatch.setattr(EnclaveSpawner, "check_access", lambda self: "aggregate")
    monkeypatch.setattr(EnclaveSpawner, "ensure_home_volume", lambda self, plan: None)
    monkeypatch.setattr(network, "ensure_network", lambda *args: net)
    monkeypatch.setattr(firewall, "ensure", broken)
    audited: list[dict[str, Any]] = []

    async def publish_data(self: EnclaveSpawner, access: str) -> Any:
        root = tmp_path / "published"
        return SimpleNamespace(root=root, twin_db=root / "twin.duckdb", rows_db=None)

    async def audit_quietly(self: EnclaveSpawner, action: Any, **kwargs: Any) -> None:
        audited.append(kwargs)

    monkeypatch.setattr(EnclaveSpawner, "publish_data", publish_data)
    monkeypatch.setattr(EnclaveSpawner, "audit_quietly", audit_quietly)
    monkeypatch.setattr(EnclaveSpawner, "container_details", lambda self: asyncio.sleep(0, {}))
    user = SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/")
    spawner = EnclaveSpawner(user=user, orm_spawner=orm.Spawner(name="p-1"), enclave_home=str(tmp_path))
    with pytest.raises(firewall.FirewallError):
        asyncio.run(spawner.start())
    assert started == []
    assert [a["outcome"] for a in audited] == ["failure"]
    assert audited[0]["details"]["error"] == "FirewallError"


def test_a_running_workspace_whose_isolation_breaks_is_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def running(self: DockerSpawner) -> None:
        return None

    stopped: list[dict[str, str] | None] = []

    async def stop(self: EnclaveSpawner, now: bool = False) -> None:
        stopped.append(self._stop_cause)

    net = network.ProjectNetwork("enclave-project-p-1", "abc", BRIDGE, GATEWAY, "10.9.0.0/24")
    outcomes = iter(["ok", "repaired"])
    monkeypatch.setattr(DockerSpawner, "poll", running)
    monkeypatch.setattr(EnclaveSpawner, "check_access", lambda self: "aggregate")
    monkeypatch.setattr(EnclaveSpawner, "stop", stop)
    monkeypatch.setattr(network, "find_network", lambda *args: net)
    monkeypatch.setattr(firewall, "ensure", lambda *args: next(outcomes))

    def broken(*args: Any) -> str:
        raise firewall.FirewallError("iptables-restore failed")

    user = SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/")
    spawner = EnclaveSpawner(user=user, orm_spawner=orm.Spawner(name="p-1"), enclave_home=str(tmp_path))
    assert asyncio.run(spawner.poll()) is None  # checked: right
    assert asyncio.run(spawner.poll()) is None  # checked: repaired, keeps running
    assert stopped == []
    monkeypatch.setattr(firewall, "ensure", broken)

    def unreachable(*args: Any) -> network.ProjectNetwork:
        raise ConnectionError("docker.sock: timed out")  # a busy daemon is no broken firewall

    monkeypatch.setattr(network, "find_network", unreachable)
    assert asyncio.run(spawner.poll()) == 0  # the last known bridge's firewall is still checked
    assert stopped == [{"cause": "hub", "reason": "isolation_broken"}]
    stopped.clear()
    spawner._net = None  # never seen: nothing to check, nothing found wrong; the next poll checks
    assert asyncio.run(spawner.poll()) is None and stopped == []
    monkeypatch.setattr(network, "find_network", lambda *args: net)
    assert asyncio.run(spawner.poll()) == 0
    assert stopped == [{"cause": "hub", "reason": "isolation_broken"}]
    stopped.clear()
    monkeypatch.setattr(firewall, "ensure", lambda *args: "ok")
    monkeypatch.setattr(network, "find_network", lambda *args: None)  # destroyed with its project
    assert asyncio.run(spawner.poll()) == 0
    assert stopped == [{"cause": "hub", "reason": "isolation_broken"}]


def test_a_repair_at_spawn_is_in_the_spawn_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[str] = []

    async def runtime_start(self: DockerSpawner) -> None:
        started.append("container")

    async def publish_data(self: EnclaveSpawner, access: str) -> Any:
        root = tmp_path / "published"
        return SimpleNamespace(root=root, twin_db=root / "twin.duckdb", rows_db=None)

    audited: list[dict[str, Any]] = []
    net = network.ProjectNetwork("enclave-project-p-1", "abc", BRIDGE, GATEWAY, "10.9.0.0/24")
    monkeypatch.setattr(DockerSpawner, "start", runtime_start)
    monkeypatch.setattr(EnclaveSpawner, "check_access", lambda self: "aggregate")
    monkeypatch.setattr(EnclaveSpawner, "ensure_home_volume", lambda self, plan: None)
    monkeypatch.setattr(EnclaveSpawner, "publish_data", publish_data)
    monkeypatch.setattr(
        EnclaveSpawner, "container_details", lambda self: asyncio.sleep(0, {"container_id": "c"})
    )
    monkeypatch.setattr(EnclaveSpawner, "audit", lambda self, action, **kwargs: audited.append(kwargs))
    monkeypatch.setattr(network, "ensure_network", lambda *args: net)
    monkeypatch.setattr(firewall, "ensure", lambda *args: "repaired")
    user = SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/")
    spawner = EnclaveSpawner(user=user, orm_spawner=orm.Spawner(name="p-1"), enclave_home=str(tmp_path))
    asyncio.run(spawner.start())
    assert started == ["container"]
    assert audited[-1]["details"] == {"container_id": "c", "firewall": "repaired"}
    assert spawner.network_name == net.name and spawner.extra_host_config["dns"] == [GATEWAY]
