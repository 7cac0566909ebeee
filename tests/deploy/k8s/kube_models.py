"""Check a manifest against the Kubernetes API models, strictly: every key must be a field of its
model (no unknown or misspelt field passes, as it would with a lenient ``kubectl apply``), every
value of the field's type, and the model must build (required fields present).

The models are kubernetes_asyncio's (the client KubeSpawner uses), generated from the API's OpenAPI
schema: each class has ``openapi_types`` (attribute -> type) and ``attribute_map`` (attribute -> JSON key).
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes_asyncio.client import ApiClient, models

PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (str, int, float, bool, dict, list),  # IntOrString, free-form fields
    "datetime": (str,),
    "date": (str,),
}


def model_class(manifest: dict[str, Any]) -> str:
    """``apps/v1`` + ``Deployment`` -> ``V1Deployment``."""
    version = str(manifest.get("apiVersion", "")).rsplit("/", 1)[-1]
    return version[:1].upper() + version[1:] + str(manifest.get("kind", ""))


def field_errors(value: Any, type_name: str, path: str) -> list[str]:
    """Whether ``value`` fits ``type_name`` (an ``openapi_types`` entry), recursively."""
    if value is None:
        return []
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            error for i, item in enumerate(value) for error in field_errors(item, match[1], f"{path}[{i}]")
        ]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        return [
            error for key, item in value.items() for error in field_errors(item, match[1], f"{path}.{key}")
        ]
    if type_name == "str" and path.rsplit(".", 2)[-2:-1] in (["limits"], ["requests"]):
        # a resource quantity: the API takes a JSON number too (KubeSpawner writes memory as bytes)
        return (
            []
            if isinstance(value, str | int | float) and not isinstance(value, bool)
            else [f"{path}: quantity"]
        )
    if type_name in PRIMITIVES:
        if not isinstance(value, PRIMITIVES[type_name]) or (type_name == "int" and isinstance(value, bool)):
            return [f"{path}: expected {type_name}, got {type(value).__name__}"]
        return []
    model = getattr(models, type_name, None)
    if model is None:
        return [f"{path}: no model {type_name}"]
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} mapping"]
    fields = {json_key: model.openapi_types[attr] for attr, json_key in model.attribute_map.items()}
    errors = [f"{path}.{key}: not a field of {type_name}" for key in value if key not in fields]
    for key, item in value.items():
        if key in fields:
            errors += field_errors(item, fields[key], f"{path}.{key}")
    return errors


def model_errors(manifest: dict[str, Any], type_name: str | None = None) -> list[str]:
    """Every problem of ``manifest`` as a ``type_name`` object (default: from apiVersion and kind)."""
    type_name = type_name or model_class(manifest)
    errors = field_errors(manifest, type_name, type_name)
    if not errors:
        try:  # the model's own checks: required fields, enums
            ApiClient._ApiClient__deserialize(_client(), manifest, type_name)
        except (ValueError, TypeError) as error:
            errors.append(f"{type_name}: {error}")
    return errors


def _client() -> Any:
    """An ApiClient shell for its deserializer (no connection, no session: nothing is contacted)."""
    client = ApiClient.__new__(ApiClient)
    client.configuration = None
    return client
