"""Load the demo city through the gateway's public API, idempotently.

Every resource is matched on its natural key before anything is sent (a brand listing by tier,
enterprise, product and award date; a certificate by body and number; a spot-check by sample
code; a special-equipment inspection by equipment code and day; a licence by number; a
disposition by enterprise; an incident by its source reference; an award by kind, level, year
and enterprise; a reported value by county, year and indicator), so a second run finds
everything and adds nothing. Rows go in by the bulk CSV imports, which store a whole file or
nothing; the plan's other records (a few hundred) one by one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from demo.evidence import CORRECTIONS, Correction, evidence_file
from demo.generate import DemoCity

API = "/api/v1"
READER_NAME = "demo-reader"
READER_SCOPES = [
    "assessments:read",
    "brands:read",
    "certificates:read",
    "spot-checks:read",
    "incidents:read",
    "enterprises:read",
    "events:read",
]
REVIEWER_NAME = "demo-reviewer"
REVIEWER_SCOPES = ["assessments:read", "assessments:review"]
COUNTY_SCOPES = ["assessments:read", "assessments:write"]
PAGE = 500
IMPORT_CHUNK = 2000
WORKERS = 8

BRAND_COLUMNS = (
    "product_name",
    "brand_name",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "tier",
    "sector",
    "award_kind",
    "awarded_on",
    "international_standard",
    "standard_code",
    "batch_code",
)
CERTIFICATE_COLUMNS = (
    "certificate_number",
    "standard",
    "certification_body",
    "accreditation_body",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "issued_on",
    "expires_on",
    "original_issued_on",
    "status",
    "status_since",
)
SPOT_CHECK_COLUMNS = (
    "plan_code",
    "level",
    "product_category",
    "product_name",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "sample_code",
    "sampled_on",
    "result",
    "nonconforming_items",
    "mandatory_standard_violation",
    "testing_lab",
    "report_number",
    "published_on",
)
PROGRAMME_COLUMNS = (
    *SPOT_CHECK_COLUMNS,
    "programme",
    "metrology_subject",
    "instruments_checked",
    "instruments_nonconforming",
    "nominal_quantity",
    "quantity_unit",
    "measured_shortfall",
    "tolerated_deficiency",
    "equipment_code",
    "equipment_kind",
    "next_due_on",
    "major_hazard_source",
)


class LoadError(RuntimeError):
    """The gateway refused part of the demo data; the message says what and why."""


@dataclass
class Report:
    """What one run added, by resource."""

    added: dict[str, int] = field(default_factory=dict)
    reader_key: str = ""
    seconds: float = 0.0

    def total(self) -> int:
        return sum(self.added.values())


def brand_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """A listing's natural key: tier, enterprise, product and award date."""
    return (row["tier"], row["enterprise_credit_code"], row["product_name"], row["awarded_on"])


def certificate_key(row: dict[str, Any]) -> tuple[str, str]:
    """A certificate's natural key: its body and number."""
    return (row["certification_body"], row["certificate_number"])


