"""Spawn latency: from the spawn request to a ready server, warm image, EnclaveSpawner vs plain
DockerSpawner (issue 7; issue 17 item 5). Needs root and Docker:

    .venv/bin/python bench/spawn.py [--runs N] [--only enclave|plain] [--firewall]

Both hubs load the enclave's hub config (as the e2e tests do) and run at the same time; their spawns
are interleaved, the order swapped every round. The plain hub swaps in DockerSpawner
with the same image on Docker's default bridge (its hub API on docker0's address, so the container
can reach it). Every object is named ``enclave-bench-*`` and only those are removed, so a test run
or a soak test on the same host is left alone. Prints the median and p95 of each, their ratio, and
the median of the EnclaveSpawner's own steps (from its "workspace prepared" log lines).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import make_home, print_load, summary  # noqa: E402
from tests.e2e.conftest import Hub, launch_hub  # noqa: E402
from tests.harness.docker_objects import remove_named, sh  # noqa: E402

PROJECT = "bench-spawn"
USER = "alice"
PREFIX = "enclave-bench-"

ENCLAVE_CONFIG = """
from pathlib import Path
load_subconfig(str(Path({repo!r}) / "tests" / "e2e" / "hub_test_config.py"))
c = get_config()
c.EnclaveSpawner.network_prefix = "enclave-bench-net-"
c.EnclaveSpawner.name_template = "enclave-bench-ws-{{servername}}-{{username}}"
c.EnclaveSpawner.home_volume_template = "enclave-bench-home-{{project}}-{{user}}"
"""

PLAIN_CONFIG = """
import os
from pathlib import Path
load_subconfig(str(Path({repo!r}) / "tests" / "e2e" / "hub_test_config.py"))
c = get_config()
from dockerspawner import DockerSpawner
c.JupyterHub.spawner_class = DockerSpawner
c.DockerSpawner.image = "enclave/analyst:latest"
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.name_template = "enclave-bench-plain-{{servername}}-{{username}}"
# a plain setup: the hub API on docker0's address (never 0.0.0.0), where the container reaches it
c.JupyterHub.hub_bind_url = "http://{docker0}:" + os.environ["ENCLAVE_HUB_API_PORT"]
c.DockerSpawner.hub_connect_url = "http://{docker0}:" + os.environ["ENCLAVE_HUB_API_PORT"]
"""
STEP_LINE = re.compile(r"workspace prepared in (\d+) ms: (.*)$")
HUB_SPAWN_LINE = re.compile(r"User \S+ took ([0-9.]+) seconds to start")  # JupyterHub's own figure


def docker0_address() -> str:
    for link in json.loads(sh("ip", "-j", "addr", "show", "docker0").stdout):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                return str(info["local"])
    raise SystemExit("docker0 has no IPv4 address")


def log_tail(log: Path) -> str:
    """The end of a hub log without the bench's own polling requests."""
    lines = [
        line for line in log.read_text(errors="replace").splitlines() if "enclave-test-admin@" not in line
    ]
    return "\n".join(lines[-60:])


def hub_spawn_times(log: Path, skip: int) -> list[float]:
    """The hub's own start durations (request to server answering), leaving out ``skip`` first."""
    found = [HUB_SPAWN_LINE.search(line) for line in log.read_text(errors="replace").splitlines()]
    return [float(m.group(1)) for m in found if m][skip:]


def step_medians(log: Path, skip: int) -> dict[str, float]:
    """Median duration (ms) of each step the spawner logs, leaving out the first ``skip`` spawns."""
    found = [STEP_LINE.search(line) for line in log.read_text(errors="replace").splitlines()]
    spawns = [m for m in found if m][skip:]
    steps: dict[str, list[float]] = {"total": [float(m.group(1)) for m in spawns]}
    for match in spawns:
        for part in match.group(2).split(", "):
            name, _, value = part.rpartition(" ")
            steps.setdefault(name, []).append(float(value))
    return {name: statistics.median(values) for name, values in steps.items() if values}


def time_spawns(hub: Hub, runs: int) -> list[float]:
    hub.ensure_user(USER)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        status, body = hub.call("POST", f"/users/{USER}/servers/{PROJECT}")
        assert status in (201, 202), (status, body)
        while not (hub.server(USER, PROJECT) or {}).get("ready"):
            if time.perf_counter() - started > 180:
                raise SystemExit(f"spawn did not finish:\n{log_tail(hub.log)}")
            time.sleep(0.05)
        times.append(time.perf_counter() - started)
        hub.stop(USER, PROJECT)
        while hub.server(USER, PROJECT) is not None:
            time.sleep(0.1)
    return times


