"""The pipeline language as frozen pydantic models: the shape of a task's payload.

A payload is ``{"params": {...}, "pipeline": [step, ...]}``. A step is::

    {"id": "ping", "uses": "telegram-mcp.send_message", "with": {...}, "if": "<JMESPath>",
     "save_as": "sent", "timeout_seconds": 15, "idempotency_key": "<template>",
     "on_error": "fail" | "continue", "retry": {"max_retries": 2, "backoff": "fixed"},
     "approval": "required", "approval_timeout_seconds": 3600, "on_timeout": "reject"}

:data:`Step` is discriminated on ``uses``: ``pipeline.foreach`` makes a :class:`ForeachStep`,
whose ``with`` is its loop (:class:`Foreach`: ``items_path`` or ``items``, ``body``,
``max_parallel``) and which takes no ``timeout_seconds`` or ``idempotency_key``; any other
address makes a :class:`ToolStep`. Both answer ``.foreach`` (the loop, or None).

The models check each value's shape and are the source of the JSON Schema agents read
(:mod:`ordinaut.pipeline.schema`), so every field's description is written for them.
:func:`ordinaut.pipeline.parse.parse_payload` adds the rules across steps (unique ids, the
:class:`Limits`) and names the step and field of the first problem;
:mod:`ordinaut.pipeline.validate` checks meaning (tools, references, JMESPath, schemas).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ordinaut.tools.builtin import FOREACH
from ordinaut.vocabulary import BackoffStrategy, OnError, OnTimeout

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
NAME_RULE = "1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
MAX_TIMEOUT_SECONDS = 3600.0
MAX_RETRIES = 100
MAX_KEY_TEMPLATE = 256
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 24 * 3600
_EXPRESSIONS = "JMESPath over params, steps, item, event, run and now"


@dataclass(frozen=True)
class Limits:
    """Size limits; ``max_depth`` is how deeply foreach bodies may nest (top level = 0)."""

    max_steps: int = 50
    max_foreach_items: int = 1000
    max_depth: int = 3
    max_parallel: int = 16


DEFAULT_LIMITS = Limits()


class _Frozen(BaseModel):
    # Python's re, like jsonschema's, so the parser and the schema agree on what \S matches
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")


StepId = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description=f"The step's name, unique in the whole pipeline: {NAME_RULE}. "
        "Receipts and errors name the step by it.",
    ),
]
Condition = Annotated[
    str | None,
    Field(
        alias="if",
        pattern=r"\S",
        description=f"Run the step only when this expression ({_EXPRESSIONS}; no ${{}}) is "
        "truthy, e.g. \"length(steps.inbox.threads) > `0`\"; false, null, '', [] and {} "
        "skip it (0 does not).",
    ),
]
SaveAs = Annotated[
    str | None,
    Field(
        pattern=NAME_PATTERN,
        description="Save the step's output under this name; later steps read it as "
        "${steps.<save_as>.<path>}. On a pipeline.foreach step: a list with one object per "
        f"item, holding that item's body step outputs by their save_as. {NAME_RULE}.",
    ),
]
StepOnError = Annotated[
    OnError,
    Field(
        description="fail (default): a failing step fails the run (and the run may be "
        "retried); continue: record the failure and go on, with nothing saved under save_as."
    ),
]


class StepRetry(_Frozen):
    """How often a run that failed at this step is retried, overriding the task's policy."""

    max_retries: Annotated[int, Strict()] = Field(
        ge=0, le=MAX_RETRIES, description=f"Retries after a failure at this step, 0-{MAX_RETRIES}."
    )
    backoff: BackoffStrategy | None = Field(
        default=None, description="Delay between attempts; omitted: the task's backoff_strategy."
    )


StepRetryField = Annotated[
    StepRetry | None,
    Field(description="Retry policy for failures at this step; omitted: the task's."),
]


ItemList = Annotated[
    list[Any], Field(json_schema_extra={"maxItems": DEFAULT_LIMITS.max_foreach_items})
]


def _no_default(schema: dict[str, Any]) -> None:
    """Drop ``"default": null`` where null is not allowed (the key is simply optional)."""
    schema.pop("default", None)


