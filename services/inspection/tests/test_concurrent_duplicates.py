"""A sample is recorded once per plan and a check re-inspected once, under concurrency too:
identical records sent together store one, and every other request gets the 409 a
sequential duplicate gets."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import httpx

from inspection.tests.support import credit_code, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"
IMPORT = f"{URL}/import"
COPIES = 20
CSV_HEADERS = {"Content-Type": "text/csv"}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: json.dumps(value, ensure_ascii=False)
                if isinstance(value, list)
                else str(value).lower()
                if isinstance(value, bool)
                else value
                for key, value in row.items()
            }
        )
    return buffer.getvalue().encode()


def _problem(response: httpx.Response, *, but: str = "") -> dict[str, Any]:
    """The 409 problem without its request ID (and the member `but`)."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return {k: v for k, v in body.items() if k not in {"request_id", but}}


async def _count(service: Harness) -> int:
    response = await service.client().get(URL, params={"limit": 500, "include_unpublished": True})
    return len(response.json()["items"])


async def _together(service: Harness, body: dict[str, Any]) -> list[httpx.Response]:
    clients = [service.client() for _ in range(COPIES)]
    return list(await asyncio.gather(*(c.post(URL, json=body) for c in clients)))


async def test_one_sample_sent_together_is_recorded_once(service: Harness) -> None:
    responses = await _together(service, spot_check())

    assert [r.status_code for r in responses].count(201) == 1, [r.status_code for r in responses]
    assert await _count(service) == 1
    sequential = _problem(await service.client().post(URL, json=spot_check()))
    assert sequential["field"] == "sample_code"
    refused = [r for r in responses if r.status_code != 201]
    assert [_problem(r) for r in refused] == [sequential] * (COPIES - 1)


async def test_one_check_re_inspected_together_is_re_inspected_once(service: Harness) -> None:
    original = await service.client().post(URL, json=spot_check())
    assert original.status_code == 201, original.text
    again = spot_check(reinspection_of=original.json()["id"], result="pass")

    responses = await _together(service, again)

    assert [r.status_code for r in responses].count(201) == 1, [r.status_code for r in responses]
    assert await _count(service) == 2
    sequential = _problem(await service.client().post(URL, json=again))
    assert sequential["field"] == "reinspection_of"
    refused = [r for r in responses if r.status_code != 201]
    assert [_problem(r) for r in refused] == [sequential] * (COPIES - 1)


async def test_two_rows_of_one_import_with_one_sample_store_none(service: Harness) -> None:
    rows = [spot_check(), spot_check(enterprise_credit_code=credit_code(2))]
    response = await service.client().post(IMPORT, content=_csv(rows), headers=CSV_HEADERS)

    assert response.status_code == 422, response.text
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [(3, "sample_code")]
    assert await _count(service) == 0


async def test_an_import_racing_a_post_of_the_same_sample_records_it_once(
    service: Harness,
) -> None:
    rows = [spot_check(sample_code=f"CSV-{n:03d}", result="pass") for n in range(200)]
    body = _csv([*rows, spot_check()])
    imported, posted = await asyncio.gather(
        service.client().post(IMPORT, content=body, headers=CSV_HEADERS),
        service.client().post(URL, json=spot_check()),
    )

    if imported.status_code == 201:
        assert _problem(posted)["field"] == "sample_code"
        assert await _count(service) == len(rows) + 1
    else:
        assert posted.status_code == 201, posted.text
        assert imported.status_code in {409, 422}, imported.text
        assert await _count(service) == 1


async def test_checks_corrected_together_onto_one_sample_keep_it_unique(service: Harness) -> None:
    client = service.client()
    created = [
        await client.post(URL, json=spot_check(sample_code=f"S-{n:04d}", result="pass"))
        for n in range(2, 2 + COPIES)
    ]
    assert all(r.status_code == 201 for r in created)
    change = {"sample_code": "S-9999", "reason": "sample code misread"}

    responses = await asyncio.gather(
        *(
            service.client().patch(
                f"{URL}/{r.json()['id']}", json=change, headers={"If-Match": r.headers["ETag"]}
            )
            for r in created
        )
    )

    assert [r.status_code for r in responses].count(200) == 1, [r.status_code for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    sequential = _problem(
        await client.post(URL, json=spot_check(sample_code="S-9999", result="pass")),
        but="instance",
    )
    assert sequential["existing_id"] == winner["id"]
    refused = [r for r in responses if r.status_code != 200]
    assert [_problem(r, but="instance") for r in refused] == [sequential] * (COPIES - 1)