def time_firewall(runs: int) -> None:
    """The firewall step alone, on a bench network: installing every rule with one iptables call
    each (``firewall.apply``, what every spawn did before) against the spawn-time check
    (``firewall.ensure``: one iptables-save when the rules are right)."""
    from hub_config import destruction, firewall, network

    client = destruction.docker_client()
    if client is None:
        raise SystemExit("Docker is not running")
    net = network.ensure_network(client, PROJECT, "enclave-bench-net-")
    ports = [8081, 8101, 8102]
    try:
        timings: dict[str, list[float]] = {"apply (per rule)": [], "ensure (check)": []}
        firewall.ensure(net.bridge, net.gateway, ports)
        for _ in range(runs):
            began = time.perf_counter()
            firewall.apply(net.bridge, net.gateway, ports)
            timings["apply (per rule)"].append((time.perf_counter() - began) * 1000)
            firewall.forget()
            firewall.ensure(net.bridge, net.gateway, ports)  # learn the rules as iptables prints them
            began = time.perf_counter()
            assert firewall.ensure(net.bridge, net.gateway, ports) == "ok"
            timings["ensure (check)"].append((time.perf_counter() - began) * 1000)
        for label, values in timings.items():
            print(f"firewall {label:17s} n={runs} median {statistics.median(values):.1f} ms")
    finally:
        network.remove_network(client, PROJECT, "enclave-bench-net-")
        firewall.remove(net.bridge)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs_positional", nargs="?", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=5, help="timed spawns per spawner (default 5)")
    parser.add_argument("--only", choices=("enclave", "plain"), help="time one spawner only")
    parser.add_argument(
        "--firewall", action="store_true", help="time only the firewall step (per-rule install vs check)"
    )
    args = parser.parse_args()
    runs = args.runs_positional or args.runs
    if os.geteuid() != 0:
        raise SystemExit("run as root: the spawner manages Docker networks and the host firewall")
    sh("bash", str(REPO / "scripts/docker/start-dockerd.sh"))
    if args.firewall:
        print_load()
        time_firewall(max(runs, 20))
        return
    sh("bash", str(REPO / "images/build.sh"))
    remove_named(PREFIX, volumes=True)
    results: dict[str, list[float]] = {}
    hub_times: dict[str, list[float]] = {}
    steps: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-spawn-") as tmp:
            root = Path(tmp)
            paths = make_home(root, PROJECT, USER)
            os.chmod(root, 0o755)
            os.chmod(paths.home, 0o755)
            configs = {
                "EnclaveSpawner": (root / "enclave_config.py", ENCLAVE_CONFIG.format(repo=str(REPO))),
                "DockerSpawner": (
                    root / "plain_config.py",
                    PLAIN_CONFIG.format(repo=str(REPO), docker0=docker0_address()),
                ),
            }
            wanted = {"enclave": ["EnclaveSpawner"], "plain": ["DockerSpawner"]}.get(
                args.only or "", list(configs)
            )
            hubs: dict[str, Hub] = {}
            with ExitStack() as started:
                for label in wanted:
                    config, text = configs[label]
                    config.write_text(text)
                    workdir = root / label
                    workdir.mkdir()
                    hubs[label] = started.enter_context(launch_hub(paths, workdir, config))
                    time_spawns(hubs[label], 1)  # warm-up: image cached, network created, data published
                # interleaved, order swapped every round: a change of the host's load hits both alike
                results = {label: [] for label in hubs}
                for round_ in range(runs):
                    for label in wanted if round_ % 2 == 0 else wanted[::-1]:
                        results[label] += time_spawns(hubs[label], 1)
                if "EnclaveSpawner" in hubs:
                    steps = step_medians(hubs["EnclaveSpawner"].log, skip=1)
                hub_times = {label: hub_spawn_times(hub.log, skip=1) for label, hub in hubs.items()}
    finally:
        remove_named(PREFIX, volumes=True)
    print_load()
    for label, times in results.items():
        median, p95 = summary(times)
        rounded = [round(t, 2) for t in times]
        print(f"{label:15s} n={len(times)} median {median:.2f} s  p95 {p95:.2f} s  all {rounded}")
    for label, times in hub_times.items():
        if times:
            print(f"{label:15s} as the hub logs it: median {statistics.median(times):.2f} s")
    if steps:
        print("EnclaveSpawner steps, median ms: " + ", ".join(f"{k} {v:.0f}" for k, v in steps.items()))
    if len(results) == 2:
        ratio = summary(results["EnclaveSpawner"])[0] / summary(results["DockerSpawner"])[0]
        print(f"EnclaveSpawner / DockerSpawner median ratio: {ratio:.2f}")
        if all(hub_times.get(label) for label in results):
            hub_ratio = statistics.median(hub_times["EnclaveSpawner"]) / statistics.median(
                hub_times["DockerSpawner"]
            )
            print(f"EnclaveSpawner / DockerSpawner median ratio, as the hubs log it: {hub_ratio:.2f}")


if __name__ == "__main__":
    main()
