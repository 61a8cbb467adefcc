"""Incidents: a report, its corrections and lifecycle under If-Match, one record per source
reference (under concurrency too), the county binding, the stats the veto counts (by each
incident's status on `as_of`), the export, the events, and the counterfeit notice delivered
to the brand registry over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from fastapi import FastAPI

from inspection.app import MIGRATIONS, SPEC, VERSION_TABLE, build_app
from inspection.models import metadata
from inspection.settings import Settings
from inspection.tests.support import PAST, TODAY, credit_code
from kit.auth import TokenVerifier, parse_bearer, write_keypair
from kit.db import create_engine
from kit.errors import Unauthorized
from kit.migrations import alembic_config
from kit.testing import (
    Harness,
    ServiceTokens,
    provision_database,
    running_service,
    xlsx_values,
    xlsx_workbook,
)
from kit.xlsxio import XLSX_MEDIA_TYPE as XLSX

URL = "/api/v1/incidents"
SCOPES = ["incidents:read", "incidents:write"]
TONGSHAN, PIZHOU, FENGXIAN = "320323", "320382", "320321"
YEAR = TODAY.year - 1


def incident(**overrides: Any) -> dict[str, Any]:
    """A valid ordinary quality incident of 銅山縣, reported a day after it occurred."""
    body: dict[str, Any] = {
        "kind": "quality_incident",
        "county_code": TONGSHAN,
        "occurred_on": (PAST - timedelta(days=1)).isoformat(),
        "reported_on": PAST.isoformat(),
        "title": "某鎮電線電纜產品質量問題",
        "description": "多家企業生產的電線導體電阻不合格",
        "severity": "ordinary",
        "source_system": "12365",
        "source_reference": "TS-0001",
    }
    body.update(overrides)
    return body


def client(service: Harness, **kwargs: Any) -> httpx.AsyncClient:
    return service.client(scopes=kwargs.pop("scopes", SCOPES), **kwargs)


async def create(service: Harness, **overrides: Any) -> httpx.Response:
    response = await client(service).post(URL, json=incident(**overrides))
    assert response.status_code == 201, response.text
    return response


async def move(service: Harness, incident_id: str, status: str, **body: Any) -> httpx.Response:
    """Change the status with the current ETag."""
    http = client(service)
    etag = (await http.get(f"{URL}/{incident_id}")).headers["ETag"]
    return await http.post(
        f"{URL}/{incident_id}/status", json={"status": status, **body}, headers={"If-Match": etag}
    )


def fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return sorted(error["field"] for error in response.json()["errors"])


async def test_a_report_is_served_with_labels_etag_and_its_history(service: Harness) -> None:
    created = await create(service, enterprise_credit_code=credit_code(1), enterprise_name="某廠")
    body = created.json()
    assert created.headers["Location"] == f"{URL}/{body['id']}"
    assert body["status"] == "reported"
    assert body["status_on"] == PAST.isoformat()
    assert body["kind_label"] == "區域性產品質量問題"
    assert body["severity_label"] == "一般"
    assert body["version"] == 1

    fetched = await client(service).get(f"{URL}/{body['id']}")
    assert fetched.headers["ETag"] == created.headers["ETag"]
    assert fetched.json() == body

    history = (await client(service).get(f"{URL}/{body['id']}/history")).json()
    (entry,) = history["items"]
    assert (entry["action"], entry["to_status"], entry["effective_on"]) == (
        "reported",
        "reported",
        PAST.isoformat(),
    )
    assert entry["changes"]["source_reference"] == "TS-0001"


async def test_the_report_day_defaults_to_today(service: Harness) -> None:
    body = incident()
    del body["reported_on"]
    created = await client(service).post(URL, json=body)
    assert created.json()["reported_on"] == TODAY.isoformat()


async def test_the_lifecycle_moves_under_if_match_and_refuses_illegal_steps(
    service: Harness,
) -> None:
    http = client(service)
    created = await create(service)
    item = created.json()
    path = f"{URL}/{item['id']}/status"

    assert (await http.post(path, json={"status": "confirmed"})).status_code == 428
    stale = await http.post(path, json={"status": "confirmed"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412

    illegal = await move(service, item["id"], "closed")
    assert illegal.status_code == 409
    assert illegal.json()["field"] == "status"
    assert (illegal.json()["current_status"], illegal.json()["requested_status"]) == (
        "reported",
        "closed",
    )

    confirmed = await http.post(
        path,
        json={"status": "confirmed", "reason": "現場核實"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["status_on"] == TODAY.isoformat()
    assert confirmed.headers["ETag"] != created.headers["ETag"]
    again = await http.post(
        path, json={"status": "closed"}, headers={"If-Match": created.headers["ETag"]}
    )
    assert again.status_code == 412

    assert fields(await move(service, item["id"], "dismissed")) == ["reason"]
    assert (await move(service, item["id"], "closed")).status_code == 200
    final = await move(service, item["id"], "dismissed", reason="誤報")
    assert final.status_code == 409
    assert final.json()["current_status"] == "closed"

    history = (await http.get(f"{URL}/{item['id']}/history")).json()["items"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in history] == [
        ("reported", None, "reported"),
        ("status", "reported", "confirmed"),
        ("status", "confirmed", "closed"),
    ]
    assert [e["version"] for e in history] == [1, 2, 3]
    assert history[1]["reason"] == "現場核實"


async def test_a_confirmed_incident_may_be_dismissed_with_a_reason(service: Harness) -> None:
    item = (await create(service)).json()
    assert (await move(service, item["id"], "confirmed")).status_code == 200
    dismissed = await move(service, item["id"], "dismissed", reason="復核後認定不屬實")
    assert dismissed.status_code == 200
    assert dismissed.json()["status_reason"] == "復核後認定不屬實"
    assert (await move(service, item["id"], "confirmed")).status_code == 409


async def test_a_status_change_is_never_dated_before_the_current_status_or_after_today(
    service: Harness,
) -> None:
    item = (await create(service)).json()
    before = (PAST - timedelta(days=1)).isoformat()
    future = (TODAY + timedelta(days=1)).isoformat()
    assert fields(await move(service, item["id"], "confirmed", effective_on=before)) == [
        "effective_on"
    ]
    assert fields(await move(service, item["id"], "confirmed", effective_on=future)) == [
        "effective_on"
    ]
    back_dated = await move(service, item["id"], "confirmed", effective_on=PAST.isoformat())
    assert back_dated.json()["status_on"] == PAST.isoformat()


async def test_validation_names_every_field(service: Harness) -> None:
    http = client(service)
    wrong = incident(
        county_code="320399",
        occurred_on=(TODAY + timedelta(days=1)).isoformat(),
        reported_on=TODAY.isoformat(),
        severity="major",
        counterfeits_brand_id="b-1",
        enterprise_name="某廠",
    )
    assert fields(await http.post(URL, json=wrong)) == [
        "counterfeits_brand_id",
        "county_code",
        "enterprise_credit_code",
        "occurred_on",
        "reported_on",
        "severity_criterion",
    ]
    not_applicable = incident(severity="major", severity_criterion="famous_brand_counterfeit")
    response = await http.post(URL, json=not_applicable)
    assert fields(response) == ["severity_criterion"]
    assert "regional_scope" in response.json()["errors"][0]["message"]
    assert fields(await http.post(URL, json=incident(severity_criterion="casualties"))) == [
        "severity_criterion"
    ]
    assert fields(await http.post(URL, json=incident(severity_criterion="nonsense"))) == [
        "severity_criterion"
    ]
    assert fields(await http.post(URL, json=incident(kind="fire", title=""))) == ["kind", "title"]
    assert fields(await http.post(URL, json={**incident(), "status": "confirmed"})) == ["status"]
    assert (await http.get(URL)).json()["items"] == []


async def test_a_correction_keeps_old_and_new_values_and_is_checked_whole(
    service: Harness,
) -> None:
    http = client(service)
    created = await create(service)
    path = f"{URL}/{created.json()['id']}"
    headers = {"If-Match": created.headers["ETag"]}

    assert fields(await http.patch(path, json={"severity": "major"}, headers=headers)) == ["reason"]
    half = await http.patch(path, json={"severity": "major", "reason": "升級"}, headers=headers)
    assert fields(half) == ["severity_criterion"]
    assert fields(await http.patch(path, json={"title": None, "reason": "x"}, headers=headers)) == [
        "title"
    ]
    change = {"severity": "major", "severity_criterion": "regional_scope", "reason": "波及三個鎮"}
    assert (await http.patch(path, json=change)).status_code == 428
    corrected = await http.patch(path, json=change, headers=headers)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["severity_criterion_label"].startswith("區域性")
    assert corrected.json()["version"] == 2
    assert (await http.patch(path, json=change, headers=headers)).status_code == 412

    entry = (await http.get(f"{path}/history")).json()["items"][-1]
    assert entry["action"] == "corrected"
    assert entry["reason"] == "波及三個鎮"
    assert entry["changes"] == {
        "severity": ["ordinary", "major"],
        "severity_criterion": [None, "regional_scope"],
    }


async def test_a_source_reference_is_recorded_once(service: Harness) -> None:
    http = client(service)
    first = await create(service)
    duplicate = await http.post(URL, json=incident(title="另一標題"))
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "source_reference"
    assert duplicate.json()["existing_id"] == first.json()["id"]
    other_system = await http.post(URL, json=incident(source_system="12315"))
    assert other_system.status_code == 201

    onto = await http.patch(
        f"{URL}/{other_system.json()['id']}",
        json={"source_system": "12365", "reason": "來源系統填錯"},
        headers={"If-Match": other_system.headers["ETag"]},
    )
    assert onto.status_code == 409
    assert onto.json()["field"] == "source_reference"


async def test_twenty_reports_of_one_reference_sent_together_store_one(service: Harness) -> None:
    clients = [client(service) for _ in range(20)]
    responses = await asyncio.gather(*(c.post(URL, json=incident()) for c in clients))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 19, statuses
    winner = next(r for r in responses if r.status_code == 201).json()["id"]
    assert {r.json()["existing_id"] for r in responses if r.status_code == 409} == {winner}
    assert {r.json()["field"] for r in responses if r.status_code == 409} == {"source_reference"}
    assert len((await client(service).get(URL)).json()["items"]) == 1


async def test_a_retried_create_with_its_idempotency_key_answers_the_first(
    service: Harness,
) -> None:
    http = client(service)
    headers = {"Idempotency-Key": "incident-1"}
    first = await http.post(URL, json=incident(), headers=headers)
    retried = await http.post(URL, json=incident(), headers=headers)
    assert (first.status_code, retried.status_code) == (201, 201)
    assert retried.json() == first.json()
    other = await http.post(URL, json=incident(title="改"), headers=headers)
    assert other.status_code == 422


async def test_a_county_bound_client_writes_and_reads_its_county_only(service: Harness) -> None:
    tongshan = await create(service)
    pizhou = await create(service, county_code=PIZHOU, source_reference="PZ-1")
    bound = client(service, county_codes=[PIZHOU])

    refused = await bound.post(URL, json=incident(source_reference="TS-9"))
    assert refused.status_code == 403
    assert refused.json()["field"] == "county_code"
    listed = (await bound.get(URL)).json()["items"]
    assert [item["id"] for item in listed] == [pizhou.json()["id"]]
    assert (await bound.get(f"{URL}/{tongshan.json()['id']}")).status_code == 404
    moved = await bound.post(
        f"{URL}/{tongshan.json()['id']}/status",
        json={"status": "confirmed"},
        headers={"If-Match": tongshan.headers["ETag"]},
    )
    assert moved.status_code == 403
    assert moved.json()["field"] == "county_code"
    onto = await bound.patch(
        f"{URL}/{pizhou.json()['id']}",
        json={"county_code": TONGSHAN, "reason": "x"},
        headers={"If-Match": pizhou.headers["ETag"]},
    )
    assert onto.status_code == 403
    stats = (await bound.get(f"{URL}/stats", params={"year": TODAY.year})).json()
    assert [row["county_code"] for row in stats["by_county"]] == [PIZHOU]

    assert (await service.client(["incidents:read"]).post(URL, json=incident())).status_code == 403
    assert (await service.client(["spot-checks:read"]).get(URL)).status_code == 403


async def test_the_list_filters_and_pages(service: Harness) -> None:
    ids = {}
    for n, (kind, county, severity, criterion, days) in enumerate(
        [
            ("quality_incident", TONGSHAN, "ordinary", None, 40),
            ("food_safety_incident", TONGSHAN, "major", "casualties", 30),
            ("unlicensed_production", PIZHOU, "major", "case_value", 20),
            ("counterfeiting_case", PIZHOU, "ordinary", None, 10),
        ]
    ):
        day = (TODAY - timedelta(days=days)).isoformat()
        created = await create(
            service,
            kind=kind,
            county_code=county,
            severity=severity,
            severity_criterion=criterion,
            occurred_on=day,
            reported_on=day,
            source_reference=f"F-{n}",
        )
        ids[kind] = created.json()["id"]
    await move(service, ids["unlicensed_production"], "confirmed")
    http = client(service)

    async def listed(**params: Any) -> set[str]:
        response = await http.get(URL, params=params)
        assert response.status_code == 200, response.text
        return {item["kind"] for item in response.json()["items"]}

    assert await listed(kind="counterfeiting_case") == {"counterfeiting_case"}
    assert await listed(county_code=TONGSHAN) == {"quality_incident", "food_safety_incident"}
    assert await listed(severity="major") == {"food_safety_incident", "unlicensed_production"}
    assert await listed(status="confirmed") == {"unlicensed_production"}
    occurred = {
        "occurred_from": (TODAY - timedelta(days=30)).isoformat(),
        "occurred_to": (TODAY - timedelta(days=20)).isoformat(),
    }
    assert await listed(**occurred) == {"food_safety_incident", "unlicensed_production"}

    first = (await http.get(URL, params={"limit": 3})).json()
    second = (await http.get(URL, params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert len(first["items"]) == 3
    assert second["next_cursor"] is None
    assert {i["id"] for i in first["items"] + second["items"]} == set(ids.values())

    assert fields(await http.get(URL, params={"county_code": "320399"})) == ["county_code"]
    backwards = {"occurred_from": TODAY.isoformat(), "occurred_to": PAST.isoformat()}
    assert fields(await http.get(URL, params=backwards)) == ["occurred_to"]
    assert (await http.get(URL, params={"status": "open"})).status_code == 422


async def test_export_streams_csv_and_xlsx_under_the_filters(service: Harness) -> None:
    first = (await create(service)).json()
    await create(service, county_code=PIZHOU, source_reference="PZ-1")
    http = client(service)

    exported = await http.get(f"{URL}/export", params={"county_code": TONGSHAN})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(r["id"], r["county_code"], r["status"]) for r in rows] == [
        (first["id"], TONGSHAN, "reported")
    ]
    assert rows[0]["occurred_on"] == first["occurred_on"]

    workbook = await http.get(f"{URL}/export", params={"format": "xlsx"})
    assert workbook.status_code == 200
    cells = xlsx_values(workbook.content)
    assert cells[0][:3] == ["编号", "事件类别", "县区代码"]
    assert sorted(row[2] for row in cells[1:]) == [TONGSHAN, PIZHOU]


IMPORT_HEADER = [
    "kind",
    "county_code",
    "occurred_on",
    "reported_on",
    "title",
    "severity",
    "severity_criterion",
    "source_system",
    "source_reference",
]
CSV = {"Content-Type": "text/csv"}


def _import_row(reference: str, **overrides: str) -> list[str]:
    values = {
        "kind": "food_safety_incident",
        "county_code": TONGSHAN,
        "occurred_on": (PAST - timedelta(days=1)).isoformat(),
        "reported_on": PAST.isoformat(),
        "title": "學校食堂集體食物中毒",
        "severity": "major",
        "severity_criterion": "casualties",
        "source_system": "12331",
        "source_reference": reference,
        **overrides,
    }
    return [values[name] for name in IMPORT_HEADER]


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(IMPORT_HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


async def test_an_import_stores_every_row_or_none_with_a_report_per_row(
    service: Harness,
) -> None:
    http = client(service)
    await create(service, source_system="12331", source_reference="taken")
    bad = _csv(
        [
            _import_row("r-1"),
            _import_row("r-2", severity_criterion=""),
            _import_row("r-1"),
            _import_row("taken"),
            _import_row("r-5", county_code="320399"),
            _import_row("r-6", kind="fire"),
        ]
    )
    refused = await http.post(f"{URL}/import", content=bad, headers=CSV)
    assert refused.status_code == 422, refused.text
    assert sorted((e["line"], e["field"]) for e in refused.json()["errors"]) == [
        (3, "severity_criterion"),
        (4, "source_reference"),
        (5, "source_reference"),
        (6, "county_code"),
        (7, "kind"),
    ]
    assert len((await http.get(URL)).json()["items"]) == 1

    good = _csv([_import_row("r-1"), _import_row("r-2", county_code=PIZHOU)])
    dry = await http.post(f"{URL}/import", params={"dry_run": True}, content=good, headers=CSV)
    assert dry.status_code == 200, dry.text
    assert len((await http.get(URL)).json()["items"]) == 1
    stored = await http.post(f"{URL}/import", content=good, headers=CSV)
    assert stored.status_code == 201, stored.text
    assert stored.json()["rows"] == 2
    items = (await http.get(URL, params={"severity": "major"})).json()["items"]
    assert sorted(i["source_reference"] for i in items) == ["r-1", "r-2"]
    assert {i["status"] for i in items} == {"reported"}
    history = (await http.get(f"{URL}/{items[0]['id']}/history")).json()["items"]
    assert [(e["action"], e["to_status"]) for e in history] == [("imported", "reported")]

    bound = client(service, county_codes=[PIZHOU])
    outside = await bound.post(f"{URL}/import", content=_csv([_import_row("r-9")]), headers=CSV)
    assert outside.status_code == 403
    assert outside.json()["lines"] == [2]


async def test_a_workbook_with_the_labels_imports_and_the_template_has_them(
    service: Harness,
) -> None:
    http = client(service)
    template = await http.get(f"{URL}/import/template.xlsx")
    assert template.status_code == 200
    header = xlsx_values(template.content)[0]
    assert header[:3] == ["事件类别", "县区代码", "发生日期"]

    example = dict(zip(header, xlsx_values(template.content)[1], strict=True))
    assert example["事件类别"] == "counterfeiting_case"
    book = xlsx_workbook(
        [
            "事件类别",
            "县区代码",
            "发生日期",
            "事件名称",
            "严重程度",
            "来源系统",
            "来源编号",
        ],
        [["quality_incident", TONGSHAN, PAST, "某鎮質量問題", "ordinary", "12365", "X-1"]],
    )
    imported = await http.post(f"{URL}/import", content=book, headers={"Content-Type": XLSX})
    assert imported.status_code == 201, imported.text
    (item,) = (await http.get(URL)).json()["items"]
    assert (item["source_reference"], item["occurred_on"]) == ("X-1", PAST.isoformat())


async def test_reports_and_status_changes_are_events(service: Harness) -> None:
    item = (await create(service)).json()
    await move(service, item["id"], "confirmed", reason="核實")
    feed = await service.client(["events:read", "incidents:read"]).get(
        "/api/v1/events", params={"limit": 100}
    )
    assert feed.status_code == 200, feed.text
    events = [e for e in feed.json()["items"] if e["subject"] == f"incidents/{item['id']}"]
    assert [e["type"] for e in events] == ["incident.reported", "incident.status_changed"]
    assert events[1]["data"]["from"] == "reported"
    assert events[1]["data"]["to"] == "confirmed"
    assert events[1]["data"]["item"]["status"] == "confirmed"
    hidden = await service.client(["events:read", "spot-checks:read"]).get(
        "/api/v1/events", params={"limit": 100}
    )
    assert not [e for e in hidden.json()["items"] if e["type"].startswith("incident.")]


def _day(month: int, day: int, year: int = YEAR) -> str:
    return date(year, month, day).isoformat()


async def _recorded(
    service: Harness,
    reference: str,
    *,
    occurred: str,
    steps: Sequence[tuple[str, str]] = (),
    reported: str | None = None,
    **fields_: Any,
) -> str:
    created = await create(
        service,
        source_reference=reference,
        occurred_on=occurred,
        reported_on=reported or occurred,
        **fields_,
    )
    incident_id: str = created.json()["id"]
    for status, effective_on in steps:
        reason = "核查" if status != "dismissed" else "不屬實"
        moved = await move(service, incident_id, status, effective_on=effective_on, reason=reason)
        assert moved.status_code == 200, moved.text
    return incident_id


async def _stats_fixture(service: Harness) -> dict[str, str]:
    """Hand-counted incidents of YEAR in 銅山縣 (a*) and 邳州市 (b*)."""
    return {
        "a1": await _recorded(
            service,
            "a1",
            occurred=_day(3, 1),
            steps=[("confirmed", _day(3, 10))],
            severity_criterion="regional_scope",
            severity="major",
        ),
        "a2": await _recorded(
            service,
            "a2",
            occurred=_day(4, 1),
            steps=[("confirmed", _day(4, 2)), ("closed", _day(5, 1))],
            kind="food_safety_incident",
        ),
        "a3": await _recorded(
            service,
            "a3",
            occurred=_day(5, 20),
            steps=[("confirmed", _day(6, 1)), ("dismissed", _day(7, 1))],
            kind="counterfeiting_case",
            severity_criterion="case_value",
            severity="major",
        ),
        "a4": await _recorded(
            service,
            "a4",
            occurred=_day(6, 5),
            kind="unlicensed_production",
            severity_criterion="case_value",
            severity="major",
        ),
        "a5": await _recorded(
            service,
            "a5",
            occurred=_day(11, 1),
            steps=[("confirmed", _day(1, 1, YEAR + 1))],
            kind="food_safety_incident",
            severity_criterion="casualties",
            severity="major",
        ),
        "a6": await _recorded(
            service,
            "a6",
            occurred=_day(12, 1, YEAR - 1),
            steps=[("confirmed", _day(12, 5, YEAR - 1))],
            severity_criterion="regional_scope",
            severity="major",
        ),
        "b1": await _recorded(
            service,
            "b1",
            occurred=_day(7, 20),
            steps=[("confirmed", _day(8, 1)), ("closed", _day(9, 1))],
            county_code=PIZHOU,
            kind="counterfeiting_case",
            severity_criterion="famous_brand_counterfeit",
            severity="major",
        ),
        "b2": await _recorded(
            service,
            "b2",
            occurred=_day(2, 1),
            steps=[("dismissed", _day(3, 5))],
            county_code=PIZHOU,
        ),
        "b3": await _recorded(
            service,
            "b3",
            occurred=_day(12, 20),
            reported=_day(1, 5, YEAR + 1),
            county_code=PIZHOU,
        ),
    }


async def _stats(service: Harness, **params: Any) -> dict[str, Any]:
    response = await client(service).get(f"{URL}/stats", params={"year": YEAR, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _row(stats: dict[str, Any], county: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in stats["by_county"] if r["county_code"] == county)
    return row


def _counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return (row["reported"], row["confirmed"], row["confirmed_major"], row["dismissed"])


async def test_stats_count_each_incident_by_its_status_on_as_of(service: Harness) -> None:
    ids = await _stats_fixture(service)

    year_end = await _stats(service)
    assert year_end["as_of"] == _day(12, 31)
    tongshan, pizhou = _row(year_end, TONGSHAN), _row(year_end, PIZHOU)
    # a3 dismissed; a4 and a5 still reported (a5 confirmed only after as_of); a6 of last year.
    assert _counts(tongshan) == (4, 2, 1, 1)
    assert tongshan["confirmed_major_ids"] == [ids["a1"]]
    assert tongshan["by_kind"] == {
        "quality_incident": 1,
        "food_safety_incident": 0,
        "unlicensed_production": 0,
        "counterfeiting_case": 0,
    }
    # b1 closed counts as happened; b2 dismissed; b3 reported only after as_of.
    assert _counts(pizhou) == (1, 1, 1, 1)
    assert pizhou["confirmed_major_ids"] == [ids["b1"]]
    assert pizhou["by_kind"]["counterfeiting_case"] == 1
    assert _counts(_row(year_end, FENGXIAN)) == (0, 0, 0, 0)
    totals = year_end["totals"]
    assert (totals["reported"], totals["confirmed"], totals["confirmed_major"]) == (5, 3, 2)
    assert totals["dismissed"] == 2
    assert [(r["id"], r["status"]) for r in year_end["confirmed_major_records"]] == [
        (ids["a1"], "confirmed"),
        (ids["b1"], "closed"),
    ]

    mid_year = await _stats(service, as_of=_day(6, 15))
    # Only incidents that occurred by 15 June; a3 was still confirmed then, b1 not yet there.
    assert _counts(_row(mid_year, TONGSHAN)) == (4, 3, 2, 0)
    assert _row(mid_year, TONGSHAN)["confirmed_major_ids"] == [ids["a1"], ids["a3"]]
    assert _counts(_row(mid_year, PIZHOU)) == (0, 0, 0, 1)

    next_january = await _stats(service, as_of=_day(1, 10, YEAR + 1))
    assert _counts(_row(next_january, TONGSHAN)) == (4, 3, 2, 1)
    assert _row(next_january, TONGSHAN)["confirmed_major_ids"] == [ids["a1"], ids["a5"]]
    assert _counts(_row(next_january, PIZHOU)) == (2, 1, 1, 1)

    one = await _stats(service, county_code=PIZHOU)
    assert [r["county_code"] for r in one["by_county"]] == [PIZHOU]
    assert one["totals"]["confirmed_major"] == 1

    http = client(service)
    early = await http.get(f"{URL}/stats", params={"year": YEAR, "as_of": _day(12, 31, YEAR - 1)})
    assert fields(early) == ["as_of"]
    assert fields(await http.get(f"{URL}/stats", params={"year": YEAR, "county_code": "320399"}))
    assert (await http.get(f"{URL}/stats")).status_code == 422


# The counterfeit notice, delivered over HTTP to a receiver playing the brand registry's
# counterfeit-notice endpoint.

NOTICES = "/api/v1/brands/counterfeit-notices"
MISSING_BRAND = "brand-missing"


class NoticeReceiver:
    """An HTTP server on a local port that checks each notice's token and scope, answers a
    repeat of (source, reference) as the registry does, and 404 for `MISSING_BRAND`."""

    def __init__(self) -> None:
        self.verifier: TokenVerifier | None = None
        self.notices: list[dict[str, Any]] = []
        self.calls = 0
        self.up = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                status, answer = receiver.answer(
                    self.path, self.headers.get("Authorization"), self.rfile.read(length)
                )
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, authorization: str | None, raw: bytes) -> tuple[int, Any]:
        self.calls += 1
        if not self.up.is_set():
            return 503, {"title": "Service Unavailable"}
        if path != NOTICES:
            return 404, {"title": "Not Found"}
        token = parse_bearer(authorization)
        assert self.verifier is not None
        try:
            principal = self.verifier.verify(token or "")
        except Unauthorized:
            return 401, {"title": "Unauthorized"}
        if not principal.has("brands:flag"):
            return 403, {"title": "Forbidden"}
        body = json.loads(raw)
        if body["brand_id"] == MISSING_BRAND:
            return 404, {"title": "Not Found", "field": "brand_id"}
        repeat = any(
            (n["source"], n["reference"]) == (body["source"], body["reference"])
            for n in self.notices
        )
        if not repeat:
            self.notices.append(body)
        return (200 if repeat else 201), {**body, "created": not repeat}


@pytest.fixture(scope="module")
def receiver() -> Iterator[NoticeReceiver]:
    running = NoticeReceiver()
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture(scope="module")
async def notifying(
    receiver: NoticeReceiver,
    service_tokens: ServiceTokens,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Harness]:
    """The inspection service sending its notices to the receiver over HTTP."""

    def build(settings: Settings) -> FastAPI:
        key_file = settings.service_private_key_file
        assert key_file is not None
        public = write_keypair(key_file.parent, key_file.stem).public_pem
        receiver.verifier = TokenVerifier(audience="brand_registry", issuers={"inspection": public})
        return build_app(settings)

    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("incident-notices"),
        default_scopes=SCOPES,
        brand_registry_url=receiver.url,
        outbox_poll_seconds=0.05,
        outbox_backoff_base_seconds=0.05,
        outbox_backoff_max_seconds=0.2,
        alert_sweep_enabled=False,
    ) as harness:
        yield harness


@pytest.fixture
async def notified(notifying: Harness, receiver: NoticeReceiver) -> AsyncIterator[Harness]:
    receiver.up.set()
    yield notifying
    receiver.notices.clear()
    await notifying.reset()


async def _eventually(condition: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def _backlog(service: Harness) -> dict[str, Any]:
    ready = await service.client(authenticated=False).get("/health/ready")
    details: dict[str, Any] = ready.json()["checks"]["outbox"]
    return details


def _case(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "counterfeiting_case",
        "severity": "major",
        "severity_criterion": "famous_brand_counterfeit",
        "counterfeits_brand_id": "brand-1",
        "title": "假冒「彭城」牌速凍水餃案",
        **overrides,
    }


async def test_a_confirmed_counterfeit_of_a_listed_brand_notifies_the_registry_once(
    notified: Harness, receiver: NoticeReceiver
) -> None:
    case = (await create(notified, **_case())).json()
    await asyncio.sleep(0.3)
    assert receiver.notices == [], "a reported case is not yet a notice"

    assert (await move(notified, case["id"], "confirmed")).status_code == 200

    async def delivered() -> bool:
        return len(receiver.notices) == 1 and (await _backlog(notified))["pending"] == 0

    await _eventually(delivered)
    assert receiver.notices == [
        {
            "source": "inspection",
            "reference": case["id"],
            "brand_id": "brand-1",
            "case_kind": "counterfeiting_case",
            "occurred_on": case["occurred_on"],
            "county_code": TONGSHAN,
            "summary": "制售假冒偽劣案件：假冒「彭城」牌速凍水餃案",
        }
    ]
    assert (await move(notified, case["id"], "closed")).status_code == 200
    assert (await move(notified, case["id"], "confirmed")).status_code == 409
    await asyncio.sleep(0.3)
    assert len(receiver.notices) == 1
    brand_fixed = await client(notified).patch(
        f"{URL}/{case['id']}",
        json={"counterfeits_brand_id": "brand-2", "reason": "品牌填錯"},
        headers={"If-Match": (await client(notified).get(f"{URL}/{case['id']}")).headers["ETag"]},
    )
    assert brand_fixed.status_code == 409
    assert brand_fixed.json()["field"] == "counterfeits_brand_id"


async def test_a_case_without_a_listed_brand_or_dismissed_sends_nothing(
    notified: Harness, receiver: NoticeReceiver
) -> None:
    plain = (await create(notified, **_case(counterfeits_brand_id=None))).json()
    assert (await move(notified, plain["id"], "confirmed")).status_code == 200
    dismissed = (await create(notified, **_case(), source_reference="TS-2")).json()
    assert (await move(notified, dismissed["id"], "dismissed", reason="不屬實")).status_code == 200
    await asyncio.sleep(0.4)
    assert receiver.notices == []
    assert (await _backlog(notified))["pending"] == 0


async def test_a_notice_owed_when_the_case_is_dismissed_is_withdrawn(
    notified: Harness, receiver: NoticeReceiver
) -> None:
    receiver.up.clear()
    case = (await create(notified, **_case())).json()
    assert (await move(notified, case["id"], "confirmed")).status_code == 200
    calls = receiver.calls

    async def retried() -> bool:
        return receiver.calls > calls

    await _eventually(retried)
    assert (await move(notified, case["id"], "dismissed", reason="復核為正品")).status_code == 200
    receiver.up.set()
    await asyncio.sleep(0.6)
    assert receiver.notices == []
    backlog = await _backlog(notified)
    assert (backlog["pending"], backlog["failed"]) == (0, 0)


async def test_a_notice_naming_a_brand_the_registry_lacks_is_parked_not_retried(
    notified: Harness, receiver: NoticeReceiver
) -> None:
    case = (await create(notified, **_case(counterfeits_brand_id=MISSING_BRAND))).json()
    assert (await move(notified, case["id"], "confirmed")).status_code == 200

    async def parked() -> bool:
        return bool((await _backlog(notified))["failed"] == 1)

    await _eventually(parked)
    calls = receiver.calls
    await asyncio.sleep(0.4)
    assert receiver.calls == calls
    assert receiver.notices == []


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    (command.downgrade if down else command.upgrade)(config, revision)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_the_migration_creates_and_drops_the_incident_tables(tmp_path: Path) -> None:
    tables = {"incident", "incident_history"}
    async with provision_database("inspection_incidents", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0006")
        assert not tables & await _tables(url)
        await asyncio.to_thread(_migrate, url, "0007")
        assert tables <= await _tables(url)
        await asyncio.to_thread(_migrate, url, "0006", down=True)
        assert not tables & await _tables(url)
