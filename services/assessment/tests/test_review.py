"""Reported values under review: submitted by a county, accepted or returned by a reviewer;
only accepted figures count, a submitted one is shown as pending review and holds back the
publication; county-bound clients write and read only their counties."""

from typing import Any

import httpx

from kit.testing import Harness

from .builders import (
    GULOU,
    PIZHOU,
    TONGSHAN,
    accepted,
    bound_client,
    reported,
    small_target_set,
)
from .fakes import FakeDataServices
from .test_standings import _load

VALUES = "/api/v1/reported-values"
COVERAGE = "industrial_standard_coverage"
INCIDENTS = "major_quality_incidents"
RUNS = "/api/v1/assessments/2007/runs"


async def _target_set(service: Harness, **overrides: Any) -> None:
    response = await service.client().put(
        "/api/v1/target-sets/2007", json=small_target_set(**overrides)
    )
    assert response.status_code == 201, response.text


async def _submit(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    response = await client.post(VALUES, json=body)
    assert response.status_code == 201, response.text
    return response


async def _decide(
    client: httpx.AsyncClient, value_id: str, etag: str | None, **body: Any
) -> httpx.Response:
    headers = {} if etag is None else {"If-Match": etag}
    return await client.post(f"{VALUES}/{value_id}/status", json=body, headers=headers)


async def test_a_value_is_submitted_then_accepted_or_returned(service: Harness) -> None:
    await _target_set(service)
    county = bound_client(service, [TONGSHAN])
    reviewer = service.client(["assessments:read", "assessments:review"], client_id="reviewer")
    submitted = await _submit(county, reported(TONGSHAN, COVERAGE, 0.96))
    value = submitted.json()
    assert (value["state"], value["comment"], value["reviewed_at"]) == ("submitted", None, None)
    etag = submitted.headers["ETag"]
    assert (await county.get(f"{VALUES}/{value['id']}")).headers["ETag"] == etag

    assert (await _decide(reviewer, value["id"], None, state="accepted")).status_code == 428
    stale = await _decide(reviewer, value["id"], '"stale"', state="accepted")
    assert stale.status_code == 412
    done = await _decide(reviewer, value["id"], etag, state="accepted", comment="核實無誤")
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] != etag
    assert (done.json()["state"], done.json()["reviewed_by"]) == ("accepted", "reviewer")
    again = await _decide(
        reviewer, value["id"], done.headers["ETag"], state="returned", comment="x"
    )
    assert again.status_code == 409
    assert again.json()["current_state"] == "accepted"

    other = await _submit(county, reported(TONGSHAN, INCIDENTS, 0))
    no_comment = await _decide(
        reviewer, other.json()["id"], other.headers["ETag"], state="returned"
    )
    assert no_comment.status_code == 422
    assert no_comment.json()["errors"][0]["field"] == "comment"
    blank = await _decide(
        reviewer, other.json()["id"], other.headers["ETag"], state="returned", comment="  "
    )
    assert blank.status_code == 422
    unknown = await _decide(reviewer, other.json()["id"], other.headers["ETag"], state="approved")
    assert unknown.status_code == 422
    returned = await _decide(
        reviewer,
        other.json()["id"],
        other.headers["ETag"],
        state="returned",
        comment="缺少縣應急管理局的證明",
    )
    assert returned.status_code == 200
    assert (returned.json()["state"], returned.json()["comment"]) == (
        "returned",
        "缺少縣應急管理局的證明",
    )
    assert (
        await _decide(reviewer, other.json()["id"], returned.headers["ETag"], state="accepted")
    ).status_code == 409

    corrected = await _submit(county, reported(TONGSHAN, INCIDENTS, 0))
    old = await county.get(f"{VALUES}/{other.json()['id']}")
    assert (old.json()["state"], old.json()["superseded_by"]) == (
        "returned",
        corrected.json()["id"],
    )
    superseded = await _decide(reviewer, other.json()["id"], old.headers["ETag"], state="accepted")
    assert superseded.status_code == 409
    assert superseded.json()["superseded_by"] == corrected.json()["id"]

    history = await county.get(f"{VALUES}/{corrected.json()['id']}/history")
    assert history.status_code == 200
    chain = history.json()
    assert [(v["id"], v["state"]) for v in chain["items"]] == [
        (other.json()["id"], "returned"),
        (corrected.json()["id"], "submitted"),
    ]
    assert [e["action"] for e in chain["entries"]] == ["report", "return", "correct"]
    assert chain["entries"][1]["actor"] == "reviewer"
    assert chain["entries"][1]["reason"] == "缺少縣應急管理局的證明"
    assert chain["entries"][1]["before"]["state"] == "submitted"
    assert chain["entries"][1]["after"]["state"] == "returned"
    assert chain["entries"][0]["actor"] == "county-client"


