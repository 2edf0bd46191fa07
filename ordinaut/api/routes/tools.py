"""/tools routes: thin adapters over ``Service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ordinaut.api.deps import Caller, Svc
from ordinaut.service.tools import ToolCreate, ToolPublic

router = APIRouter(prefix="/tools", tags=["tools"])


@router.get("", response_model=list[ToolPublic], operation_id="list_tools")
def list_tools(svc: Svc, caller: Caller) -> list[ToolPublic]:
    """Every tool a pipeline may use: built-ins and the catalog, with their schemas."""
    return svc.list_tools(caller)


@router.post("", status_code=201, response_model=ToolPublic, operation_id="register_tool")
def register_tool(
    body: ToolCreate,
    svc: Svc,
    caller: Caller,
    replace: Annotated[bool, Query(description="overwrite a tool with this address")] = False,
) -> ToolPublic:
    """Register an http or mcp tool (tools:admin); its schemas are checked as JSON Schema."""
    return svc.register_tool(caller, body, replace=replace)


@router.delete("/{address}", status_code=204, response_class=Response, operation_id="delete_tool")
def delete_tool(address: str, svc: Svc, caller: Caller) -> Response:
    """Remove a registered tool (tools:admin); built-in tools cannot be removed."""
    svc.delete_tool(caller, address)
    return Response(status_code=204)
