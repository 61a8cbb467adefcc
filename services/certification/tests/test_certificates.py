"""Creating, reading and editing certificates over HTTP."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kit.testing import Harness

BASE = {
    "certificate_number": "00120Q31234R2M",
    "standard": "ISO 9001:2015",
    "certification_body": "中國質量認證中心",
    "accreditation_body": "CNAS",
    "enterprise_credit_code": "",
    "enterprise_name": "徐州工程機械集團有限公司",
    "county_code": "320323",
    "scope": "工程機械的設計、生產和服務",
    "sites": ["徐州市銅山區工業園1號", " 徐州市鼓樓區2號 "],
    "issued_on": "2020-02-29",
}


@pytest.fixture
def payload(credit_code: Callable[[int], str]) -> dict[str, Any]:
    return {**BASE, "enterprise_credit_code": credit_code(1)}


async def _count(service: Harness) -> int:
    response = await service.client().get("/api/v1/certificates", params={"limit": 500})
    return len(response.json()["items"])


async def test_create_fills_defaults_and_answers_location_and_etag(
    service: Harness, payload: dict[str, Any]
) -> None:
    response = await service.client().post("/api/v1/certificates", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/certificates/{body['id']}"
    assert response.headers["ETag"]
    # three years after a leap day falls on 28 February
    assert body["expires_on"] == "2023-02-28"
    assert body["original_issued_on"] == "2020-02-29"
    assert body["family"] == "quality"
    assert body["sites"] == ["徐州市銅山區工業園1號", "徐州市鼓樓區2號"]
    assert body["status"] == "expired"  # follows from the date, nothing written
    fetched = await service.client().get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert fetched.json()["certificate_number"] == "00120Q31234R2M"


async def test_explicit_expiry_and_original_issue_are_kept(
    service: Harness, payload: dict[str, Any]
) -> None:
    payload |= {"expires_on": "2035-01-31", "original_issued_on": "2011-05-01"}
    body = (await service.client().post("/api/v1/certificates", json=payload)).json()
    assert body["expires_on"] == "2035-01-31"
    assert body["original_issued_on"] == "2011-05-01"
    assert body["status"] == "valid"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"standard": "ISO 9999:2030"}, "standard"),
        ({"expires_on": "2020-01-01"}, "expires_on"),
        ({"expires_on": "2020-02-29"}, "expires_on"),
        ({"original_issued_on": "2021-01-01"}, "original_issued_on"),
        ({"enterprise_credit_code": "91320303MA1MXXXXX1"}, "enterprise_credit_code"),
        ({"county_code": "320399"}, "county_code"),
        ({"county_code": "3203"}, "county_code"),
        ({"issued_on": "2020-13-01"}, "issued_on"),
        ({"scope": ""}, "scope"),
        ({"status": "revoked"}, "status"),
        ({"sites": ["  "]}, "sites[0]"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
async def test_bad_input_names_the_field_and_stores_nothing(
    service: Harness, payload: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    response = await service.client().post("/api/v1/certificates", json=payload | change)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await _count(service) == 0


async def test_missing_required_field_is_named(service: Harness, payload: dict[str, Any]) -> None:
    del payload["certification_body"]
    response = await service.client().post("/api/v1/certificates", json=payload)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "certification_body"


async def test_number_is_unique_per_certification_body(
    service: Harness, payload: dict[str, Any]
) -> None:
    client = service.client()
    assert (await client.post("/api/v1/certificates", json=payload)).status_code == 201
    again = await client.post("/api/v1/certificates", json=payload)
    assert again.status_code == 409
    assert again.json()["field"] == "certificate_number"
    other_body = payload | {"certification_body": "方圓標志認證集團"}
    assert (await client.post("/api/v1/certificates", json=other_body)).status_code == 201
    assert await _count(service) == 2


async def test_writes_need_the_write_scope_and_reads_the_read_scope(
    service: Harness, payload: dict[str, Any]
) -> None:
    reader = service.client(scopes=["certificates:read"])
    response = await reader.post("/api/v1/certificates", json=payload)
    assert response.status_code == 403
    nobody = service.client(scopes=[])
    assert (await nobody.get("/api/v1/certificates")).status_code == 403
    anonymous = service.client(authenticated=False)
    assert (await anonymous.get("/api/v1/certificates")).status_code == 401


async def test_unknown_id_is_404(service: Harness) -> None:
    response = await service.client().get("/api/v1/certificates/nope")
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_confidential_certificates_are_hidden_without_write_scope(
    service: Harness, payload: dict[str, Any]
) -> None:
    created = (
        await service.client().post("/api/v1/certificates", json=payload | {"confidential": True})
    ).json()
    url = f"/api/v1/certificates/{created['id']}"
    reader = service.client(scopes=["certificates:read"])
    assert (await reader.get(url)).status_code == 404
    assert (await reader.get(f"{url}/history")).status_code == 404
    assert (await reader.get("/api/v1/certificates")).json()["items"] == []
    export = await reader.get("/api/v1/certificates/export")
    assert payload["certificate_number"] not in export.text
    writer = service.client()
    assert (await writer.get(url)).json()["confidential"] is True
    assert len((await writer.get("/api/v1/certificates")).json()["items"]) == 1


async def test_patch_needs_if_match_and_records_the_change(
    service: Harness, payload: dict[str, Any]
) -> None:
    client = service.client(client_id="provincial-platform")
    created = await client.post("/api/v1/certificates", json=payload)
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    change = {"scope": "工程機械的設計和生產", "expires_on": "2035-12-31"}
    missing = await client.patch(url, json=change)
    assert missing.status_code == 428
    stale = await client.patch(url, json=change, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert (await client.get(url)).json()["scope"] == payload["scope"]
    done = await client.patch(url, json=change, headers={"If-Match": etag})
    assert done.status_code == 200, done.text
    assert done.json()["scope"] == "工程機械的設計和生產"
    assert done.json()["status"] == "valid"
    assert done.headers["ETag"] != etag
    reused = await client.patch(url, json={"scope": "x"}, headers={"If-Match": etag})
    assert reused.status_code == 412
    history = (await client.get(f"{url}/history")).json()["items"]
    assert [entry["kind"] for entry in history] == ["created", "updated"]
    assert history[1]["actor_id"] == "provincial-platform"
    assert history[1]["changes"]["expires_on"] == ["2023-02-28", "2035-12-31"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expires_on": "2019-01-01"}, "expires_on"),
        ({"standard": "ISO 1:1"}, "standard"),
        ({"status": "withdrawn"}, "status"),
        ({"certificate_number": None}, "certificate_number"),
        ({"county_code": "110199"}, "county_code"),
    ],
)
async def test_bad_patch_is_rejected_and_changes_nothing(
    service: Harness, payload: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    client = service.client()
    created = await client.post("/api/v1/certificates", json=payload)
    url = created.headers["Location"]
    response = await client.patch(url, json=change, headers={"If-Match": created.headers["ETag"]})
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await client.get(url)).headers["ETag"] == created.headers["ETag"]


async def test_patch_onto_a_taken_number_is_409(service: Harness, payload: dict[str, Any]) -> None:
    client = service.client()
    await client.post("/api/v1/certificates", json=payload)
    second = await client.post(
        "/api/v1/certificates", json=payload | {"certificate_number": "OTHER-1"}
    )
    response = await client.patch(
        second.headers["Location"],
        json={"certificate_number": payload["certificate_number"]},
        headers={"If-Match": second.headers["ETag"]},
    )
    assert response.status_code == 409


async def test_concurrent_updates_one_wins_one_gets_412(
    service: Harness, payload: dict[str, Any]
) -> None:
    client = service.client()
    created = await client.post("/api/v1/certificates", json=payload)
    url, etag = created.headers["Location"], created.headers["ETag"]
    first, second = await asyncio.gather(
        client.patch(url, json={"scope": "甲"}, headers={"If-Match": etag}),
        client.patch(url, json={"scope": "乙"}, headers={"If-Match": etag}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    assert (await client.get(url)).json()["scope"] == winner.json()["scope"]


async def test_idempotency_key_replays_the_first_create(
    service: Harness, payload: dict[str, Any]
) -> None:
    client = service.client()
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post("/api/v1/certificates", json=payload, headers=headers)
    again = await client.post("/api/v1/certificates", json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(
        "/api/v1/certificates", json=payload | {"scope": "x"}, headers=headers
    )
    assert other.status_code == 422
    assert await _count(service) == 1


async def test_nothing_is_hard_deleted(service: Harness, payload: dict[str, Any]) -> None:
    client = service.client()
    created = await client.post("/api/v1/certificates", json=payload)
    assert (await client.delete(created.headers["Location"])).status_code == 405
    assert (await client.get(created.headers["Location"])).status_code == 200
