"""The pure pieces of the workspace lock-down: environment allowlist, container settings, firewall
rules and hub roles (issue 7)."""

from __future__ import annotations

import pytest

from hub_config import firewall, lockdown, roles


def test_filter_env_keeps_only_the_allowlist() -> None:
    env = {
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/a/p/",
        "JPY_API_TOKEN": "t",
        "ENCLAVE_PROJECT": "p",
        "ENCLAVE_GATEWAY_URL": "http://10.0.0.1:8101/",
        "MEM_LIMIT": "1",
        "ENCLAVE_HOME": "/srv/enclave",  # the vault's path: never
        "ENCLAVE_DATABASE_URL": "postgresql://enclave:secret@db/enclave",  # a credential: never
        "AWS_SECRET_ACCESS_KEY": "x",
        "PATH": "/usr/bin",
        "LD_PRELOAD": "/tmp/evil.so",
        "jupyterhub_api_token": "lower case is another name",
        "XJUPYTERHUB_": "prefix must be at the start",
    }
    kept = lockdown.filter_env(env)
    assert set(kept) == {
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_SERVICE_PREFIX",
        "JPY_API_TOKEN",
        "ENCLAVE_PROJECT",
        "ENCLAVE_GATEWAY_URL",
        "MEM_LIMIT",
    }
    assert all(kept[name] == env[name] for name in kept)
    assert lockdown.filter_env({}) == {}


def test_host_config_locks_the_container_down() -> None:
    config = lockdown.host_config(
        lockdown.Limits(pids=64, scratch="64m", memory=256 * 2**20), dns=["10.9.0.1"]
    )
    assert config["read_only"] is True and config["privileged"] is False
    assert config["cap_drop"] == ["ALL"] and "cap_add" not in config
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["pids_limit"] == 64
    assert config["memswap_limit"] == 256 * 2**20  # no swap beyond the memory limit
    tmp = config["tmpfs"]["/tmp"]
    assert {"noexec", "nosuid", "nodev", "size=64m"} <= set(tmp.split(","))
    assert config["dns"] == ["10.9.0.1"] and config["dns_search"] == []
    assert "devices" not in config and "network_mode" not in config
    assert "memswap_limit" not in lockdown.host_config(lockdown.Limits(), dns=[])


def test_create_kwargs_run_unprivileged_with_labels() -> None:
    kwargs = lockdown.create_kwargs("cardio-2026", "alice")
    assert kwargs["user"] == lockdown.WORKSPACE_USER and not str(kwargs["user"]).startswith("0")
    assert kwargs["labels"] == {
        "org.enclave.project": "cardio-2026",
        "org.enclave.user": "alice",
        "org.enclave.role": "workspace",
    }


def test_firewall_rules_allow_listed_ports_then_reject_everything() -> None:
    rules = firewall.rules_for("10.9.0.1", [8101, 8081, 8101])
    assert rules[0] == ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
    accepts = rules[1:-2]
    # only what the nat rules forwarded from the gateway's allowed ports to loopback (issue 13, item 2)
    assert accepts == [
        ["-p", "tcp", "-d", "127.0.0.1", "--dport", str(port), "-m", "conntrack", "--ctstate", "DNAT",
         "--ctorigdst", "10.9.0.1", "--ctorigdstport", str(port), "-j", "ACCEPT"]
        for port in (8081, 8101)
    ]  # fmt: skip
    assert firewall.nat_rules_for("10.9.0.1", [8101, 8081, 8101]) == [
        ["-p", "tcp", "-d", "10.9.0.1", "--dport", str(port), "-j", "DNAT",
         "--to-destination", f"127.0.0.1:{port}"]
        for port in (8081, 8101)
    ]  # fmt: skip
    assert rules[-2][-3:] == ["REJECT", "--reject-with", "tcp-reset"]
    assert rules[-1] == ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]  # UDP/DNS too
    # no port: only replies, then reject
    assert len(firewall.rules_for("10.9.0.1", [])) == 3


def test_firewall_chain_names_fit_iptables() -> None:
    from hub_config import network

    bridge = network.bridge_name(network.network_name("a-very-long-project-id-2026"))
    assert len(bridge) <= 15  # Linux interface names
    chain = firewall.chain_name(bridge)
    assert chain.startswith("ENCL-") and len(chain) <= 28  # iptables chain names


def test_firewall_apply_refuses_an_unnamed_bridge() -> None:
    with pytest.raises(firewall.FirewallError):
        firewall.apply("", "10.0.0.1", [1])
    with pytest.raises(firewall.FirewallError, match="interface name"):  # it names a /proc/sys path
        firewall.apply("../../all", "10.0.0.1", [1])


def test_analysts_cannot_make_tokens_or_share() -> None:
    by_name = {r["name"]: r for r in roles.load_roles(["gateway"], culler=True)}
    analyst = by_name["user"]["scopes"]
    assert not any(s.split("!")[0] in {"tokens", "read:tokens", "shares", "admin:users"} for s in analyst)
    # only their own servers, and no service but the export-review UI, the steward console and the runs pages
    services = {
        "access:services!service=export-review",
        "access:services!service=console",
        "access:services!service=runs",
    }
    assert all(s.endswith("!user") or s in services for s in analyst)
    gateway = by_name["enclave-gateway"]
    assert gateway["services"] == ["gateway"] and set(gateway["scopes"]) == {"read:servers", "delete:servers"}


def test_stewards_never_enter_workspaces() -> None:
    by_name = {r["name"]: r for r in roles.load_roles(["gateway"], culler=True)}
    steward = by_name["enclave-steward"]
    assert steward["groups"] == [roles.STEWARDS_GROUP]
    assert not any(s.startswith(("access:servers", "admin:", "servers", "tokens")) for s in steward["scopes"])
    assert "delete:servers" in steward["scopes"]


def test_service_and_culler_roles_follow_the_arguments() -> None:
    with_all = {r["name"]: r for r in roles.load_roles(["gateway", "export-review"], culler=True)}
    assert with_all["enclave-service"]["services"] == ["gateway", "export-review"]
    assert "access:servers" not in " ".join(with_all["enclave-service"]["scopes"])
    assert with_all["enclave-idle-culler"]["services"] == [roles.IDLE_CULLER]
    bare = {r["name"] for r in roles.load_roles([], culler=False)}
    assert bare == {"user", "enclave-steward"}


def test_a_workspace_token_reaches_the_export_review_and_nothing_broader() -> None:
    """JupyterLab's "Request export" submits with the server's own token: it must carry the export
    review's access scope, stay bound to its one server, and never carry a broad one (issue 16)."""
    from hub_config.spawner import EnclaveSpawner

    scopes = EnclaveSpawner().server_token_scopes  # EnclaveKubeSpawner: tests/hub_config/test_kubespawner.py
    assert "access:services!service=export-review" in scopes
    assert "access:servers!server" in scopes  # the gateway's project binding
    assert not {"access:services", "access:servers", "access:servers!user", "tokens"} & set(scopes)
    assert set(scopes) <= set(roles.ANALYST_SCOPES) | {"access:servers!server", "users:activity!user"}
