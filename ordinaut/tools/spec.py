"""What a tool is, and the JSON Schema contracts every call is checked against.

A :class:`ToolSpec` is one catalog entry: an address (``server.tool``), a transport, the
input/output schemas (JSON Schema 2020-12 unless a schema names another draft in ``$schema``,
as MCP allows) and what the transport needs (endpoint, :class:`McpServer`, :class:`Auth`).
The checks here are pure:

* :func:`check_schema` refuses a schema that is not valid for its draft, or whose ``$ref``
  does not resolve inside the schema itself (``ValidationError``). References are never
  fetched from the network: a remote ``$ref`` does not resolve.
* :func:`first_violation` / :func:`validate_instance` check a value against a schema with
  ``format`` assertions on (``date-time`` is always really checked: when the optional
  ``rfc3339-validator`` package is absent a small RFC 3339 check stands in for it), and report
  the single most relevant violation with the path of the failing field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import referencing
import referencing.exceptions
from jsonschema import exceptions as js_exceptions
from jsonschema_specifications import REGISTRY as METASCHEMAS  # type: ignore[import-untyped]
from referencing.jsonschema import DRAFT202012, specification_with

from ordinaut.errors import ValidationError


class Transport(StrEnum):
    """How a tool is reached."""

    HTTP = "http"
    MCP = "mcp"
    BUILTIN = "builtin"


@dataclass(frozen=True)
class ToolCall:
    """One call ``call_tool`` must make; ``args`` are already valid for the input schema."""

    address: str
    args: Mapping[str, Any]
    step_id: str
    step_path: str
    idempotency_key: str
    timeout_seconds: float


@dataclass(frozen=True)
class Auth:
    """An auth header whose value comes from a secret: ``{header}: {prefix}{secret value}``.

    ``secret`` is a name (``TELEGRAM_TOKEN``); the value is read at call time, in the worker,
    from ``ORDINAUT_SECRET_<NAME>`` (see :mod:`ordinaut.tools.secrets`).
    """

    header: str
    secret: str
    prefix: str = ""


@dataclass(frozen=True)
class McpServer:
    """How to reach an MCP server: a streamable HTTP ``url`` or a stdio ``command``.

    ``env`` values are text, or ``{"secret": NAME}`` resolved at call time; ``auth`` adds a
    header to HTTP requests.
    """

    name: str
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, Any] = field(default_factory=dict)
    auth: Auth | None = None


@dataclass(frozen=True)
class ToolSpec:
    """One catalog entry; ``address`` is ``server.tool`` (e.g. ``telegram-mcp.send_message``).

    ``endpoint`` is the URL of an ``http`` tool; ``server``/``mcp`` name and describe the MCP
    server of an ``mcp`` tool and ``remote_name`` is the tool's name there.
    """

    address: str
    transport: Transport
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    timeout_seconds: float = 30.0
    scopes: tuple[str, ...] = ()
    endpoint: str | None = None
    server: str | None = None
    description: str = ""
    remote_name: str | None = None
    mcp: McpServer | None = None
    auth: Auth | None = None
    cost_hints: Mapping[str, Any] | None = None
    requires_approval: bool = False  # every call waits for a person (ordinaut.pipeline.gates)
    worker_pool: str | None = None  # runs of tasks using it go to <namespace>.runs.<pool>


@dataclass(frozen=True)
class SchemaViolation:
    """Why a value does not match a schema: ``path`` to the failing field ("" = the value)."""

    path: str
    reason: str
    keyword: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.reason}"


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:(?P<sec>\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _is_rfc3339_datetime(value: object) -> bool:
    """True for an RFC 3339 ``date-time`` (offset required); non-strings pass, as the spec says."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if match is None:
        return False
    text = value.upper()
    if match.group("sec") == "60":  # a leap second is valid RFC 3339 but not a Python datetime
        text = text[: match.start("sec")] + "59" + text[match.end("sec") :]
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _format_checker() -> Any:
    checker = jsonschema.FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_is_rfc3339_datetime)
    return checker


_FORMATS = _format_checker()


def _validator_class(schema: Mapping[str, Any] | bool) -> Any:
    """The validator for the draft ``$schema`` names; 2020-12 when it names none."""
    default = jsonschema.Draft202012Validator
    return jsonschema.validators.validator_for(schema, default=default)


def check_schema(schema: Any, *, field: str) -> None:
    """Raise ``ValidationError`` naming ``field`` unless ``schema`` is valid JSON Schema 2020-12."""
    if not isinstance(schema, (Mapping, bool)):
        raise ValidationError("must be a JSON Schema (an object or a boolean)", field=field)
    try:
        _validator_class(schema).check_schema(schema)
    except js_exceptions.SchemaError as exc:
        where = format_path(exc.absolute_path)
        raise ValidationError(
            f"not a valid JSON Schema: {exc.message}",
            field=f"{field}.{where}" if where else field,
        ) from None
    if isinstance(schema, Mapping):
        _check_refs(schema, field)


