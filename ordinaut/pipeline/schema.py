"""The pipeline language as JSON Schema (2020-12), generated from the models.

:func:`pipeline_schema` is the document served at ``GET /schemas/pipeline`` (and as the MCP
resource ``ordinaut://schemas/pipeline``): enough to write a valid payload from it alone.
:data:`PayloadJson` is how the edge models (``TaskCreate``, ``TaskUpdate``, ``TaskPublic``)
declare a payload: a plain JSON object when validating, so that the service checks it once,
with the tool catalog at hand, and names the step and field of a problem; the pipeline's
schema in the OpenAPI document and in the MCP tools' input and output schemas.

The schema states what one step may look like and the default :class:`~ordinaut.pipeline.
model.Limits`; what it cannot say (unique ids, the step count across loop bodies, nesting
depth, tools, references between steps, JMESPath) is checked when a task is created.
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema

from ordinaut.pipeline.model import Pipeline

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _UntitledFields(GenerateJsonSchema):
    """Pydantic's schema without per-field titles (they only repeat the property names)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@functools.cache
def _generated() -> dict[str, Any]:
    schema = Pipeline.model_json_schema(schema_generator=_UntitledFields)
    return {"$schema": DIALECT, **schema}


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema of a task payload, ``$defs`` included (a fresh copy)."""
    return copy.deepcopy(_generated())


class _DescribedAsPipeline:
    """Metadata for ``Annotated[dict[str, Any], …]``: the JSON Schema is the Pipeline's."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(Pipeline.__pydantic_core_schema__)


PayloadJson = Annotated[dict[str, Any], _DescribedAsPipeline]
"""A payload at the edge: validated as any JSON object, documented as a Pipeline."""
