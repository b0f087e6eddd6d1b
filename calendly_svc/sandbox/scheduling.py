"""Available times of an event type: the hosts' weekly hours minus their active events."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .availability import WEEKDAYS, Availability, SchedulingState
from .models import EventType, ScheduledEvent
from .state import SandboxState

MAX_EVENT_LENGTH = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Slot:
    """One available start time of an event type."""

    start: datetime
    invitees_remaining: int
    hosts: tuple[str, ...]


def _local_intervals(availability: Availability, day: date) -> Iterator[tuple[datetime, datetime]]:
    """The day's working intervals as aware UTC datetimes."""
    zone = ZoneInfo(availability.timezone)
    for low, high in availability.week.get(WEEKDAYS[day.weekday()], ()):
        start = datetime.combine(day, low, zone).astimezone(UTC)
        # time.max stands for 24:00, the next midnight
        end_day, end_time = (day + timedelta(days=1), time()) if high == time.max else (day, high)
        yield start, datetime.combine(end_day, end_time, zone).astimezone(UTC)


def _working_starts(
    availability: Availability, duration: timedelta, low: datetime, high: datetime
) -> set[datetime]:
    """Starts in [low, high) of slots that fit inside the user's working intervals."""
    zone = ZoneInfo(availability.timezone)
    first = low.astimezone(zone).date() - timedelta(days=1)
    last = high.astimezone(zone).date() + timedelta(days=1)
    starts: set[datetime] = set()
    day = first
    while day <= last:
        for begin, end in _local_intervals(availability, day):
            moment = begin
            while moment + duration <= end:
                if low <= moment < high:
                    starts.add(moment)
                moment += duration
        day += timedelta(days=1)
    return starts


def _busy(
    state: SandboxState, user_uuid: str, low: datetime, high: datetime
) -> list[ScheduledEvent]:
    """The user's active events that may overlap [low, high)."""
    keys = state.events_by_host.get(user_uuid, [])
    first = bisect_left(keys, (low - MAX_EVENT_LENGTH, ""))
    last = bisect_left(keys, (high, ""))
    events = (state.events[uuid] for _, uuid in keys[first:last])
    return [event for event in events if event.status == "active" and event.end > low]


def _free(busy: list[ScheduledEvent], start: datetime, end: datetime, own: str | None) -> bool:
    """No busy event overlaps [start, end), except the group event `own` being filled."""
    return not any(e.start < end and start < e.end and e.uuid != own for e in busy)


def _remaining(
    state: SandboxState, event_type: EventType, start: datetime
) -> tuple[int, str | None]:
    """Seats left at start (group types fill one event per slot) and that event's uuid."""
    if event_type.kind != "group":
        return 1, None
    existing = state.group_slots.get((start, event_type.uuid))
    if existing is None:
        return event_type.invitee_limit, None
    event = state.events[existing]
    taken = sum(1 for uuid in event.invitee_uuids if state.invitees[uuid].status == "active")
    return event_type.invitee_limit - taken, existing


def available_slots(
    state: SandboxState, scheduling: SchedulingState, event_type: EventType,
    low: datetime, high: datetime,
) -> list[Slot]:  # fmt: skip
    """Available starts in [low, high): working hours of the hosts minus their active events;
    round robin needs one free host, collective every host; a group slot stays until full."""
    if not event_type.active or event_type.deleted_at is not None:
        return []
    duration = timedelta(minutes=event_type.duration)
    hosts = event_type.hosts
    starts = {
        host: _working_starts(scheduling.availability_of(state.users[host]), duration, low, high)
        for host in hosts
    }
    busy = {host: _busy(state, host, low, high + duration) for host in hosts}
    slots = []
    for start in sorted(set().union(*starts.values())):
        remaining, own = _remaining(state, event_type, start)
        free = tuple(
            host for host in hosts
            if start in starts[host] and _free(busy[host], start, start + duration, own)
        )  # fmt: skip
        everyone = event_type.pooling_type == "collective"
        if remaining > 0 and free and (not everyone or len(free) == len(hosts)):
            slots.append(Slot(start, remaining, free))
    return slots
