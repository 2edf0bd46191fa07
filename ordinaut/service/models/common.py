"""What several kinds of models share: limits and the texts their docs quote."""

from __future__ import annotations

from ordinaut import limits

MAX_STEP_PATH = 1000  # characters of a step path in GET /runs/{id}/steps/{step_path}/{part}
TRUNCATED = (
    f"Shown inline up to {limits.INLINE_STEP_DATA_BYTES // 1024} KiB of JSON text; a larger "
    'value is {"truncated": true, "bytes": N, "preview": "<its first '
    f'{limits.PREVIEW_CHARS} characters>"}}: get it whole from '
    "GET /runs/{id}/steps/{step_path}/{input|output} (MCP: get_step_data)."
)


CONDITION_DOC = (
    'Condition tasks: {"uses": TOOL, "with": {ARGS}, "when": JMESPATH}. On each tick of '
    "schedule_expr (cron or RRULE) the tool is called with the arguments and the JMESPath "
    "expression judges its output; the pipeline runs only when the result turns from false "
    "to true (and not within cooldown_seconds of the last firing)."
)

WORKER_POOL = r"^[a-z0-9][a-z0-9_-]{0,39}$"
MAX_BUDGET = 10**12
