"""The documented value keys of the Zero to JupyterHub chart, as dotted paths.

``z2jh_values_keys.txt`` beside this file is the output of this module for one chart version (its
header names the version, the commit and the source path); regenerate it for a new chart with::

    git show <tag>:jupyterhub/values.schema.yaml > /tmp/schema.yaml
    python -m tests.deploy.k8s.z2jh_keys /tmp/schema.yaml <tag> <commit> \\
        > tests/deploy/k8s/z2jh_values_keys.txt

A path ending in ``.*`` is a free-form mapping (``hub.config``, ``hub.extraConfig``, labels): any key
below it is allowed. A list (``hub.extraVolumes``) or a scalar is a leaf.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

KEYS_FILE = Path(__file__).with_name("z2jh_values_keys.txt")


def schema_key_paths(node: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every documented key path of a values schema (JSON schema draft 7, as the chart writes it)."""
    properties = node.get("properties") or {}
    free_form = node.get("additionalProperties") not in (None, False) or bool(node.get("patternProperties"))
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if not properties and "object" in types:
        free_form = True  # an object without documented keys takes any keys
    for key, child in properties.items():
        yield from schema_key_paths(child, f"{prefix}{key}.")
    if free_form:
        yield f"{prefix}*"
    elif not properties and prefix:
        yield prefix.rstrip(".")


def load_documented_keys(path: Path = KEYS_FILE) -> tuple[frozenset[str], frozenset[str]]:
    """(leaf paths, free-form prefixes) from a key list file; ``#`` lines are comments."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    return (
        frozenset(key for key in keys if not key.endswith(".*")),
        frozenset(key[: -len(".*")] for key in keys if key.endswith(".*")),
    )


def value_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """The dotted path of every leaf of a values mapping (lists are leaves)."""
    if isinstance(values, Mapping) and values:
        for key, child in values.items():
            yield from value_paths(child, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def undocumented(values: Mapping[str, Any], leaves: frozenset[str], free: frozenset[str]) -> list[str]:
    """The paths of ``values`` the chart does not document."""
    bad = []
    for path in value_paths(values):
        parts = path.split(".")
        under_free = any(".".join(parts[:n]) in free for n in range(1, len(parts) + 1))
        if path not in leaves and not under_free and path not in free:
            bad.append(path)
    return bad


if __name__ == "__main__":
    schema_file, tag, commit = sys.argv[1:4]
    print(f"# Zero to JupyterHub chart {tag} (commit {commit}): the key paths that")
    print("# jupyterhub/values.schema.yaml documents, made by tests/deploy/k8s/z2jh_keys.py.")
    print("# `.*`: a free-form mapping, any key below it is allowed.")
    for key_path in schema_key_paths(yaml.safe_load(Path(schema_file).read_text())):
        print(key_path)
