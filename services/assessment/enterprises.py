"""One view per enterprise: its brand listings, certificates and spot-checks read from the three
data services in parallel, and a search across them by name or credit-code prefix.

The caller sees a section only when it holds the section's read scope, only records of the
counties it reads, and results still under embargo only when it holds `spot-checks:write`;
the data services enforce the same through the token the assessment sends them, bound to the
caller's counties. Like the standings, the answer says in `meta.completeness` how each data
service answered, so a partial view is never a 200 that looks whole.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from assessment.schemas import Source
from assessment.sources import UNPUBLISHED_SCOPE, Listed, ListQuery, StatsFetcher
from kit.auth import Principal
from kit.dates import add_years
from kit.errors import FieldError, Forbidden, NotFound, ValidationFailed

MAX_RECORDS = 1000
"""The records of each kind the view reads of one enterprise; more are reported as truncated."""
SEARCH_RECORDS = 500
"""The records of each kind a search reads for each way it matches."""
EXPIRY_WINDOW_DAYS = 90
REPEATED_FAILURES = 2
"""Failed spot-checks within a year that make an enterprise a repeat offender."""
SEARCH_MIN, SEARCH_MAX = 2, 100
CODE_PREFIX = re.compile(r"^[0-9A-Za-z]{2,18}$")
SOURCES = (Source.brands, Source.certificates, Source.spot_checks)
READ_SCOPES = {
    Source.brands: ("brands:read",),
    Source.certificates: ("certificates:read",),
    Source.spot_checks: ("spot-checks:read", "spot-checks:write"),
}
UNEMBARGO_SCOPE = "spot-checks:write"
DATED = {
    Source.brands: "awarded_on",
    Source.certificates: "issued_on",
    Source.spot_checks: "sampled_on",
}


@dataclass(frozen=True)
class Reach:
    """What the caller may see: the sources it reads, its counties (None: all), the embargo."""

    permitted: tuple[Source, ...]
    counties: frozenset[str] | None
    unembargoed: bool

    @classmethod
    def of(cls, principal: Principal) -> Reach:
        permitted = tuple(s for s in SOURCES if any(map(principal.has, READ_SCOPES[s])))
        if not permitted:
            needed = ", ".join(scope for s in SOURCES for scope in READ_SCOPES[s][:1])
            raise Forbidden(
                f"The enterprise view needs at least one of the scopes {needed}.",
                required_scope=READ_SCOPES[Source.brands][0],
            )
        return cls(permitted, principal.readable_counties(), principal.has(UNEMBARGO_SCOPE))

    def query(self, key: str, source: Source, params: dict[str, str], limit: int) -> ListQuery:
        """The list read of `source` this caller may make, bound to its counties."""
        extra: frozenset[str] = frozenset()
        pairs = dict(params)
        if source is Source.spot_checks and self.unembargoed:
            pairs["include_unpublished"] = "true"
            extra = frozenset({UNPUBLISHED_SCOPE})
        return ListQuery(
            key=key,
            source=source,
            params=tuple(pairs.items()),
            max_items=limit,
            county_codes=self.counties or frozenset(),
            extra_scopes=extra,
        )

    def visible(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of the caller's counties (the data services filter the same)."""
        if self.counties is None:
            return list(items)
        return [item for item in items if item.get("county_code") in self.counties]

    def not_permitted(self) -> dict[str, str]:
        return {
            s.value: f"not_permitted: needs the scope {READ_SCOPES[s][0]}"
            for s in SOURCES
            if s not in self.permitted
        }