async def test_who_may_review(service: Harness) -> None:
    await _target_set(service)
    value = await _submit(service.client(), reported(TONGSHAN, COVERAGE, 0.96))
    etag, value_id = value.headers["ETag"], value.json()["id"]
    writer = service.client(["assessments:read", "assessments:write"])
    refused = await _decide(writer, value_id, etag, state="accepted")
    assert refused.status_code == 403
    bound = bound_client(
        service, [TONGSHAN], ["assessments:read", "assessments:write", "assessments:review"]
    )
    bound_refused = await _decide(bound, value_id, etag, state="accepted")
    assert bound_refused.status_code == 403
    assert bound_refused.headers["content-type"] == "application/problem+json"
    assert "bound to counties" in bound_refused.json()["detail"]
    assert (await service.client().get(f"{VALUES}/{value_id}")).json()["state"] == "submitted"


async def test_a_bound_client_writes_and_reads_its_own_counties(service: Harness) -> None:
    await _target_set(service)
    tongshan = bound_client(service, [TONGSHAN])
    refused = await tongshan.post(VALUES, json=reported(PIZHOU, COVERAGE, 0.9))
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "county_code"
    city = service.client()
    own = await _submit(tongshan, reported(TONGSHAN, COVERAGE, 0.9))
    theirs = await _submit(city, reported(PIZHOU, COVERAGE, 0.9))
    listed = (await tongshan.get(VALUES)).json()["items"]
    assert [v["id"] for v in listed] == [own.json()["id"]]
    assert (await tongshan.get(VALUES, params={"county_code": PIZHOU})).json()["items"] == []
    assert (await tongshan.get(f"{VALUES}/{theirs.json()['id']}")).status_code == 404
    assert (await tongshan.get(f"{VALUES}/{theirs.json()['id']}/history")).status_code == 404
    assert len((await city.get(VALUES)).json()["items"]) == 2
    city_reader = bound_client(service, [TONGSHAN], ["assessments:read", "city:read"])
    assert len((await city_reader.get(VALUES)).json()["items"]) == 2
    audit = (await tongshan.get("/api/v1/audit-entries")).json()["items"]
    assert {e["entity_id"] for e in audit if e["entity"] == "reported_value"} == {
        f"2007/{TONGSHAN}/{COVERAGE}"
    }
    assert any(e["entity"] == "target_set" for e in audit)
    # Standings are the public verdict: city-wide for every reader.
    standings = (await tongshan.get("/api/v1/assessments/2007/standings")).json()
    assert len(standings["items"]) == 11


