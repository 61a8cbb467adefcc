"""Status changes: legal transitions only, If-Match, history, expiry and overdue suspensions."""

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
FUTURE = "2035-12-31"


async def _change(service: Harness, item: dict[str, Any], status: str, **extra: Any) -> Any:
    client = service.client(client_id=extra.pop("client_id", "test-client"))
    url = f"/api/v1/certificates/{item['id']}"
    etag = (await client.get(url)).headers["ETag"]
    body = {"status": status, "reason": "監督審核發現嚴重不符合", **extra}
    return await client.post(f"{url}/status", json=body, headers={"If-Match": etag})


async def test_suspend_reinstate_withdraw_with_history(
    service: Harness, new_certificate: NewCertificate, today: date
) -> None:
    item = await new_certificate(expires_on=FUTURE)
    suspended = await _change(service, item, "suspended", client_id="cqc-system")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["status_since"] == today.isoformat()
    assert (await _change(service, item, "valid")).json()["status"] == "valid"
    assert (await _change(service, item, "withdrawn")).json()["status"] == "withdrawn"
    history = (await service.client().get(f"/api/v1/certificates/{item['id']}/history")).json()[
        "items"
    ]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "valid"),
        ("valid", "suspended"),
        ("suspended", "valid"),
        ("valid", "withdrawn"),
    ]
    assert history[1]["actor_id"] == "cqc-system"
    assert history[1]["actor_name"] == "Test client"
    assert history[1]["reason"] == "監督審核發現嚴重不符合"
    assert history[1]["occurred_at"]


