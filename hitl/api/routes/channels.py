"""Notification channels (webhooks, Apprise URLs) and their delivery log: admins only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from hitl.api import jsonio
from hitl.api.deps import AddressDep, PrincipalDep, ServiceDep
from hitl.api.responses import errors
from hitl.api.schemas import (
    ChannelCreate,
    ChannelCreated,
    ChannelPublic,
    ChannelsPublic,
    DeliveriesPublic,
    DeliveryPublic,
)
from hitl.service import CHANNEL_NAME

router = APIRouter(tags=["notifications"], route_class=jsonio.Route)

ChannelName = Annotated[str, Path(pattern=CHANNEL_NAME)]
DeliveryId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]


@router.post(
    "/channels",
    status_code=201,
    response_model=ChannelCreated,
    responses=errors(400, 401, 403, 409, 413, 422, 503),
)
async def add_channel(
    body: ChannelCreate, service: ServiceDep, who: PrincipalDep, address: AddressDep
) -> ChannelCreated:
    """Send events to a webhook or an Apprise URL, from now on. A webhook's signing secret is
    in this answer only."""
    events: list[str] | None = list(body.events) if body.events else None
    row, secret = await service.notifier.add(who, body.name, body.kind, body.url, events, address)
    return ChannelCreated(**ChannelPublic.of(row).model_dump(), secret=secret)


@router.get("/channels", response_model=ChannelsPublic, responses=errors(401, 403, 503))
async def list_channels(service: ServiceDep, who: PrincipalDep) -> ChannelsPublic:
    """Every channel, removed ones included (their `removed_at` is set)."""
    return ChannelsPublic(data=[ChannelPublic.of(r) for r in await service.notifier.listed(who)])


@router.delete(
    "/channels/{name}", response_model=ChannelPublic, responses=errors(401, 403, 404, 422, 503)
)
async def remove_channel(
    name: ChannelName, service: ServiceDep, who: PrincipalDep, address: AddressDep
) -> ChannelPublic:
    """Stop sending to a channel. Its delivery log stays."""
    return ChannelPublic.of(await service.notifier.remove(who, name, address))


@router.get(
    "/deliveries", response_model=DeliveriesPublic, responses=errors(401, 403, 404, 422, 503)
)
async def list_deliveries(
    service: ServiceDep,
    who: PrincipalDep,
    channel: Annotated[
        str | None, Query(min_length=1, max_length=100, description="only this channel's")
    ] = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveriesPublic:
    """The delivery log, newest first: each delivery's attempts and the receiver's answer."""
    rows = await service.notifier.deliveries(who, channel, status, limit)
    return DeliveriesPublic(data=[DeliveryPublic.of(r, name) for r, name in rows])


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=DeliveryPublic,
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def replay_delivery(
    delivery_id: DeliveryId, service: ServiceDep, who: PrincipalDep, address: AddressDep
) -> DeliveryPublic:
    """Send a delivered or failed delivery again, now, with the same idempotency id."""
    row, channel = await service.notifier.replay(who, delivery_id, address)
    return DeliveryPublic.of(row, channel)
