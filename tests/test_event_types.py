"""Event types: loading all pages, refresh counts, mappings."""

from __future__ import annotations

from tests.conftest import Api, Sandbox


async def test_connect_loads_event_types(api: Api) -> None:
    await api.connect()
    status, body = await api.call("GET", "/event-types")
    assert status == 200
    [item] = body["items"]
    assert item["name"] == "30 Minute Meeting"
    assert (item["duration_minutes"], item["active"]) == (30, True)
    assert (item["service_id"], item["is_active"], item["auto_create_appointment"]) == (
        None,
        True,
        True,
    )
    assert item["calendly_event_type_uri"].startswith(f"{api.sandbox_url}/event_types/")
    assert set(item) == {
        "id",
        "calendly_event_type_uri",
        "name",
        "slug",
        "duration_minutes",
        "active",
        "scheduling_url",
        "service_id",
        "is_active",
        "auto_create_appointment",
        "updated_at",
    }


async def test_refresh_counts_added_updated_removed(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    user = integration["calendly_user_uri"]
    # deliver=false: changes the service hears of only through a refresh
    quiet = {"user": user, "deliver": False}
    a = await control.call("POST", "/_sandbox/event_types", quiet | {"name": "A", "duration": 15})
    b = await control.call("POST", "/_sandbox/event_types", quiet | {"name": "B", "duration": 45})
    first_status, first = await api.call("POST", "/event-types/refresh")
    a_id, b_id = (x["resource"]["uri"].rsplit("/", 1)[1] for x in (a, b))
    await control.call("PATCH", f"/_sandbox/event_types/{a_id}", {"name": "A2", "deliver": False})
    await control.call("DELETE", f"/_sandbox/event_types/{b_id}", {"deliver": False})
    _, second = await api.call("POST", "/event-types/refresh")
    _, third = await api.call("POST", "/event-types/refresh")
    assert first_status == 200
    assert (first["added"], first["updated"], first["removed"]) == (2, 0, 0)
    assert sorted(i["name"] for i in first["items"]) == ["30 Minute Meeting", "A", "B"]
    # Calendly stops listing a deleted event type: the row is kept (mapping intact) but removed
    assert (second["added"], second["updated"], second["removed"]) == (0, 1, 1)
    assert (third["added"], third["updated"], third["removed"]) == (0, 0, 0)
    assert sorted(i["name"] for i in third["items"]) == ["30 Minute Meeting", "A2"]


async def test_refresh_reads_every_page(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    for n in range(149):
        body = {"user": integration["calendly_user_uri"], "name": f"T{n:03}", "duration": 30}
        await control.call("POST", "/_sandbox/event_types", body | {"deliver": False})
    before = await control.count("GET", "/event_types")
    status, body = await api.call("POST", "/event-types/refresh")
    pages = await control.count("GET", "/event_types") - before
    assert status == 200
    assert (body["added"], len(body["items"])) == (149, 150)
    assert pages == 2


async def test_mapping(api: Api) -> None:
    await api.connect()
    _, listing = await api.call("GET", "/event-types")
    event_type_id = listing["items"][0]["id"]
    status, mapped = await api.call(
        "PUT",
        f"/event-types/{event_type_id}/mapping",
        json={"service_id": 12, "is_active": False},
    )
    _, partial = await api.call(
        "PUT", f"/event-types/{event_type_id}/mapping", json={"auto_create_appointment": False}
    )
    _, cleared = await api.call(
        "PUT", f"/event-types/{event_type_id}/mapping", json={"service_id": None}
    )
    _, refreshed = await api.call("POST", "/event-types/refresh")
    assert status == 200
    assert (mapped["service_id"], mapped["is_active"], mapped["auto_create_appointment"]) == (
        12,
        False,
        True,
    )
    assert (partial["service_id"], partial["is_active"], partial["auto_create_appointment"]) == (
        12,
        False,
        False,
    )
    assert cleared["service_id"] is None
    kept = refreshed["items"][0]
    assert (kept["is_active"], kept["auto_create_appointment"]) == (False, False)


async def test_mapping_errors(api: Api, control: Sandbox) -> None:
    await api.connect(user=1)
    await control.call("POST", "/_sandbox/users", {"email": "other@example.com", "name": "Other"})
    await api.connect(user=2, email="other@example.com")
    _, mine = await api.call("GET", "/event-types", user=1)
    event_type_id = mine["items"][0]["id"]
    other, e1 = await api.call(
        "PUT", f"/event-types/{event_type_id}/mapping", 2, json={"is_active": True}
    )
    unknown, e2 = await api.call("PUT", "/event-types/999999/mapping", 1, json={"is_active": True})
    junk, _ = await api.call("PUT", "/event-types/abc/mapping", 1, json={"is_active": True})
    invalid, e3 = await api.call(
        "PUT", f"/event-types/{event_type_id}/mapping", 1, json={"service_id": "x", "extra": 1}
    )
    assert (other, e1["error"]["code"]) == (404, "event_type_not_found")
    assert (unknown, e2["error"]["code"]) == (404, "event_type_not_found")
    assert junk == 404
    assert (invalid, [d["field"] for d in e3["error"]["details"]]) == (422, ["service_id", "extra"])


async def test_event_types_need_a_connection(api: Api) -> None:
    listing, e1 = await api.call("GET", "/event-types")
    refresh, e2 = await api.call("POST", "/event-types/refresh")
    assert (listing, e1["error"]["code"]) == (404, "not_connected")
    assert (refresh, e2["error"]["code"]) == (404, "not_connected")