# keywords whose values are instances, not schemas: a "$ref" inside them is data
_INSTANCE_KEYWORDS = frozenset({"const", "enum", "examples", "default"})
_LOCAL_ONLY = referencing.Registry()  # no retrieval: a remote $ref stays unresolved


def _check_refs(schema: Mapping[str, Any], field: str) -> None:
    """Every ``$ref`` in ``schema`` resolves within it (or to a bundled metaschema), no loop."""
    dialect = schema.get("$schema")
    spec = specification_with(dialect if isinstance(dialect, str) else "", default=DRAFT202012)
    root = spec.create_resource(schema)
    stack: list[tuple[Any, Any, list[str | int]]] = [
        (schema, METASCHEMAS.resolver_with_root(root), [])
    ]
    while stack:
        node, resolver, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, resolver, [*path, i]) for i, item in enumerate(node))
            continue
        if not isinstance(node, Mapping):
            continue
        if path and "$id" in node:
            resolver = resolver.in_subresource(spec.create_resource(node))
        ref = node.get("$ref")
        if isinstance(ref, str):
            problem = _ref_problem(resolver, ref)
            if problem is not None:
                where = format_path([*path, "$ref"])
                raise ValidationError(problem, field=f"{field}.{where}")
        stack.extend(
            (value, resolver, [*path, key])
            for key, value in node.items()
            if key not in _INSTANCE_KEYWORDS
        )


def _ref_problem(resolver: Any, ref: str) -> str | None:
    """Why ``ref`` cannot be used: it does not resolve, or it leads round to itself."""
    seen: set[int] = set()
    while True:
        try:
            resolved = resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            return f"$ref {ref!r} does not resolve inside this schema (none are fetched)"
        target = resolved.contents
        if not isinstance(target, Mapping) or not isinstance(target.get("$ref"), str):
            return None
        if id(target) in seen:
            return f"$ref {ref!r} loops back to itself"
        seen.add(id(target))
        resolver, ref = resolved.resolver, target["$ref"]


def format_path(parts: Iterable[str | int]) -> str:
    """Render a JSON path as ``a.b[0].c``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def join_field(base: str, path: str) -> str:
    """Append a path from :func:`format_path` to a dotted field name."""
    if not path:
        return base
    return f"{base}{path}" if path.startswith("[") else f"{base}.{path}"


def _offending_key(error: Any) -> str | None:
    """The property a ``required`` / ``additionalProperties`` error is really about."""
    instance = error.instance
    if not isinstance(instance, Mapping) or not isinstance(error.schema, Mapping):
        return None
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in instance]
        return missing[0] if missing else None
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [
            key
            for key in instance
            if key not in known and not any(re.search(p, key) for p in patterns)
        ]
        return str(extra[0]) if extra else None
    return None


def _error_path(error: Any) -> str:
    path: list[str | int] = list(error.absolute_path)
    key = _offending_key(error)
    if key is not None:
        path.append(key)
    return format_path(path)


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    """A ready validator for a schema (by its JSON text): building one per check cost as much
    as the check; validators are immutable, so one is shared by every thread."""
    schema = json.loads(schema_json)
    return _validator_class(schema)(schema, format_checker=_FORMATS, registry=_LOCAL_ONLY)


def iter_violations(instance: Any, schema: Mapping[str, Any] | bool) -> Iterator[Any]:
    """Every raw ``jsonschema`` error for ``instance`` (format assertions on).

    A schema that cannot be used (a ``$ref`` that does not resolve, ``$ref``s that recurse
    without end: a catalog entry stored before :func:`check_schema` refused them) yields one
    error saying so, with the keyword ``$ref``, instead of raising.
    """
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        yield from validator.iter_errors(instance)
    except referencing.exceptions.Unresolvable as exc:
        reason = (
            f"the tool's schema cannot be used: $ref {getattr(exc, 'ref', '?')!r} does not resolve"
        )
        yield js_exceptions.ValidationError(reason, validator="$ref", instance=instance)
    except RecursionError:
        reason = "the tool's schema cannot be used: its $refs recurse without end"
        yield js_exceptions.ValidationError(reason, validator="$ref", instance=instance)


def best_violation(errors: Iterable[Any]) -> SchemaViolation | None:
    """The most relevant of ``errors`` (``jsonschema.best_match``), or None if there are none."""
    error = js_exceptions.best_match(errors)
    if error is None:
        return None
    return SchemaViolation(path=_error_path(error), reason=error.message, keyword=error.validator)


def first_violation(instance: Any, schema: Mapping[str, Any] | bool) -> SchemaViolation | None:
    """The most relevant violation of ``schema`` by ``instance``, or None when it is valid."""
    return best_violation(iter_violations(instance, schema))


def validate_instance(instance: Any, schema: Mapping[str, Any]) -> str | None:
    """None if ``instance`` is valid, else ``"field path: reason"`` for the best error."""
    violation = first_violation(instance, schema)
    return None if violation is None else str(violation)
