"""`actions.yaml`: the company's actions, declared once and checked whole before anything uses them.

```yaml
base_url: http://127.0.0.1:8765          # ${ENV} references are expanded; secrets only ever come from there
headers: {Authorization: "Bearer ${ORDER_SERVICE_TOKEN}"}
actions:
  - name: order_status
    description: Look up where an order is and when it arrives
    method: GET
    url: /orders/{order_id}
    kind: read                             # read | write
    parameters:                            # name -> JSON schema; what the model fills from the conversation
      order_id: {type: string, pattern: "^[0-9]{4,8}$", description: the order number}
    required: [order_id]
    identity: {customer_id: customer_id}   # request parameter -> verified identity claim, never from the chat
    reply: "Order {order_id} is {status}; it should arrive on {delivery_date}."
  - name: request_refund
    ...
    kind: write
    confirm: true                          # the customer says yes first
    approval: true                         # then an operator approves in the console
  - name: buy_item
    ...
    records: {kind: purchase, item: item_id}   # a success is the customer's purchase of that catalogue item
```
Or take actions from an OpenAPI 3 document (`assistant/actions/openapi.py`): `openapi: orders-openapi.yaml` at the
top (relative to this file; its first server is the base_url unless one is given), and `operation: getOrder` in an
action instead of its name, description, method, url, kind and parameters (which it may still override).

Any problem stops the load with `file:line: actions[i].field: what is wrong`; nothing is half-loaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.actions.decision import Tool
from assistant.actions.openapi import OpenAPIError, load_document, operation_fields, server_url
from assistant.errors import AssistantError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TOP_FIELDS = {"base_url", "headers", "timeout_s", "actions", "openapi"}
ACTION_FIELDS = {"name", "description", "method", "url", "kind", "parameters", "required", "identity", "confirm",
                 "approval", "reply", "timeout_s", "retries", "headers", "operation", "records"}
RECORDED_KINDS = ("purchase", "cart", "view")  # what a successful call may record (interactions' kinds)


class ActionsFileError(AssistantError, ValueError):
    """The actions file is wrong: the message names file:line and the field."""


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    method: str
    url: str  # absolute, with {placeholders} for parameters
    kind: str  # read | write
    parameters: dict[str, dict] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    identity: dict[str, str] = field(default_factory=dict)  # request parameter -> identity claim
    confirm: bool = False
    approval: bool = False
    reply: str | None = None
    timeout_s: float = 10.0
    retries: int = 0  # extra attempts after a failure; reads only (a write is never sent twice)
    headers: dict[str, str] = field(default_factory=dict)
    records: tuple[str, str] | None = None  # (interaction kind, the parameter naming the catalogue item)

    def tool(self) -> Tool:
        """What the model sees: the parameters it may fill (identity ones never), and whether to confirm first."""
        note = " (changes something: confirm first)" if self.kind == "write" else ""
        return Tool(self.name, self.description + note,
                    {"type": "object", "properties": self.parameters, "required": list(self.required)})


@dataclass(frozen=True)
class ActionCatalog:
    actions: tuple[ActionSpec, ...] = ()
    source: str = ""

    def get(self, name: str) -> ActionSpec | None:
        return next((a for a in self.actions if a.name == name), None)

    def tools(self) -> list[Tool]:
        return [a.tool() for a in self.actions]


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's key lines under `__lines__` so errors can name them."""


def _mapping_with_lines(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__lines__"] = {key.value: key.start_mark.line + 1 for key, _ in node.value
                            if isinstance(key, yaml.ScalarNode)}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


