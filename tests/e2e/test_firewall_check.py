"""The spawn-time firewall check with the real iptables and a real project network (issue 17,
item 5): installed once, then only read; a rule deleted from the bridge's chains, or route_localnet
switched off, is put back exactly as it was. Only this test's own bridge is touched (its name is
enclave-test-fwcheck-*), never the shared top chain, so workspaces of other tests stay isolated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_config import destruction, firewall, network
from tests.e2e.conftest import sh

pytestmark = pytest.mark.slow

PROJECT = "e2e-fwcheck"
PREFIX = "enclave-test-fwcheck-"
PORTS = [8081, 8101]


@pytest.fixture
def net() -> Iterator[network.ProjectNetwork]:
    client = destruction.docker_client()
    if client is None:
        pytest.skip("Docker is not running")
    made = network.ensure_network(client, PROJECT, PREFIX)
    firewall.forget()
    try:
        yield made
    finally:
        network.remove_network(client, PROJECT, PREFIX)
        firewall.remove(made.bridge)
        firewall.forget()


def rules(bridge: str) -> dict[str, str]:
    chain = firewall.chain_name(bridge)
    return {table: sh("iptables", "-t", table, "-S", chain).stdout for table in firewall.ENTRY_CHAINS}


def test_the_firewall_is_checked_and_repaired_with_real_iptables(net: network.ProjectNetwork) -> None:
    assert firewall.ensure(net.bridge, net.gateway, PORTS) == "installed"
    expected = rules(net.bridge)
    assert expected["filter"].rstrip().endswith("-j REJECT --reject-with icmp-port-unreachable")
    assert firewall.ensure(net.bridge, net.gateway, PORTS) == "ok"
    again = network.ensure_network(destruction.docker_client(), PROJECT, PREFIX)
    assert again == net  # found and checked, not made again

    chain = firewall.chain_name(net.bridge)
    sysctl = Path("/proc/sys/net/ipv4/conf") / net.bridge / "route_localnet"
    for tamper in (
        ["iptables", "-D", chain, str(len(expected["filter"].splitlines()) - 1)],  # the final reject
        ["iptables", "-I", chain, "1", "-j", "ACCEPT"],
        ["iptables", "-t", "nat", "-F", chain],
        ["iptables", "-D", firewall.TOP_CHAIN, "-i", net.bridge, "-j", chain],
    ):
        sh(*tamper)
        assert firewall.ensure(net.bridge, net.gateway, PORTS) == "repaired", tamper
        assert rules(net.bridge) == expected, tamper
    sysctl.write_text("0")
    assert firewall.ensure(net.bridge, net.gateway, PORTS) == "repaired"
    assert sysctl.read_text().strip() == "1"
