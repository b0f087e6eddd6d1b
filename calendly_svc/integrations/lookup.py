"""The user's integration, as every API module looks it up."""

from __future__ import annotations

from calendly_svc.deps import Deps
from calendly_svc.errors import not_connected
from calendly_svc.store import queries


async def live_integration(deps: Deps, user_id: int) -> queries.Integration:
    """The user's integration unless there is none or it was disconnected."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, user_id)
    if integration is None or integration.status == "disconnected":
        raise not_connected()
    return integration


async def any_integration(deps: Deps, user_id: int) -> queries.Integration:
    """The user's integration in any status (its logs outlive a disconnect)."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, user_id)
    if integration is None:
        raise not_connected()
    return integration
