"""Actions from an OpenAPI 3 document: `openapi: FILE` at the top of `actions.yaml`, and `operation: ID` in an action
picks one of its operations. The operation gives the name, description, method, url and parameters (path and query
parameters, and a JSON request body's properties, local `$ref`s resolved); the action's own fields (identity,
confirm, approval, reply, ...) add to it or override it. Parameters the action takes from the verified identity are
taken out of what the model fills. GET and HEAD operations are reads, the others writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import AssistantError

SCHEMA_KEYS = ("type", "enum", "format", "pattern", "minimum", "maximum", "minLength", "maxLength", "items",
               "description")


class OpenAPIError(AssistantError, ValueError):
    """The OpenAPI document cannot give the action: the message says where and why."""


def load_document(path: Path) -> dict:
    """An OpenAPI 3 document (JSON or YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise OpenAPIError(f"{path}: cannot read the OpenAPI document ({exc.strerror})") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise OpenAPIError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3"):
        raise OpenAPIError(f"{path}: not an OpenAPI 3 document (no `openapi: 3.x` field)")
    return document


def _resolve(document: dict, value: Any, where: str, depth: int = 0) -> Any:
    """`value` with local `$ref`s (`#/components/...`) replaced by what they point at."""
    if depth > 20:
        raise OpenAPIError(f"{where}: $ref nests too deep (a cycle?)")
    if isinstance(value, dict) and "$ref" in value:
        ref = value["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise OpenAPIError(f"{where}: only local references (#/components/...) are supported, not {ref!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise OpenAPIError(f"{where}: {ref} points at nothing")
            target = target[part]
        return _resolve(document, target, where, depth + 1)
    if isinstance(value, dict):
        return {k: _resolve(document, v, where, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(document, v, where, depth + 1) for v in value]
    return value


def _schema(schema: dict, description: str | None = None) -> dict:
    kept = {k: v for k, v in schema.items() if k in SCHEMA_KEYS}
    if description and "description" not in kept:
        kept["description"] = description
    return kept or {"type": "string"}


def operation_fields(document: dict, operation_id: str, identity: dict[str, str], where: str) -> dict:
    """The action fields (`actions.yaml` names) operation `operation_id` of `document` gives."""
    for path, item in (document.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return _fields(document, path, method, item, operation, identity, f"{where} ({operation_id})")
    known = sorted(op.get("operationId") for item in (document.get("paths") or {}).values()
                   for op in (item or {}).values() if isinstance(op, dict) and op.get("operationId"))
    raise OpenAPIError(f"{where}: no operation {operation_id!r} in the OpenAPI document (it has: "
                       f"{', '.join(known) or 'none with an operationId'})")


def _fields(document: dict, path: str, method: str, item: dict, operation: dict, identity: dict[str, str],
            where: str) -> dict:
    parameters: dict[str, dict] = {}
    required: list[str] = []
    shared = [p for p in item.get("parameters", []) if isinstance(p, dict)]
    for raw in [*shared, *operation.get("parameters", [])]:
        parameter = _resolve(document, raw, where)
        if parameter.get("in") not in ("path", "query"):
            continue  # headers and cookies are the file's `headers`, never the model's
        name = parameter["name"]
        parameters[name] = _schema(parameter.get("schema") or {}, parameter.get("description"))
        if parameter.get("required") or parameter.get("in") == "path":
            required.append(name)
    body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
    if body:
        schema = _resolve(document, body.get("schema") or {}, where)
        if schema.get("type", "object") != "object":
            raise OpenAPIError(f"{where}: the JSON request body must be an object to become parameters")
        for name, prop in (schema.get("properties") or {}).items():
            parameters[name] = _schema(prop)
        required += [r for r in schema.get("required", []) if r in parameters]
    for name in identity:  # filled from the verified customer, never by the model
        parameters.pop(name, None)
    return {"name": operation["operationId"],
            "description": (operation.get("summary") or operation.get("description") or operation["operationId"]),
            "method": method.upper(), "url": path, "kind": "read" if method.lower() in ("get", "head") else "write",
            "parameters": parameters, "required": [r for r in dict.fromkeys(required) if r in parameters]}


def server_url(document: dict) -> str:
    """The document's first server url ('' when it names none)."""
    servers = document.get("servers") or []
    return str(servers[0].get("url", "")) if servers and isinstance(servers[0], dict) else ""