async def enterprise_view(
    *, fetcher: StatsFetcher, principal: Principal, credit_code: str, today: date
) -> tuple[dict[str, Any], set[str]]:
    """The view of one enterprise and the names of the sections to leave out; 404 when every
    data service answered and none knows the code (among the caller's counties)."""
    reach = Reach.of(principal)
    queries = [
        reach.query(s.value, s, {"enterprise_credit_code": credit_code}, MAX_RECORDS)
        for s in reach.permitted
    ]
    listed = await fetcher.list_all(queries)
    records = {
        Source(key): reach.visible(result.items) for key, result in listed.items() if result.ok
    }
    if all(result.ok for result in listed.values()) and not any(records.values()):
        raise NotFound(f"No data service knows an enterprise with the credit code {credit_code}.")
    brands = _by_date(records.get(Source.brands, []), "awarded_on")
    certificates = _by_date(records.get(Source.certificates, []), "issued_on")
    spot_checks = _by_date(records.get(Source.spot_checks, []), "sampled_on")
    everything = [(r, DATED[s]) for s in records for r in records[s]]
    newest = max(
        everything, key=lambda pair: (pair[0].get(pair[1]) or "", pair[0]["id"]), default=None
    )
    view: dict[str, Any] = {
        "credit_code": credit_code,
        "name": newest[0].get("enterprise_name") if newest else None,
        "county_codes": sorted({r["county_code"] for r, _ in everything if r.get("county_code")}),
        "brands": _listing_section(brands, listed.get(Source.brands.value)),
        "certificates": _listing_section(certificates, listed.get(Source.certificates.value)),
        "spot_checks": _spot_check_section(spot_checks, listed.get(Source.spot_checks.value)),
        "review_flags": [
            {
                "brand_id": b["id"],
                "product_name": b["product_name"],
                "tier": b["tier"],
                "reason": b.get("review_reason"),
            }
            for b in brands
            if b.get("review_required")
        ],
        "alerts": alerts(
            brands=brands, certificates=certificates, spot_checks=spot_checks, today=today
        ),
        "meta": _meta(listed, reach, as_of=today),
    }
    omitted = {s.value for s in SOURCES if s not in reach.permitted or s not in records}
    if Source.brands.value in omitted:
        omitted.add("review_flags")
    return view, omitted


async def search(
    *, fetcher: StatsFetcher, principal: Principal, q: str, limit: int, today: date
) -> dict[str, Any]:
    """Enterprises whose name holds `q` or whose credit code starts with it, merged across the
    data services by credit code: exact code first, then names starting with `q`."""
    text = q.strip()
    if not SEARCH_MIN <= len(text) <= SEARCH_MAX:
        raise ValidationFailed(
            [FieldError("q", f"must be {SEARCH_MIN} to {SEARCH_MAX} characters besides blanks")]
        )
    reach = Reach.of(principal)
    queries = [
        reach.query(f"{s.value}:name", s, {"q": text}, SEARCH_RECORDS) for s in reach.permitted
    ]
    code = text.upper() if CODE_PREFIX.match(text) else None
    if code:
        queries += [
            reach.query(
                f"{s.value}:code", s, {"enterprise_credit_code_prefix": code}, SEARCH_RECORDS
            )
            for s in reach.permitted
        ]
    listed = await fetcher.list_all(queries)
    failed = {Source(r.source) for r in listed.values() if not r.ok}
    answered = [s for s in reach.permitted if s not in failed]
    needle = text.casefold()
    seen: dict[Source, dict[str, dict[str, Any]]] = {s: {} for s in answered}
    for result in listed.values():
        source = Source(result.source)
        if source not in seen:
            continue
        for record in reach.visible(result.items):
            enterprise = record.get("enterprise_credit_code", "")
            if needle in record.get("enterprise_name", "").casefold() or (
                code and enterprise.startswith(code)
            ):
                seen[source][record["id"]] = record
    matches: dict[str, dict[str, Any]] = {}
    newest: dict[str, tuple[str, str]] = {}
    for source, found in seen.items():
        for record in found.values():
            enterprise = record["enterprise_credit_code"]
            match = matches.setdefault(
                enterprise,
                {"credit_code": enterprise, **{s.value: 0 for s in answered}},
            )
            match[source.value] += 1
            stamp = (str(record.get(DATED[source]) or ""), record["id"])
            if stamp >= newest.get(enterprise, ("", "")):
                newest[enterprise] = stamp
                match["name"] = record["enterprise_name"]
                match["county_code"] = record["county_code"]

    def rank(match: dict[str, Any]) -> tuple[int, str, str]:
        name = match["name"].casefold()
        exact = 0 if match["credit_code"] == code else 1 if name.startswith(needle) else 2
        return exact, match["name"], match["credit_code"]

    return {
        "items": sorted(matches.values(), key=rank)[:limit],
        "meta": _meta(listed, reach, as_of=today),
    }


