"""Runs: stored standings with their inputs, publication, freezing and the audit trail."""

from typing import Any

import httpx

from kit.testing import Harness

from .builders import TONGSHAN, accepted, reported, small_target_set
from .fakes import FakeDataServices
from .test_standings import _load

RUNS = "/api/v1/assessments/2007/runs"


async def _publish(client: httpx.AsyncClient) -> dict[str, Any]:
    """Create a run and publish it with its ETag; the published run."""
    created = await client.post(RUNS)
    assert created.status_code == 201, created.text
    published = await client.post(
        f"{RUNS}/{created.json()['id']}/publish", headers={"If-Match": created.headers["ETag"]}
    )
    assert published.status_code == 200, published.text
    body: dict[str, Any] = published.json()
    return body


async def test_a_published_run_never_changes(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    created = await client.post(RUNS, json={"note": "year-end"})
    assert created.status_code == 201, created.text
    run = created.json()
    assert created.headers["Location"] == f"{RUNS}/{run['id']}"
    assert (run["status"], run["complete"], run["target_set_version"]) == ("draft", True, 1)
    assert set(run["inputs"]["stats"]) == {
        "brands",
        "certificates",
        "spot_checks?levels=national,provincial",
    }
    assert run["inputs"]["stats"]["brands"]["body"]["totals"]["new_awards"] == 1
    assert run["inputs"]["reference_values"]["provincial_spot_check_pass_rate"]["value"] == 0.9
    assert len(run["inputs"]["reported_values"]) == 22
    published = await client.post(
        f"{RUNS}/{run['id']}/publish", headers={"If-Match": created.headers["ETag"]}
    )
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    again = await client.post(
        f"{RUNS}/{run['id']}/publish", headers={"If-Match": published.headers["ETag"]}
    )
    assert again.status_code == 409

    await accepted(client, reported(TONGSHAN, "industrial_standard_coverage", 0.5))
    data_services.bodies["brands"]["groups"].clear()
    frozen = (await client.get(f"{RUNS}/{run['id']}")).json()
    assert frozen["standings"] == published.json()["standings"]
    scores = {s["county_code"]: s["score"] for s in frozen["standings"]["items"]}
    assert scores[TONGSHAN] == 100.0
    rerun = (await client.post(RUNS)).json()
    assert rerun["id"] != run["id"]
    assert {s["county_code"]: s["score"] for s in rerun["standings"]["items"]}[TONGSHAN] < 100
    listing = (await client.get(RUNS)).json()["items"]
    assert [(r["id"], r["status"]) for r in listing] == [
        (run["id"], "published"),
        (rerun["id"], "draft"),
    ]
    assert "standings" not in listing[0]


async def test_an_incomplete_run_cannot_be_published(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    data_services.modes["spot_checks"] = "down"
    client = service.client()
    created = await client.post(RUNS)
    run = created.json()
    assert run["complete"] is False
    assert run["completeness"]["spot_checks"] == "unreachable: ConnectError"
    refused = await client.post(
        f"{RUNS}/{run['id']}/publish", headers={"If-Match": created.headers["ETag"]}
    )
    assert refused.status_code == 409
    assert "spot_checks: unreachable" in refused.json()["detail"]
    assert (await client.get(f"{RUNS}/{run['id']}")).json()["status"] == "draft"


async def test_publishing_needs_its_own_scope(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    run = (await service.client().post(RUNS)).json()
    writer = service.client(scopes=["assessments:read", "assessments:write"])
    assert (await writer.post(f"{RUNS}/{run['id']}/publish")).status_code == 403
    stale = await service.client().post(
        f"{RUNS}/{run['id']}/publish", headers={"If-Match": '"old"'}
    )
    assert stale.status_code == 412
    without = await service.client().post(f"{RUNS}/{run['id']}/publish")
    assert without.status_code == 428
    assert (await service.client().get(f"{RUNS}/{run['id']}")).json()["status"] == "draft"


async def test_publication_freezes_the_target_set_version(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    run = await _publish(client)
    current = await client.get("/api/v1/target-sets/2007")
    assert current.json()["frozen"] is True
    if_match = {"If-Match": current.headers["ETag"]}
    changed = small_target_set()
    changed["indicators"][2]["margin"] = 0.02
    plain = await client.put("/api/v1/target-sets/2007", json=changed, headers=if_match)
    assert plain.status_code == 409
    assert plain.json()["published_run"] == run["id"]
    changed["supersedes_published"] = True
    without_reason = await client.put("/api/v1/target-sets/2007", json=changed, headers=if_match)
    assert without_reason.status_code == 422
    assert without_reason.json()["errors"][0]["field"] == "reason"
    changed["reason"] = "省局調整抽查考核口徑"
    new_version = await client.put("/api/v1/target-sets/2007", json=changed, headers=if_match)
    assert new_version.status_code == 201
    assert new_version.json()["version"] == 2
    first = (await client.get("/api/v1/target-sets/2007", params={"version": 1})).json()
    assert (first["frozen"], first["indicators"][2]["margin"]) == (True, 0.0)
    listing = (await client.get("/api/v1/target-sets", params={"year": 2007})).json()["items"]
    assert [(s["version"], s["current"], s["frozen"]) for s in listing] == [
        (1, False, True),
        (2, True, False),
    ]
    assert (await client.get(f"{RUNS}/{run['id']}")).json()["target_set_version"] == 1


async def test_the_audit_log_records_runs(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client(client_id="bureau-ui")
    run = await _publish(client)
    entries = (
        await client.get("/api/v1/audit-entries", params={"entity": "run", "entity_id": run["id"]})
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", "bureau-ui"),
        ("publish", "bureau-ui"),
    ]
    assert (entries[1]["before"]["status"], entries[1]["after"]["status"]) == (
        "draft",
        "published",
    )
    assert entries[1]["request_id"]


async def test_a_retried_run_creation_is_not_duplicated(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    headers = {"Idempotency-Key": "run-2007-year-end"}
    first = await client.post(RUNS, json={}, headers=headers)
    second = await client.post(RUNS, json={}, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert len((await client.get(RUNS)).json()["items"]) == 1


async def test_a_new_version_records_its_reason(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    await _publish(client)
    current = await client.get("/api/v1/target-sets/2007")
    changed = {**current.json(), "reason": "省局調整抽查考核口徑", "supersedes_published": True}
    response = await client.put(
        "/api/v1/target-sets/2007", json=changed, headers={"If-Match": current.headers["ETag"]}
    )
    assert response.status_code == 201, response.text
    history = (
        await client.get("/api/v1/audit-entries", params={"entity": "target_set", "limit": 1})
    ).json()
    assert [(e["action"], e["reason"]) for e in history["items"]] == [("create", None)]
    rest = (
        await client.get(
            "/api/v1/audit-entries",
            params={"entity": "target_set", "limit": 1, "cursor": history["next_cursor"]},
        )
    ).json()
    assert [(e["action"], e["entity_id"], e["reason"]) for e in rest["items"]] == [
        ("new_version", "2007/2", "省局調整抽查考核口徑")
    ]


async def test_a_published_year_is_superseded_only_by_name_and_with_a_reason(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    first = await _publish(client)
    created = await client.post(RUNS, json={"note": "after the province's correction"})
    second = created.json()
    path = f"{RUNS}/{second['id']}/publish"
    if_match = {"If-Match": created.headers["ETag"]}
    plain = await client.post(path, headers=if_match)
    assert plain.status_code == 409
    assert plain.json()["published_run"] == first["id"]
    wrong = await client.post(path, headers=if_match, json={"supersedes": second["id"]})
    assert wrong.status_code == 409
    no_reason = await client.post(path, headers=if_match, json={"supersedes": first["id"]})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    reason = "省局更正抽查合格率通報"
    published = await client.post(
        path, headers=if_match, json={"supersedes": first["id"], "reason": reason}
    )
    assert published.status_code == 200, published.text
    assert (published.json()["supersedes"], published.json()["publication_reason"]) == (
        first["id"],
        reason,
    )
    earlier = (await client.get(f"{RUNS}/{first['id']}")).json()
    assert (earlier["status"], earlier["superseded_by"]) == ("published", second["id"])
    assert earlier["standings"] == first["standings"]
    entries = (
        await client.get(
            "/api/v1/audit-entries", params={"entity": "run", "entity_id": first["id"]}
        )
    ).json()["items"]
    assert [(e["action"], e["reason"]) for e in entries] == [
        ("create", None),
        ("publish", None),
        ("superseded", reason),
    ]


async def test_only_a_year_end_run_with_every_county_assessed_is_published(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    client = service.client()
    created = await client.post(RUNS)
    refused = await client.post(
        f"{RUNS}/{created.json()['id']}/publish", headers={"If-Match": created.headers["ETag"]}
    )
    assert refused.status_code == 409
    assert refused.json()["not_assessed"] == [
        "320303",
        "320304",
        "320305",
        "320311",
        "320321",
        "320322",
        "320324",
        "320381",
    ]
    assert "320303: not assessed: no data for weighted indicators" in refused.json()["detail"]
    mid_year = await client.post(RUNS, json={"as_of": "2007-06-30"})
    assert mid_year.json()["provisional"] is True
    early = await client.post(
        f"{RUNS}/{mid_year.json()['id']}/publish",
        headers={"If-Match": mid_year.headers["ETag"]},
    )
    assert early.status_code == 409
    assert "provisional" in early.json()["detail"]
