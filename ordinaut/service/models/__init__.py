"""The edge: Pydantic models for what callers send and receive (API, MCP and CLI alike).

One module per noun — :mod:`.tasks`, :mod:`.runs`, :mod:`.agents`, :mod:`.events` —
every name re-exported here: callers write ``from ordinaut.service.models import TaskCreate``.
"""

from ordinaut.service.models.agents import (
    AgentCreate,
    AgentLimitsPublic,
    AgentPolicies,
    AgentPublic,
    BudgetsReport,
    BudgetUse,
    BudgetView,
    ChangePublic,
)
from ordinaut.service.models.common import (
    CONDITION_DOC,
    MAX_BUDGET,
    MAX_STEP_PATH,
    TRUNCATED,
    WORKER_POOL,
)
from ordinaut.service.models.events import (
    CheckPage,
    CheckPublic,
    DeliveryPage,
    DeliveryPublic,
    EventAccepted,
    EventIn,
    EventPage,
    WebhookIn,
)
from ordinaut.service.models.runs import (
    ApprovalPublic,
    Decision,
    Page,
    RunPublic,
    RunSummary,
    StepData,
    StepPublic,
)
from ordinaut.service.models.tasks import (
    BudgetsRule,
    QuietHoursRule,
    RunNowAccepted,
    SkipIn,
    SnoozeIn,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
    TimePoint,
)

__all__ = [
    "CONDITION_DOC",
    "MAX_BUDGET",
    "MAX_STEP_PATH",
    "TRUNCATED",
    "WORKER_POOL",
    "AgentCreate",
    "AgentLimitsPublic",
    "AgentPolicies",
    "AgentPublic",
    "ApprovalPublic",
    "BudgetUse",
    "BudgetView",
    "BudgetsReport",
    "BudgetsRule",
    "ChangePublic",
    "CheckPage",
    "CheckPublic",
    "Decision",
    "DeliveryPage",
    "DeliveryPublic",
    "EventAccepted",
    "EventIn",
    "EventPage",
    "Page",
    "QuietHoursRule",
    "RunNowAccepted",
    "RunPublic",
    "RunSummary",
    "SkipIn",
    "SnoozeIn",
    "StepData",
    "StepPublic",
    "TaskCreate",
    "TaskPublic",
    "TaskUpdate",
    "TimePoint",
    "WebhookIn",
]