class Foreach(_Frozen):
    """The loop of a pipeline.foreach step: exactly one of items_path and items, and a body."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["items_path"]}, {"required": ["items"]}]}
    )

    items_path: Annotated[str, Field(pattern=r"\S")] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_no_default,
        description=f"Where the list comes from: a JMESPath expression ({_EXPRESSIONS}; no "
        '${}), e.g. "steps.targets.items"; a leading "$." is dropped.',
    )
    items: ItemList | str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_no_default,
        description=f"The list itself (at most {DEFAULT_LIMITS.max_foreach_items} items), or a "
        'template that yields one, e.g. "${steps.targets.items}".',
    )
    body: tuple[Step, ...] = Field(
        min_length=1,
        json_schema_extra={"maxItems": DEFAULT_LIMITS.max_steps},
        description="Steps run once per item, in order, with ${item} bound to the item. Body "
        "steps see earlier body steps' save_as and the steps before the loop; what they save "
        f"is per item. Loops nest at most {DEFAULT_LIMITS.max_depth} levels deep.",
    )
    max_parallel: Annotated[int, Strict()] = Field(
        default=1,
        ge=1,
        json_schema_extra={"maximum": DEFAULT_LIMITS.max_parallel},
        description="How many items run at once (default 1: one after another). Results keep "
        "item order.",
    )

    @field_validator("items_path", "items", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @field_validator("items_path")
    @classmethod
    def _jmespath_only(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().removeprefix("$.")

    @model_validator(mode="after")
    def _one_source(self) -> Foreach:
        if ("items_path" in self.model_fields_set) == ("items" in self.model_fields_set):
            raise PydanticCustomError(
                "pipeline_foreach_items",
                "pipeline.foreach needs exactly one of 'items_path' and 'items'",
            )
        return self


class ToolStep(_Frozen):
    """A step that calls one tool: uses names it, with gives its arguments."""

    id: StepId
    uses: str = Field(
        min_length=1,
        json_schema_extra={"not": {"const": FOREACH}},
        description="The tool to call, by address: 'builtin.echo', 'llm.plan' or a catalog "
        "tool such as 'calendar.list_events' (list_tools, or GET /tools, shows every address "
        "with its input schema). 'pipeline.foreach' makes a loop step instead.",
    )
    with_: dict[str, Any] = Field(
        default_factory=dict,
        alias="with",
        description="The tool's arguments, checked against its input schema. Any string may "
        f"hold ${{expr}} templates ({_EXPRESSIONS}), e.g. '${{params.city}}' or 'Hi "
        "${steps.user.name}': a string that is exactly one template keeps the value's JSON "
        "type, a template that finds nothing is an error (give a default with ||), '$${' "
        "writes a literal '${'.",
    )
    if_: Condition = None
    save_as: SaveAs = None
    timeout_seconds: Annotated[float, Strict()] | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT_SECONDS,
        description=f"Fail the call after this many seconds (up to {MAX_TIMEOUT_SECONDS:g}); "
        "omitted: the tool's own timeout.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_KEY_TEMPLATE,
        description="The key the tool receives to recognise a repeated call (a template, e.g. "
        "'remind-${params.user}-${now}'); omitted: derived from the run and the step, the same "
        "on every retry of the same occurrence.",
    )
    on_error: StepOnError = OnError.FAIL
    retry: StepRetryField = None
    approval: Literal["required"] | None = Field(
        default=None,
        description="'required': the run stops before this step, in status "
        "waiting_approval with the step's rendered arguments, until a person approves "
        "(it then goes on from this step) or rejects (the run is canceled). A tool whose "
        "catalog entry says requires_approval is gated the same way without this.",
    )
    approval_timeout_seconds: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=1,
        le=MAX_APPROVAL_TIMEOUT_SECONDS,
        description="If nobody decides within this many seconds of the run stopping here, "
        "on_timeout decides. Omitted: the run waits until someone does.",
    )
    on_timeout: OnTimeout = Field(
        default=OnTimeout.REJECT,
        description="What an approval not given within approval_timeout_seconds does: "
        "reject (default: the run is canceled) or approve (it goes on).",
    )

    @field_validator("uses")
    @classmethod
    def _not_a_loop(cls, value: str) -> str:
        if value == FOREACH:
            raise ValueError(f"a {FOREACH} step is a ForeachStep")
        return value

    @property
    def foreach(self) -> None:
        """A tool step has no loop."""
        return None


class ForeachStep(_Frozen):
    """A loop: runs with.body once per item of with.items_path or with.items."""

    id: StepId
    uses: Literal["pipeline.foreach"] = Field(description="Always 'pipeline.foreach'.")
    with_: Foreach = Field(alias="with", description="The loop: its items and its body.")
    if_: Condition = None
    save_as: SaveAs = None
    on_error: StepOnError = OnError.FAIL
    retry: StepRetryField = None

    @property
    def foreach(self) -> Foreach:
        """The loop (the step's ``with``)."""
        return self.with_


def _step_kind(value: Any) -> str:
    uses = value.get("uses") if isinstance(value, Mapping) else getattr(value, "uses", None)
    return "foreach" if uses == FOREACH else "tool"


Step = Annotated[
    Annotated[ToolStep, Tag("tool")] | Annotated[ForeachStep, Tag("foreach")],
    Discriminator(_step_kind),
]
"""One step: a :class:`ForeachStep` when ``uses`` is ``pipeline.foreach``, else a ToolStep."""
STEP_TAGS = frozenset({"tool", "foreach"})

Foreach.model_rebuild()


class Pipeline(_Frozen):
    """A task's payload: what runs at every occurrence.

    params are constants; pipeline is the list of steps, run in order. Each step calls one
    tool (uses, with) or loops over a list (uses: pipeline.foreach). Strings in with,
    idempotency_key and items may hold ${expr} templates; if and items_path are bare
    expressions. Expressions are JMESPath and read params, steps (what earlier steps saved
    with save_as), item (inside a loop), event (the event that fired the task, if any),
    run (id, task_id, attempt, scheduled_for, trigger) and now (ISO 8601). Everything is
    checked when the task is created: unknown tools, duplicate ids, references to steps
    that do not run earlier, invalid JMESPath, literal arguments against the tool's input
    schema.
    """

    params: dict[str, Any] = Field(
        default_factory=dict,
        description='Constants for the steps, read as ${params.<name>}, e.g. {"city": "Chisinau"}.',
    )
    steps: tuple[Step, ...] = Field(
        alias="pipeline",
        min_length=1,
        json_schema_extra={"maxItems": DEFAULT_LIMITS.max_steps},
        description=f"The steps, run in order; at most {DEFAULT_LIMITS.max_steps} in all, "
        "loop bodies included, each with its own id.",
    )

    def walk(self) -> Iterator[Step]:
        """Every step, depth first, foreach bodies right after their foreach step."""
        yield from _walk(self.steps)

    def find_step(self, step_path: str) -> Step | None:
        """The step named by an id or a step path such as ``loop[2].send``."""
        step_id = step_path.rsplit(".", 1)[-1]
        return next((step for step in self.walk() if step.id == step_id), None)


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    for step in steps:
        yield step
        if step.foreach is not None:
            yield from _walk(step.foreach.body)
