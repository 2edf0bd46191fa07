"""Tool scopes: which step needs a scope its agent does not hold.

Checked twice with the same rule: when a task is created or changed (the caller's scopes)
and when a run starts (the owner's scopes then: they may have been narrowed or revoked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ordinaut.pipeline.model import Pipeline, Step
from ordinaut.tools.spec import ToolSpec
from ordinaut.vocabulary import holds


@dataclass(frozen=True)
class MissingScopes:
    """A step whose tool needs ``scopes`` the agent lacks; ``index`` is its top-level position."""

    step: Step
    index: int | None
    scopes: frozenset[str]


def first_missing(
    pipeline: Pipeline, tools: Mapping[str, ToolSpec], held: frozenset[str]
) -> MissingScopes | None:
    """The first step (depth first) whose tool needs a scope ``held`` lacks; admins lack none."""
    top = {id(step): i for i, step in enumerate(pipeline.steps)}
    for step in pipeline.walk():
        missing = frozenset(s for s in tools[step.uses].scopes if not holds(held, s))
        if missing:
            return MissingScopes(step, top.get(id(step)), missing)
    return None
