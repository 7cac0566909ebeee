"""Whether Docker answers here, and the Docker objects a test run or a benchmark made, removed by
name: everything named with its own prefix (``enclave-test-runs-``, ``enclave-bench-``, ...) and only
that, so another run on the same host is left alone."""

from __future__ import annotations

import subprocess
import time


def sh(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def docker_usable() -> bool:
    """Docker answers here."""
    try:
        return sh("docker", "info", check=False, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def remove_named(prefix: str, *, volumes: bool = False) -> None:
    """Every container and network (and its firewall chain) named ``prefix*``; with ``volumes``, every
    such volume too."""
    from hub_config import firewall, network

    ids = sh("docker", "ps", "-aq", "--filter", f"name={prefix}", check=False).stdout.split()
    if ids:
        sh("docker", "rm", "-f", *ids, check=False)
    for name in sh("docker", "network", "ls", "--format", "{{.Name}}", check=False).stdout.split():
        if name.startswith(prefix):
            for _ in range(20):  # a container removed a moment ago may still hold an endpoint
                if sh("docker", "network", "rm", name, check=False).returncode == 0:
                    break
                time.sleep(0.5)
            firewall.remove(network.bridge_name(name))
    if volumes:
        for name in sh("docker", "volume", "ls", "--format", "{{.Name}}", check=False).stdout.split():
            if name.startswith(prefix):
                sh("docker", "volume", "rm", "-f", name, check=False)