async def test_the_state_filter(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    await accepted(client, reported(TONGSHAN, COVERAGE, 0.9))
    await _submit(client, reported(PIZHOU, COVERAGE, 0.9))
    pending = (await client.get(VALUES, params={"state": "submitted"})).json()["items"]
    assert [v["county_code"] for v in pending] == [PIZHOU]
    assert (await client.get(VALUES, params={"state": "done"})).status_code == 422


def _row(standings: dict[str, Any], county: str, indicator: str) -> dict[str, Any]:
    standing = next(s for s in standings["items"] if s["county_code"] == county)
    row: dict[str, Any] = next(i for i in standing["indicators"] if i["indicator"] == indicator)
    return row


async def test_a_first_submission_is_pending_review_and_the_county_not_assessed(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    body = small_target_set()
    body["indicators"].append(
        {
            "key": "provincial_agri_demo_zones",
            "name": "新建3個省級農業示範區",
            "source": "reported",
            "measure": {"kind": "reported_value", "unit": "count"},
            "comparator": "at_least",
            "target": 1,
            "weight": 5,
            "allocations": {GULOU: {"target": 1}},
        }
    )
    current = await client.get("/api/v1/target-sets/2007")
    changed = await client.put(
        "/api/v1/target-sets/2007", json=body, headers={"If-Match": current.headers["ETag"]}
    )
    assert changed.status_code == 200, changed.text
    submitted = await _submit(client, reported(GULOU, "provincial_agri_demo_zones", 2))
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    row = _row(standings, GULOU, "provincial_agri_demo_zones")
    assert (row["status"], row["actual"], row["credit"]) == ("pending_review", None, None)
    assert (row["review"]["value"], row["review"]["state"]) == (2, "submitted")
    assert row["review"]["reported_value_id"] == submitted.json()["id"]
    assert "pending review" in row["reason"]
    gulou = next(s for s in standings["items"] if s["county_code"] == GULOU)
    assert (gulou["outcome"], gulou["score"]) == ("not_assessed", None)
    assert gulou["not_assessed"] == ["provincial_agri_demo_zones"]
    run = await client.post(RUNS)
    refused = await client.post(
        f"{RUNS}/{run.json()['id']}/publish", headers={"If-Match": run.headers["ETag"]}
    )
    assert refused.status_code == 409
    assert [p["indicator"] for p in refused.json()["pending_review"]] == [
        "provincial_agri_demo_zones"
    ]


async def test_a_correction_under_review_holds_back_publication(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    correction = await _submit(client, reported(GULOU, COVERAGE, 0.97))
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    row = _row(standings, GULOU, COVERAGE)
    # The accepted 0.76 still counts; the correction is shown beside it, not counted.
    assert (row["status"], row["actual"]) == ("missed", 0.76)
    assert row["review"] == {
        "state": "submitted",
        "value": 0.97,
        "reported_value_id": correction.json()["id"],
        "submitted_at": row["review"]["submitted_at"],
        "comment": None,
    }
    accepted_row = _row(standings, TONGSHAN, COVERAGE)
    assert (accepted_row["status"], accepted_row["actual"]) == ("met", 0.96)
    assert "review" not in accepted_row

    run = await client.post(RUNS)
    assert run.status_code == 201
    assert run.json()["inputs"]["reported_values_under_review"][0]["value"] == 0.97
    refused = await client.post(
        f"{RUNS}/{run.json()['id']}/publish", headers={"If-Match": run.headers["ETag"]}
    )
    assert refused.status_code == 409
    assert refused.json()["pending_review"] == [
        {
            "county_code": GULOU,
            "indicator": COVERAGE,
            "reported_value_id": correction.json()["id"],
            "value": 0.97,
        }
    ]
    assert GULOU in refused.json()["detail"]

    decided = await _decide(
        client, correction.json()["id"], correction.headers["ETag"], state="accepted"
    )
    assert decided.status_code == 200
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    row = _row(standings, GULOU, COVERAGE)
    assert (row["status"], row["actual"]) == ("met", 0.97)
    assert "review" not in row
    run = await client.post(RUNS)
    published = await client.post(
        f"{RUNS}/{run.json()['id']}/publish", headers={"If-Match": run.headers["ETag"]}
    )
    assert published.status_code == 200, published.text


async def test_a_returned_correction_leaves_the_accepted_figure_counting(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    value = await _submit(client, reported(TONGSHAN, COVERAGE, 0.99))
    await _decide(
        client, value.json()["id"], value.headers["ETag"], state="returned", comment="數據無依據"
    )
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    row = _row(standings, TONGSHAN, COVERAGE)
    assert (row["status"], row["actual"]) == ("met", 0.96)
    assert (row["review"]["state"], row["review"]["comment"]) == ("returned", "數據無依據")
    assert "review" not in _row(standings, PIZHOU, COVERAGE)
    run = await client.post(RUNS)
    published = await client.post(
        f"{RUNS}/{run.json()['id']}/publish", headers={"If-Match": run.headers["ETag"]}
    )
    assert published.status_code == 200, published.text


async def test_a_returned_first_report_leaves_no_data(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    value = await _submit(client, reported(TONGSHAN, COVERAGE, 0.99))
    await _decide(
        client, value.json()["id"], value.headers["ETag"], state="returned", comment="數據無依據"
    )
    standings = (await client.get("/api/v1/assessments/2007/standings")).json()
    row = _row(standings, TONGSHAN, COVERAGE)
    assert (row["status"], row["actual"], row["review"]["state"]) == ("no_data", None, "returned")
    assert "數據無依據" in row["reason"]


async def test_the_worklist_of_a_county(service: Harness) -> None:
    body = small_target_set()
    body["indicators"][3]["due_on"] = "2008-01-15"
    body["indicators"].append(
        {
            "key": "provincial_agri_demo_zones",
            "name": "新建3個省級農業示範區",
            "source": "reported",
            "measure": {"kind": "reported_value", "unit": "count"},
            "comparator": "at_least",
            "target": 3,
            "weight": 5,
            "allocations": {PIZHOU: {"target": 3}},
        }
    )
    await service.client().put("/api/v1/target-sets/2007", json=body)
    tongshan = bound_client(service, [TONGSHAN])
    reviewer = service.client()
    coverage = await _submit(tongshan, reported(TONGSHAN, COVERAGE, 0.9))
    await _decide(
        reviewer,
        coverage.json()["id"],
        coverage.headers["ETag"],
        state="returned",
        comment="請附證明",
    )
    worklist = await tongshan.get("/api/v1/assessments/2007/worklist")
    assert worklist.status_code == 200, worklist.text
    body = worklist.json()
    assert (body["year"], body["county_code"], body["county_name"]) == (2007, TONGSHAN, "銅山縣")
    items = {i["indicator"]: i for i in body["items"]}
    assert set(items) == {COVERAGE, INCIDENTS}
    assert items[COVERAGE] == {
        "indicator": COVERAGE,
        "label": "工業產品標準覆蓋率95%以上",
        "due_on": "2008-01-15",
        "state": "returned",
        "value": 0.9,
        "reported_value_id": coverage.json()["id"],
        "comment": "請附證明",
        "submitted_at": items[COVERAGE]["submitted_at"],
        "reviewed_at": items[COVERAGE]["reviewed_at"],
    }
    assert items[COVERAGE]["reviewed_at"] is not None
    assert (items[INCIDENTS]["state"], items[INCIDENTS]["value"], items[INCIDENTS]["due_on"]) == (
        "missing",
        None,
        None,
    )
    corrected = await _submit(tongshan, reported(TONGSHAN, COVERAGE, 0.96))
    await accepted(reviewer, reported(TONGSHAN, INCIDENTS, 0))
    items = {
        i["indicator"]: i
        for i in (
            await tongshan.get(
                "/api/v1/assessments/2007/worklist", params={"county_code": TONGSHAN}
            )
        ).json()["items"]
    }
    assert (items[COVERAGE]["state"], items[COVERAGE]["reported_value_id"]) == (
        "submitted",
        corrected.json()["id"],
    )
    assert items[INCIDENTS]["state"] == "accepted"

    other = await tongshan.get("/api/v1/assessments/2007/worklist", params={"county_code": PIZHOU})
    assert other.status_code == 403
    assert other.json()["errors"][0]["field"] == "county_code"
    city = await reviewer.get("/api/v1/assessments/2007/worklist", params={"county_code": PIZHOU})
    assert [(i["indicator"], i["state"]) for i in city.json()["items"]] == [
        (COVERAGE, "missing"),
        (INCIDENTS, "missing"),
        ("provincial_agri_demo_zones", "missing"),
    ]
    unnamed = await reviewer.get("/api/v1/assessments/2007/worklist")
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "county_code"
    two = bound_client(service, [TONGSHAN, PIZHOU])
    assert (await two.get("/api/v1/assessments/2007/worklist")).status_code == 422
    malformed = await reviewer.get(
        "/api/v1/assessments/2007/worklist", params={"county_code": "32"}
    )
    assert malformed.status_code == 422
    unknown = await reviewer.get(
        "/api/v1/assessments/2007/worklist", params={"county_code": "320399"}
    )
    assert unknown.status_code == 422
    assert (
        await reviewer.get("/api/v1/assessments/2006/worklist", params={"county_code": TONGSHAN})
    ).status_code == 404


async def test_a_veto_figure_under_review_holds_back_publication_whatever_its_weight(
    service: Harness, data_services: FakeDataServices
) -> None:
    """The seed's veto on a major incident carries no weight of its own, yet a report of one
    under review could overturn the county's verdict: it holds the year back like any other."""
    await _load(service, data_services, complete=True)
    client = service.client()
    current = await client.get("/api/v1/target-sets/2007")
    body = small_target_set()
    body["indicators"][-1]["weight"] = 0
    body["indicators"][-2]["weight"] = 30
    changed = await client.put(
        "/api/v1/target-sets/2007", json=body, headers={"If-Match": current.headers["ETag"]}
    )
    assert changed.status_code == 200, changed.text
    incident = await _submit(client, reported(TONGSHAN, INCIDENTS, 1))
    run = await client.post(RUNS)
    refused = await client.post(
        f"{RUNS}/{run.json()['id']}/publish", headers={"If-Match": run.headers["ETag"]}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["pending_review"] == [
        {
            "county_code": TONGSHAN,
            "indicator": INCIDENTS,
            "reported_value_id": incident.json()["id"],
            "value": 1,
        }
    ]
