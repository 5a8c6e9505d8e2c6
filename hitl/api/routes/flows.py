"""The flows this server runs, as graphs: their nodes and the actions between them."""

from __future__ import annotations

from fastapi import APIRouter

from hitl.api import jsonio
from hitl.api.deps import ServiceDep
from hitl.api.responses import errors
from hitl.api.schemas import FlowPublic

router = APIRouter(prefix="/flows", tags=["flows"], route_class=jsonio.Route)


@router.get("/{name}", response_model=FlowPublic, responses=errors(401, 404))
async def get_flow(name: str, service: ServiceDep) -> FlowPublic:
    """A flow's nodes (nested flows' nodes too, each naming its `parent`) and its edges, one
    per action: what the task page draws. 404 for a flow this server does not run."""
    registry = service.registry
    return FlowPublic.of(name, registry.graph(name), name == registry.default)