def to_csv(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> bytes:
    """Rows as a UTF-8 CSV file with a header row of API field names."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Loader:
    """Sends a generated city to a gateway with an admin key."""

    def __init__(
        self,
        client: httpx.Client,
        city: DemoCity,
        *,
        key_file: Path,
        progress: bool = True,
    ) -> None:
        self.client = client
        self.city = city
        self.key_file = key_file
        self.progress = progress
        self.report = Report()
        self.keys: dict[str, str] = {}
        """API keys by client name (the county clients and the reviewer), once made."""

    # HTTP helpers ----------------------------------------------------------------------

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail") or body.get("title")
                errors = body.get("errors") or []
            except ValueError:
                detail, errors = response.text[:500], []
            shown = "; ".join(
                f"{e.get('line', '')} {e.get('field')}: {e.get('message')}".strip()
                for e in errors[:5]
            )
            raise LoadError(
                f"{what}: {response.status_code} {detail}" + (f" ({shown})" if shown else "")
            )
        return response

    def _all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
            page = self._check(self.client.get(path, params=query), f"GET {path}").json()
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def _bar(self, total: int, label: str) -> tqdm[Any]:
        return tqdm(total=total, desc=label, unit="row", disable=not self.progress, leave=False)

    def _import(self, path: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> int:
        if not rows:
            return 0
        with self._bar(len(rows), path.rsplit("/", 2)[-2]) as bar:
            for chunk in _chunks(rows, IMPORT_CHUNK):
                response = self.client.post(
                    f"{path}/import",
                    content=to_csv(chunk, columns),
                    headers={"Content-Type": "text/csv; charset=utf-8"},
                )
                self._check(response, f"POST {path}/import")
                bar.update(len(chunk))
        return len(rows)

    def _post_each(
        self, label: str, bodies: list[Any], send: Callable[[Any], httpx.Response]
    ) -> int:
        if not bodies:
            return 0
        with self._bar(len(bodies), label) as bar, ThreadPoolExecutor(WORKERS) as pool:
            for response in pool.map(send, bodies):
                self._check(response, label)
                bar.update()
        return len(bodies)

    # Steps -----------------------------------------------------------------------------

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Block until the gateway answers its readiness check."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client.get("/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LoadError(f"the gateway at {self.client.base_url} is not ready")
            time.sleep(0.5)

    def target_set(self) -> int:
        year = self.city.year
        response = self.client.get(f"{API}/target-sets/{year}")
        if response.status_code == 200:
            return 0
        if response.status_code != 404:
            self._check(response, f"GET {API}/target-sets/{year}")
        put = self.client.put(f"{API}/target-sets/{year}", json=self.city.target_set)
        self._check(put, f"PUT {API}/target-sets/{year}")
        return 1

    def reference_values(self) -> int:
        added = 0
        for value in self.city.reference_values:
            path = f"{API}/reference-values/{value['year']}/{value['key']}"
            current = self.client.get(path)
            if current.status_code == 200 and current.json()["value"] == value["value"]:
                continue
            if current.status_code not in (200, 404):
                self._check(current, f"GET {path}")
            body = {k: value[k] for k in ("value", "source", "published_on")}
            # Replacing a stored value needs its ETag; a new one is created without.
            headers = {"If-Match": current.headers["ETag"]} if current.status_code == 200 else {}
            self._check(self.client.put(path, json=body, headers=headers), f"PUT {path}")
            added += 1
        return added

    def brands(self) -> int:
        existing = {brand_key(b) for b in self._all(f"{API}/brands")}
        missing = [b for b in self.city.brands if brand_key(b) not in existing]
        return self._import(f"{API}/brands", missing, BRAND_COLUMNS)

    def certificates(self) -> int:
        existing = {certificate_key(c) for c in self._all(f"{API}/certificates")}
        missing = [c for c in self.city.certificates if certificate_key(c) not in existing]
        return self._import(f"{API}/certificates", missing, CERTIFICATE_COLUMNS)

    def _samples(self) -> tuple[dict[str, str], set[str]]:
        """Stored originals by sample code, and the sample codes already re-inspected."""
        originals, reinspected = {}, set()
        for check in self._all(f"{API}/spot-checks"):
            if check.get("reinspection_of"):
                reinspected.add(check["sample_code"])
            else:
                originals[check["sample_code"]] = check["id"]
        return originals, reinspected

    def spot_checks(self) -> int:
        originals, reinspected = self._samples()
        missing = [s for s in self.city.spot_checks if s["sample_code"] not in originals]
        added = self._import(f"{API}/spot-checks", missing, SPOT_CHECK_COLUMNS)
        if missing:
            originals, reinspected = self._samples()
        # A re-inspection names the stored original by id, so these go one at a time.
        bodies = []
        for again in self.city.reinspections:
            if again["sample_code"] in reinspected:
                continue
            body = {k: v for k, v in again.items() if k != "reinspection_of_sample"}
            body["reinspection_of"] = originals[again["reinspection_of_sample"]]
            bodies.append(body)
        added += self._post_each(
            "re-inspections", bodies, lambda b: self.client.post(f"{API}/spot-checks", json=b)
        )
        return added

    def _post_new(self, path: str, label: str, bodies: list[dict[str, Any]]) -> int:
        """POST each body, several at a time."""

        def send(body: dict[str, Any]) -> httpx.Response:
            return self.client.post(path, json=body)

        return self._post_each(label, bodies, send)

    def programme_checks(self) -> int:
        """Metrology checks (by sample code) and special-equipment inspections (by equipment
        code and day) not yet stored."""
        stored = {
            (c.get("sample_code"), c.get("equipment_code"), c["sampled_on"])
            for c in self._all(f"{API}/spot-checks", programme="metrology,special_equipment")
        }
        rows = [*self.city.metrology_checks, *self.city.equipment_inspections]
        missing = [
            {**r, "nonconforming_items": json.dumps(r["nonconforming_items"], ensure_ascii=False)}
            for r in rows
            if (r.get("sample_code"), r.get("equipment_code"), r["sampled_on"]) not in stored
        ]
        return self._import(f"{API}/spot-checks", missing, PROGRAMME_COLUMNS)

    def food_licences(self) -> int:
        path = f"{API}/certificates"
        stored = {c["certificate_number"] for c in self._all(path, kind="food_production_licence")}
        missing = [r for r in self.city.food_licences if r["certificate_number"] not in stored]
        return self._post_new(path, "food licences", missing)

    def geographical_indications(self) -> int:
        stored = {brand_key(b) for b in self._all(f"{API}/brands", tier="geographical_indication")}
        missing = [r for r in self.city.gi_products if brand_key(r) not in stored]
        return self._post_new(f"{API}/brands", "geographical indications", missing)

    def awards(self) -> int:
        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            return (row["kind"], row["level"], row["year"], row["enterprise_credit_code"])

        stored = {key(a) for a in self._all(f"{API}/awards")}
        missing = [r for r in self.city.awards if key(r) not in stored]
        return self._post_new(f"{API}/awards", "awards", missing)

    def _then(self, path: str, created: httpx.Response, changes: list[dict[str, Any]]) -> None:
        """Apply `changes` one after the other, each with the ETag the last answer gave."""
        etag = created.headers["ETag"]
        for change in changes:
            changed = self._check(
                self.client.request(
                    "PATCH" if "disposition" in change else "POST",
                    path,
                    json=change,
                    headers={"If-Match": etag},
                ),
                f"{path} ({change.get('disposition') or change.get('status')})",
            )
            etag = changed.headers["ETag"]

    def dispositions(self) -> int:
        """Each enterprise's first decision of the rectification, then its later ones."""
        path = f"{API}/food-dispositions"
        stored = {d["enterprise_credit_code"] for d in self._all(path)}
        missing = [r for r in self.city.dispositions if r["enterprise_credit_code"] not in stored]

        def send(row: dict[str, Any]) -> httpx.Response:
            body = {k: v for k, v in row.items() if k != "changes"}
            created = self.client.post(path, json=body)
            if created.status_code == 201:
                self._then(f"{path}/{created.json()['id']}", created, row["changes"])
            return created

        return self._post_each("food dispositions", missing, send)

    def incidents(self) -> int:
        """Each incident as reported (by its source reference), then its status changes."""
        path = f"{API}/incidents"
        stored = {i["source_reference"] for i in self._all(path)}
        missing = [r for r in self.city.incidents if r["source_reference"] not in stored]

        def send(row: dict[str, Any]) -> httpx.Response:
            body = {k: v for k, v in row.items() if k != "changes"}
            created = self.client.post(path, json=body)
            if created.status_code == 201:
                status_path = f"{path}/{created.json()['id']}/status"
                self._then(status_path, created, row["changes"])
            return created

        return self._post_each("incidents", missing, send)

    def _as(self, key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    def county_key(self, county_code: str) -> str:
        """The key of the county's own client, bound to it (written to var/keys/<code>.key)."""
        name = f"county-{county_code}"
        if name not in self.keys:
            self.keys[name] = self._client_key(
                name,
                COUNTY_SCOPES,
                self.key_file.parent / f"{county_code}.key",
                county_codes=[county_code],
            )
        return self.keys[name]

    def reviewer_key(self) -> str:
        """The key of the city's assessment office, which reviews the counties' figures."""
        if REVIEWER_NAME not in self.keys:
            self.keys[REVIEWER_NAME] = self._client_key(
                REVIEWER_NAME, REVIEWER_SCOPES, self.key_file.parent / "demo-reviewer.key"
            )
        return self.keys[REVIEWER_NAME]

    def _submit(self, body: dict[str, Any]) -> httpx.Response:
        """A county's submission through its own client, with its evidence PDF."""
        key = self.county_key(body["county_code"])
        submitted = self.client.post(f"{API}/reported-values", json=body, headers=self._as(key))
        if submitted.status_code >= 400:
            return submitted
        name, content = evidence_file(body, self._county_name(body["county_code"]))
        path = f"{API}/reported-values/{submitted.json()['id']}/evidence"
        files = {"file": (name, content, "application/pdf")}
        uploaded = self.client.post(path, files=files, headers=self._as(key))
        return uploaded if uploaded.status_code >= 400 else submitted

    def _county_name(self, code: str) -> str:
        return next(r["name"] for r in self.city.regions if r["code"] == code)

    def _review(self, value: dict[str, Any], etag: str, comment: str | None) -> httpx.Response:
        """The office accepts a submitted value, or returns it with `comment`."""
        decision = {"state": "accepted"} if comment is None else {"state": "returned"}
        if comment is not None:
            decision["comment"] = comment
        return self.client.post(
            f"{API}/reported-values/{value['id']}/status",
            json=decision,
            headers={**self._as(self.reviewer_key()), "If-Match": etag},
        )

    def reported_values(self) -> int:
        """Each county submits its figures (with evidence) through its own client; the
        office accepts every one, so the year can be published."""
        year = self.city.year
        for region in self.city.regions:
            self.county_key(region["code"])
        self.reviewer_key()
        existing = {
            (v["county_code"], v["indicator"])
            for v in self._all(f"{API}/reported-values", year=year, current=True)
        }
        bodies = [
            v
            for v in self.city.reported_values
            if (v["county_code"], v["indicator"]) not in existing
        ]
        added = self._post_each("reported values", bodies, self._submit)
        every = self._all(f"{API}/reported-values", year=year)
        corrections = {v["superseded_by"] for v in every if v["superseded_by"]}
        # A first submission still waiting is accepted; a correction keeps its own review.
        to_accept = [
            v
            for v in every
            if v["state"] == "submitted" and v["current"] and v["id"] not in corrections
        ]
        self._post_each("reviews", to_accept, self._accept)
        return added

    def _accept(self, value: dict[str, Any]) -> httpx.Response:
        current = self.client.get(f"{API}/reported-values/{value['id']}")
        if current.status_code >= 400:
            return current
        return self._review(value, current.headers["ETag"], None)

    def corrections(self) -> int:
        """After publication three counties correct a figure: the office returns two with
        its comment; the third waits for review. The published run is not changed."""
        year = self.city.year
        current = {
            (v["county_code"], v["indicator"]): v
            for v in self._all(f"{API}/reported-values", year=year, current=True)
        }
        added = 0
        for correction in CORRECTIONS:
            earlier = current.get((correction.county_code, correction.indicator))
            if earlier is None or earlier["state"] != "accepted":
                continue  # already corrected (or never reported)
            body = self._correction(correction, earlier)
            submitted = self._check(self._submit(body), "POST /reported-values (correction)")
            if correction.comment is not None:
                self._check(
                    self._review(submitted.json(), submitted.headers["ETag"], correction.comment),
                    "POST /reported-values/{id}/status",
                )
            added += 1
        return added

    def _correction(self, correction: Correction, earlier: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "county_code": correction.county_code,
            "year": earlier["year"],
            "indicator": correction.indicator,
            "value": correction.value,
            "evidence": {
                "document": earlier["evidence"]["document"] + "（更正）",
                "text": f"更正：{correction.value:g}（原報 {earlier['value']:g}）",
            },
            "reported_by": earlier["reported_by"],
            "measured_on": str(earlier["measured_on"]),
        }
        if earlier.get("denominator"):
            denominator = float(earlier["denominator"])
            numerator = float(round(correction.value * denominator))
            body.update(
                numerator=numerator,
                denominator=denominator,
                value=round(numerator / denominator, 4),
            )
        return body

    def published_run(self) -> int:
        """Publish the year's results as of 31 December, unless a publication exists: the
        bureau's signed standings, which the public page shows."""
        year = self.city.year
        runs = f"{API}/assessments/{year}/runs"
        if any(r["superseded_by"] is None for r in self._all(runs, status="published")):
            return 0
        body = {"as_of": f"{year}-12-31", "note": f"{year}年度質量振興考核結果"}
        created = self._check(self.client.post(runs, json=body), f"POST {runs}")
        path = f"{runs}/{created.json()['id']}/publish"
        headers = {"If-Match": created.headers["ETag"]}
        self._check(self.client.post(path, headers=headers), f"POST {path}")
        return 1

    def reader_client(self) -> str:
        """The read-only `demo-reader` client's key: created, or rotated when the file is gone."""
        return self._client_key(READER_NAME, READER_SCOPES, self.key_file)

    def _client_key(
        self,
        name: str,
        scopes: list[str],
        key_file: Path,
        *,
        county_codes: list[str] | None = None,
    ) -> str:
        """The API key of the client `name`: the one in `key_file` while it works, else the
        client's key rotated, else a new client's; written to `key_file`."""
        if key_file.exists() and key_file.read_text().strip():
            key = key_file.read_text().strip()
            probe = self.client.get(f"{API}/regions", headers={"X-API-Key": key})
            if probe.status_code == 200:
                return key
        clients = [
            c
            for c in self._all(f"{API}/admin/clients")
            if c["name"] == name and c["status"] == "active"
        ]
        if clients:
            path = f"{API}/admin/clients/{clients[0]['id']}/rotate"
            key = str(self._check(self.client.post(path), f"POST {path}").json()["api_key"])
        else:
            body: dict[str, Any] = {"name": name, "scopes": scopes}
            if county_codes:
                body["county_codes"] = county_codes
            created = self.client.post(f"{API}/admin/clients", json=body)
            key = str(self._check(created, f"POST {API}/admin/clients").json()["api_key"])
            self.report.added["api clients"] = self.report.added.get("api clients", 0) + 1
        write_key(key_file, key)
        return key

    def run(self) -> Report:
        """Load everything that is missing; answer what was added."""
        started = time.monotonic()
        self.wait_until_ready()
        steps: list[tuple[str, Callable[[], int]]] = [
            ("target sets", self.target_set),
            ("reference values", self.reference_values),
            ("brands", self.brands),
            ("certificates", self.certificates),
            ("spot-checks", self.spot_checks),
            ("programme checks", self.programme_checks),
            ("food licences", self.food_licences),
            ("food dispositions", self.dispositions),
            ("incidents", self.incidents),
            ("geographical indications", self.geographical_indications),
            ("awards", self.awards),
            ("reported values", self.reported_values),
            ("published runs", self.published_run),
            ("corrections", self.corrections),
        ]
        for name, step in tqdm(steps, desc="demo city", unit="step", disable=not self.progress):
            self.report.added[name] = step()
        self.report.reader_key = self.reader_client()
        self.report.seconds = time.monotonic() - started
        return self.report


def write_key(path: Path, key: str) -> None:
    """Store an API key readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