def _plain(value: Any) -> Any:
    """The value without line bookkeeping."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("__lines__", "__line__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Unexpanded(dict):
    """An environment that leaves every `${NAME}` as it is: for reading what the actions are (their names and
    parameters, to train on) without the addresses and secrets needed to call them."""

    def __contains__(self, name) -> bool:
        return True

    def __getitem__(self, name) -> str:
        return f"unset-{name}"


def expand_environment(text: str, where: str, environ: dict[str, str] | None = None) -> str:
    """`${NAME}` and `${NAME:-default}` from the environment; a missing one without a default is an error."""
    environ = os.environ if environ is None else environ

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ActionsFileError(f"{where}: the environment variable {name} is not set (secrets and addresses are "
                               "read from the environment, never written in the file)")

    return ENV_REFERENCE.sub(value, text)


def _check_schema(schema: Any, where: str) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise ActionsFileError(f"{where}: expected a JSON schema mapping, e.g. {{type: string}}")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ActionsFileError(f"{where}: not a valid JSON schema: {exc.message}") from None


def _action(raw: dict, index: int, path: Path, base_url: str, headers: dict[str, str], timeout_s: float,
            environ: dict[str, str] | None, document: dict | None = None) -> ActionSpec:
    lines = raw.get("__lines__", {})

    def where(key: str | None = None) -> str:
        line = lines.get(key, raw.get("__line__")) if key else raw.get("__line__")
        return f"{path}:{line}: actions[{index}]" + (f".{key}" if key else "")

    unknown = sorted(set(raw) - ACTION_FIELDS - {"__lines__", "__line__"})
    if unknown:
        raise ActionsFileError(f"{where(unknown[0])}: unknown field (known: {', '.join(sorted(ACTION_FIELDS))})")
    if "operation" in raw:
        if document is None:
            raise ActionsFileError(f"{where('operation')}: an operation needs `openapi: FILE` at the top of the file")
        identity = _plain(raw.get("identity") or {})
        try:
            imported = operation_fields(document, str(raw["operation"]), identity if isinstance(identity, dict)
                                        else {}, where("operation"))
        except OpenAPIError as exc:
            raise ActionsFileError(str(exc)) from None
        raw = imported | {k: v for k, v in raw.items() if k != "operation"}
    for key in ("name", "description", "method", "url", "kind"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ActionsFileError(f"{where(key if key in raw else None)}: field {key} is required (a text)")
    name, method, kind = raw["name"], raw["method"].upper(), raw["kind"]
    if not NAME.match(name):
        raise ActionsFileError(f"{where('name')}: {name!r} must be letters, digits and _ (a function name)")
    if method not in METHODS:
        raise ActionsFileError(f"{where('method')}: {raw['method']!r} is not one of {', '.join(METHODS)}")
    if kind not in ("read", "write"):
        raise ActionsFileError(f"{where('kind')}: {kind!r} must be read or write")
    parameters = _plain(raw.get("parameters") or {})
    if not isinstance(parameters, dict):
        raise ActionsFileError(f"{where('parameters')}: expected a mapping of parameter name -> JSON schema")
    param_lines = (raw.get("parameters") or {}).get("__lines__", {})
    for param, schema in parameters.items():
        _check_schema(schema, f"{path}:{param_lines.get(param, lines.get('parameters'))}: "
                              f"actions[{index}].parameters.{param}")
    required = raw.get("required") or []
    if not isinstance(required, list) or any(r not in parameters for r in required):
        missing = [r for r in required if r not in parameters] if isinstance(required, list) else required
        raise ActionsFileError(f"{where('required')}: {missing} not among the parameters")
    identity = _plain(raw.get("identity") or {})
    if not isinstance(identity, dict) or not all(isinstance(v, str) for v in identity.values()):
        raise ActionsFileError(f"{where('identity')}: expected a mapping of request parameter -> identity claim")
    clash = sorted(set(identity) & set(parameters))
    if clash:
        raise ActionsFileError(f"{where('identity')}: {clash[0]!r} is also a parameter the model would fill; "
                               "an identity value must never come from the conversation")
    url = expand_environment(raw["url"], where("url"), environ)
    if not re.match(r"^https?://", url):
        if not base_url:
            raise ActionsFileError(f"{where('url')}: a relative url needs base_url at the top of the file")
        url = base_url.rstrip("/") + "/" + url.lstrip("/")
    unknown_placeholders = [p for p in PLACEHOLDER.findall(url) if p not in parameters and p not in identity]
    if unknown_placeholders:
        raise ActionsFileError(f"{where('url')}: {{{unknown_placeholders[0]}}} names no parameter or identity "
                               "claim of this action")
    missing_from_required = [p for p in PLACEHOLDER.findall(url) if p in parameters and p not in required]
    if missing_from_required:
        raise ActionsFileError(f"{where('required')}: {missing_from_required[0]!r} is in the url, so it must be "
                               "required")
    confirm, approval = bool(raw.get("confirm", False)), bool(raw.get("approval", False))
    if kind == "read" and (confirm or approval):
        raise ActionsFileError(f"{where('confirm' if confirm else 'approval')}: only write actions are confirmed "
                               "or approved")
    retries = raw.get("retries", 0)
    if not isinstance(retries, int) or retries < 0 or (kind == "write" and retries):
        raise ActionsFileError(f"{where('retries')}: a whole number >= 0, and 0 for write actions (a change is "
                               "never sent twice)")
    timeout = raw.get("timeout_s", timeout_s)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ActionsFileError(f"{where('timeout_s')}: a number of seconds > 0")
    own_headers = {k: expand_environment(str(v), where("headers"), environ)
                   for k, v in _plain(raw.get("headers") or {}).items()}
    reply = raw.get("reply")
    if reply is not None and not isinstance(reply, str):
        raise ActionsFileError(f"{where('reply')}: a text template with {{field}} placeholders")
    records = _plain(raw.get("records"))
    if records is not None:
        if (not isinstance(records, dict) or set(records) != {"kind", "item"}
                or records["kind"] not in RECORDED_KINDS or records["item"] not in required):
            raise ActionsFileError(f"{where('records')}: expected {{kind: {'|'.join(RECORDED_KINDS)}, item: "
                                   "<a required parameter naming the catalogue item>}")
        records = (records["kind"], records["item"])
    return ActionSpec(name, raw["description"].strip(), method, url, kind, parameters, tuple(required), identity,
                      confirm or approval, approval, reply, float(timeout), retries, headers | own_headers, records)


def load_actions(path: Path, environ: dict[str, str] | None = None) -> ActionCatalog:
    """The actions of `path`, all checked; `ActionsFileError` (file:line: field: reason) on the first problem."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ActionsFileError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML "
                               f"({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise ActionsFileError(f"{path}: cannot read the actions file ({exc.strerror})") from None
    if not isinstance(raw, dict):
        raise ActionsFileError(f"{path}:1: the top level must be a mapping with an `actions` list")
    lines = raw.get("__lines__", {})
    unknown = sorted(set(raw) - TOP_FIELDS - {"__lines__", "__line__"})
    if unknown:
        raise ActionsFileError(f"{path}:{lines.get(unknown[0], 1)}: {unknown[0]}: unknown field "
                               f"(known: {', '.join(sorted(TOP_FIELDS))})")
    document = None
    if raw.get("openapi"):
        try:
            document = load_document(path.parent / str(raw["openapi"]))
        except OpenAPIError as exc:
            raise ActionsFileError(f"{path}:{lines.get('openapi', 1)}: openapi: {exc}") from None
    base_url = expand_environment(str(raw.get("base_url") or (server_url(document) if document else "")),
                                  f"{path}:{lines.get('base_url', 1)}: base_url", environ)
    headers = {k: expand_environment(str(v), f"{path}:{lines.get('headers', 1)}: headers.{k}", environ)
               for k, v in _plain(raw.get("headers") or {}).items()}
    timeout_s = raw.get("timeout_s", 10.0)
    actions = raw.get("actions")
    if not isinstance(actions, list) or not actions:
        raise ActionsFileError(f"{path}:{lines.get('actions', 1)}: actions: expected a list of actions")
    specs: list[ActionSpec] = []
    for index, item in enumerate(actions):
        if not isinstance(item, dict):
            raise ActionsFileError(f"{path}:{lines.get('actions', 1)}: actions[{index}]: expected a mapping")
        spec = _action(item, index, path, base_url, headers, timeout_s, environ, document)
        if any(s.name == spec.name for s in specs):
            line = item["__lines__"].get("name", item["__line__"])
            raise ActionsFileError(f"{path}:{line}: actions[{index}].name: "
                                   f"{spec.name!r} is declared twice")
        specs.append(spec)
    return ActionCatalog(tuple(specs), str(path))