def alerts(
    *,
    brands: list[dict[str, Any]],
    certificates: list[dict[str, Any]],
    spot_checks: list[dict[str, Any]],
    today: date,
) -> list[dict[str, Any]]:
    """What needs attention today: listings and certificates in force expiring within 90 days,
    suspensions overdue, and two or more failed spot-checks sampled within the last year (after
    the same day a year ago, as the inspection service's repeated-failures list counts)."""
    found: list[dict[str, Any]] = []
    horizon = today + timedelta(days=EXPIRY_WINDOW_DAYS)
    expiring = (
        ("brand", "brands", brands, "valid_until", "active"),
        ("certificate", "certificates", certificates, "expires_on", "valid"),
    )
    for kind, path, records, until, in_force in expiring:
        for record in records:
            due = date.fromisoformat(record[until])
            subject = f"{path}/{record['id']}"
            if record.get("status") == in_force and today <= due <= horizon:
                found.append(
                    {
                        "type": f"{kind}.expiring_soon",
                        "subject": subject,
                        "county_code": record.get("county_code"),
                        "detail": f"in force until {due}, {(due - today).days} days from today",
                        "due_on": due,
                        "days_left": (due - today).days,
                        "ids": [record["id"]],
                    }
                )
            if record.get("status") == "suspended" and record.get("suspension_overdue"):
                found.append(
                    {
                        "type": f"{kind}.suspension_overdue",
                        "subject": subject,
                        "county_code": record.get("county_code"),
                        "detail": "suspended for longer than the limit without being restored or"
                        " withdrawn",
                        "ids": [record["id"]],
                    }
                )
    year_ago = add_years(today, -1)
    failed = [
        check
        for check in spot_checks
        if check.get("reinspection_of") is None
        and check.get("final_result") == "fail"
        and year_ago < date.fromisoformat(check["sampled_on"]) <= today
    ]
    if len(failed) >= REPEATED_FAILURES:
        found.append(
            {
                "type": "spot_check.repeated_failures",
                "subject": f"enterprises/{failed[0]['enterprise_credit_code']}",
                "county_code": failed[0].get("county_code"),
                "detail": f"{len(failed)} failed spot-checks sampled after {year_ago}",
                "ids": [check["id"] for check in failed],
            }
        )
    return found


def _by_date(records: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Newest first."""
    return sorted(records, key=lambda r: (r.get(field) or "", r["id"]), reverse=True)


def _listing_section(records: list[dict[str, Any]], listed: Listed | None) -> dict[str, Any]:
    return {
        "items": records,
        "count": len(records),
        "by_status": dict(sorted(Counter(r["status"] for r in records).items())),
        "truncated": bool(listed and listed.truncated),
    }


def _spot_check_section(records: list[dict[str, Any]], listed: Listed | None) -> dict[str, Any]:
    return {
        "items": records,
        "count": len(records),
        "failed": sum(
            1
            for r in records
            if r.get("reinspection_of") is None and r.get("final_result") == "fail"
        ),
        "latest": records[0] if records else None,
        "truncated": bool(listed and listed.truncated),
    }


def _meta(listed: dict[str, Listed], reach: Reach, *, as_of: date) -> dict[str, Any]:
    """Each source's answer, the worst of its reads: missing, then truncated, then `ok`."""
    completeness: dict[str, str] = {}
    for result in sorted(listed.values(), key=lambda r: (not r.ok, r.truncated)):
        if not result.ok:
            completeness[result.source] = result.reason or "unavailable"
        elif result.truncated:
            completeness[result.source] = (
                f"truncated: only the first {len(result.items)} records were read"
            )
        else:
            completeness[result.source] = "ok"
    completeness.update(reach.not_permitted())
    ordered = {s.value: completeness[s.value] for s in SOURCES if s.value in completeness}
    return {
        "completeness": ordered,
        "complete": all(v == "ok" for v in ordered.values()),
        "not_permitted": [s.value for s in SOURCES if s not in reach.permitted],
        "truncated": sorted({r.source for r in listed.values() if r.ok and r.truncated}),
        "as_of": as_of,
        "sources": {
            key: {
                "query": r.query,
                "ok": r.ok,
                "reason": r.reason,
                "fetched_at": r.fetched_at,
                "elapsed_ms": r.elapsed_ms,
                "attempts": r.attempts,
                "pages": r.pages,
            }
            for key, r in listed.items()
        },
    }
