"""A certification body issues a number once, under concurrency too: identical certificates
sent together store one, and every other request gets the 409 a sequential duplicate gets."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx

from certification.tests.conftest import make_credit_code
from kit.testing import Harness

URL = "/api/v1/certificates"
IMPORT = f"{URL}/import"
COPIES = 20
CSV_HEADERS = {"Content-Type": "text/csv"}


def certificate(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "certificate_number": f"CN-{n:05d}",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": make_credit_code(n),
        "enterprise_name": f"徐州第{n}機械有限公司",
        "county_code": "320323",
        "scope": "工程機械的設計和生產",
        "issued_on": "2020-03-01",
        **fields,
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _problem(response: httpx.Response, *, but: str = "") -> dict[str, Any]:
    """The 409 problem without its request ID (and the member `but`)."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return {k: v for k, v in body.items() if k not in {"request_id", but}}


async def _total(service: Harness) -> int:
    page = (await service.client().get(URL, params={"limit": 500})).json()
    return len(page["items"])


async def test_identical_certificates_sent_together_store_one(service: Harness) -> None:
    clients = [service.client() for _ in range(COPIES)]
    responses = await asyncio.gather(*(c.post(URL, json=certificate()) for c in clients))

    assert [r.status_code for r in responses].count(201) == 1, [r.status_code for r in responses]
    assert await _total(service) == 1
    sequential = _problem(await service.client().post(URL, json=certificate()))
    assert sequential["field"] == "certificate_number"
    refused = [r for r in responses if r.status_code != 201]
    assert [_problem(r) for r in refused] == [sequential] * (COPIES - 1)


async def test_two_rows_of_one_import_with_one_number_store_none(service: Harness) -> None:
    response = await service.client().post(
        IMPORT,
        content=_csv([certificate(1), certificate(2, certificate_number="CN-00001")]),
        headers=CSV_HEADERS,
    )

    assert response.status_code == 422, response.text
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [
        (3, "certificate_number")
    ]
    assert await _total(service) == 0


async def test_an_import_racing_a_post_of_the_same_number_stores_it_once(
    service: Harness,
) -> None:
    rows = [certificate(n, certificate_number=f"IMP-{n}") for n in range(2, 300)]
    body = _csv([*rows, certificate()])
    imported, posted = await asyncio.gather(
        service.client().post(IMPORT, content=body, headers=CSV_HEADERS),
        service.client().post(URL, json=certificate()),
    )

    if imported.status_code == 201:
        assert _problem(posted)["field"] == "certificate_number"
        assert await _total(service) == len(rows) + 1
    else:
        assert posted.status_code == 201, posted.text
        assert imported.status_code in {409, 422}, imported.text
        assert await _total(service) == 1


async def test_certificates_renumbered_together_onto_one_number_keep_it_unique(
    service: Harness,
) -> None:
    client = service.client()
    created = [await client.post(URL, json=certificate(n)) for n in range(2, 2 + COPIES)]
    assert all(r.status_code == 201 for r in created)
    edit = {"certificate_number": "CN-99999"}

    responses = await asyncio.gather(
        *(
            service.client().patch(
                r.headers["Location"], json=edit, headers={"If-Match": r.headers["ETag"]}
            )
            for r in created
        )
    )

    assert [r.status_code for r in responses].count(200) == 1, [r.status_code for r in responses]
    listed = (await client.get(URL, params={"limit": 500})).json()["items"]
    assert [c["certificate_number"] for c in listed].count("CN-99999") == 1
    sequential = _problem(await client.post(URL, json=certificate(1, **edit)), but="instance")
    refused = [r for r in responses if r.status_code != 200]
    assert [_problem(r, but="instance") for r in refused] == [sequential] * (COPIES - 1)
