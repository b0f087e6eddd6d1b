"""A short-lived cache of what accepting a webhook delivery needs of its integration."""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Receiver:
    """What accepting a delivery needs of its integration."""

    integration_id: int
    disconnected: bool
    keys: tuple[str, ...]


class ReceiverCache:
    """Receivers by public id for a few seconds, so a delivery costs one statement.

    A disconnect is seen within the TTL (a delivery stored meanwhile is ignored when
    processed); a rotated signing key is seen at once, because a signature that fails against
    a cached receiver is checked again against a fresh one.
    """

    def __init__(self, ttl_seconds: float = 10.0, capacity: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._items: dict[UUID, tuple[float, Receiver]] = {}
        self._ids: dict[str, UUID] = {}

    def public_id(self, raw: str) -> UUID:
        """The UUID a callback URL's text names (ValueError if none), parsed once per text."""
        found = self._ids.get(raw)
        if found is None:
            found = UUID(raw)
            if len(self._ids) >= self._capacity:
                self._ids.clear()
            self._ids[raw] = found
        return found

    def get(self, public_id: UUID) -> Receiver | None:
        """A fresh cached receiver, or None."""
        item = self._items.get(public_id)
        return item[1] if item and item[0] > time.monotonic() else None

    def put(self, public_id: UUID, receiver: Receiver) -> None:
        """Remember a receiver (forgetting everything when full)."""
        if len(self._items) >= self._capacity:
            self._items.clear()
        self._items[public_id] = (time.monotonic() + self._ttl, receiver)

    def forget(self, public_id: UUID) -> None:
        """Drop a receiver at once (this process disconnected it)."""
        self._items.pop(public_id, None)