async def test_history_is_paged_oldest_first(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(expires_on=FUTURE)
    for status in ("suspended", "valid", "suspended", "withdrawn"):
        assert (await _change(service, item, status)).status_code == 200
    client = service.client()
    url = f"/api/v1/certificates/{item['id']}/history"
    params: dict[str, Any] = {"limit": 2}
    seen: list[str | None] = []
    while True:
        page = (await client.get(url, params=params)).json()
        assert len(page["items"]) <= 2
        seen += [entry["to_status"] for entry in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["valid", "suspended", "valid", "suspended", "withdrawn"]
    other = await service.client().get(
        f"/api/v1/certificates/{(await new_certificate())['id']}/history",
        params={"limit": 2, "cursor": params["cursor"]},
    )
    assert other.status_code == 400


@pytest.mark.parametrize(
    ("path", "requested"),
    [
        (["withdrawn"], "valid"),
        (["withdrawn"], "suspended"),
        (["suspended"], "suspended"),
        ([], "valid"),
        ([], "expired"),
    ],
)
async def test_illegal_transitions_are_409_naming_both_statuses(
    service: Harness, new_certificate: NewCertificate, path: list[str], requested: str
) -> None:
    item = await new_certificate(expires_on=FUTURE)
    for status in path:
        assert (await _change(service, item, status)).status_code == 200
    current = path[-1] if path else "valid"
    response = await _change(service, item, requested)
    assert response.status_code == 409
    problem = response.json()
    assert problem["current_status"] == current
    assert problem["requested_status"] == requested
    assert current in problem["detail"]
    assert requested in problem["detail"]
    history = (await service.client().get(f"/api/v1/certificates/{item['id']}/history")).json()[
        "items"
    ]
    assert len(history) == 1 + len(path)


async def test_expired_follows_from_the_date_and_is_final(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(issued_on="2015-01-10")
    assert item["expires_on"] == "2018-01-10"
    assert item["status"] == "expired"
    response = await _change(service, item, "suspended")
    assert response.status_code == 409
    assert response.json()["current_status"] == "expired"


async def test_status_change_needs_if_match_and_a_reason(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(expires_on=FUTURE)
    client = service.client()
    url = f"/api/v1/certificates/{item['id']}/status"
    body = {"status": "suspended", "reason": "x"}
    assert (await client.post(url, json=body)).status_code == 428
    assert (await client.post(url, json=body, headers={"If-Match": '"0"'})).status_code == 412
    etag = (await client.get(f"/api/v1/certificates/{item['id']}")).headers["ETag"]
    no_reason = await client.post(url, json={"status": "suspended"}, headers={"If-Match": etag})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    assert (await client.get(f"/api/v1/certificates/{item['id']}")).json()["status"] == "valid"


async def test_effective_date_must_not_be_future_or_before_current_status(
    service: Harness, new_certificate: NewCertificate, today: date
) -> None:
    item = await new_certificate(issued_on="2024-01-01", expires_on=FUTURE)
    tomorrow = (today + timedelta(days=1)).isoformat()
    future = await _change(service, item, "suspended", effective_on=tomorrow)
    assert future.status_code == 422
    early = await _change(service, item, "suspended", effective_on="2023-12-31")
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "effective_on"


async def test_overdue_suspensions_are_listed(
    service: Harness, new_certificate: NewCertificate, today: date
) -> None:
    long_ago = await new_certificate(issued_on="2020-01-01", expires_on=FUTURE)
    recent = await new_certificate(issued_on="2020-01-01", expires_on=FUTURE)
    await new_certificate(issued_on="2020-01-01", expires_on=FUTURE)
    seven_months = (today - timedelta(days=214)).isoformat()
    five_months = (today - timedelta(days=150)).isoformat()
    await _change(service, long_ago, "suspended", effective_on=seven_months)
    await _change(service, recent, "suspended", effective_on=five_months)
    client = service.client()
    overdue = (
        await client.get("/api/v1/certificates", params={"overdue_suspension": "true"})
    ).json()["items"]
    assert [c["id"] for c in overdue] == [long_ago["id"]]
    assert overdue[0]["suspension_overdue"] is True
    suspended = (await client.get("/api/v1/certificates", params={"status": "suspended"})).json()
    assert {c["id"] for c in suspended["items"]} == {long_ago["id"], recent["id"]}


async def test_status_as_of_a_past_date_reads_the_history(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(issued_on="2021-01-01", expires_on=FUTURE)
    await _change(service, item, "suspended", effective_on="2022-03-01")
    await _change(service, item, "withdrawn", effective_on="2022-09-01")
    client = service.client()

    async def ids(status: str, as_of: str) -> list[str]:
        response = await client.get(
            "/api/v1/certificates", params={"status": status, "as_of": as_of}
        )
        return [c["id"] for c in response.json()["items"]]

    assert await ids("valid", "2022-02-28") == [item["id"]]
    assert await ids("suspended", "2022-03-01") == [item["id"]]
    assert await ids("withdrawn", "2022-08-31") == []
    assert await ids("withdrawn", "2023-01-01") == [item["id"]]
    assert await ids("valid", "2020-06-01") == []  # not issued yet


async def test_loading_a_record_with_its_status(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(
        issued_on="2021-01-01", expires_on=FUTURE, status="suspended", status_since="2021-06-01"
    )
    assert item["status"] == "suspended"
    assert item["suspension_overdue"] is True
    expired = await new_certificate(issued_on="2010-01-01", status="expired")
    assert expired["status"] == "expired"
    payload = {
        key: item[key]
        for key in ("standard", "certification_body", "enterprise_credit_code", "enterprise_name")
    } | {"certificate_number": "X-2", "county_code": "320323", "scope": "s"}
    bad = await service.client().post(
        "/api/v1/certificates",
        json=payload | {"issued_on": "2021-01-01", "expires_on": FUTURE, "status": "expired"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "status"


async def test_each_status_filter_lists_exactly_the_certificates_with_that_status_on_the_date(
    service: Harness, new_certificate: NewCertificate
) -> None:
    suspended_then_withdrawn = await new_certificate(issued_on="2021-01-01", expires_on=FUTURE)
    await _change(service, suspended_then_withdrawn, "suspended", effective_on="2022-03-01")
    await _change(service, suspended_then_withdrawn, "withdrawn", effective_on="2022-09-01")
    reinstated = await new_certificate(issued_on="2021-01-01", expires_on="2023-06-30")
    await _change(service, reinstated, "suspended", effective_on="2022-01-10")
    await _change(service, reinstated, "valid", effective_on="2022-05-01")
    await new_certificate(issued_on="2021-06-01", expires_on="2022-06-01")
    await new_certificate(issued_on="2010-01-01", status="expired")
    await new_certificate(issued_on="2022-04-01", expires_on=FUTURE)
    client = service.client()

    async def listed(**params: str) -> dict[str, str]:
        """The status on `as_of` of each certificate issued by then."""
        response = await client.get("/api/v1/certificates", params=params)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        return {item["id"]: item["status"] for item in items if item["issued_on"] <= as_of}

    for as_of in (
        "2021-12-31",
        "2022-02-01",
        "2022-05-01",
        "2022-08-31",
        "2022-09-01",
        "2024-01-01",
    ):
        every = await listed(as_of=as_of)
        for status in ("valid", "suspended", "withdrawn", "expired"):
            expected = {key for key, shown in every.items() if shown == status}
            assert set(await listed(as_of=as_of, status=status)) == expected, (as_of, status)
