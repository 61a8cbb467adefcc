"""The demo city: a deterministic, seeded generator of everything the platform keeps.

`generate(seed=..., year=...)` is pure: the same seed and configuration give the same rows,
byte for byte. The rows use the API's field names, so the loader only has to send them. The
figures of the assessed year are built from the target set's county allocations and a
performance profile per county, so the standings differ in a way a reader can follow: some
counties meet most targets, 沛縣 reports a major quality incident (a veto), 睢寧縣 is weak.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from demo import names
from demo.targets import PROVINCIAL_PASS_RATE_KEY, load_target_set
from kit.identifiers import credit_code_check_char

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
FIRST_YEAR_OFFSET = 6  # history starts six years before the assessed year
LEVEL_PREFIX = {"national": "GJ", "provincial": "SJ", "city": "XZ"}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Profile:
    """How a county performs in the assessed year."""

    label: str
    factor: float  # achievement of its allocated counts
    in_force: float  # listings in force against the allocation
    international_share: float
    pass_rate: float
    industrial_coverage: float
    agricultural_coverage: float
    incidents: int = 0  # major quality incidents the county reports itself
    violations: int = 0  # mandatory-standard violations found by provincial spot-checks


# Under the seed's 考核細則 (a target met earns its weight, a target missed none) each
# profile misses what its comment says; see demo/README.md for the standings that follow.
PROFILES = {
    "320302": Profile("strong", 1.3, 1.05, 0.62, 0.962, 0.97, 0.93),  # nothing
    "320323": Profile("strong", 1.4, 1.06, 0.64, 0.968, 0.975, 0.94),  # nothing
    "320311": Profile("strong", 1.1, 1.0, 0.64, 0.958, 0.96, 0.86),  # agri coverage
    "320382": Profile("good", 1.25, 1.04, 0.36, 0.958, 0.97, 0.86),  # share, agri coverage
    "320321": Profile("good", 1.0, 1.0, 0.64, 0.9, 0.96, 0.92),  # pass rate
    "320303": Profile("finding", 1.0, 1.0, 0.36, 0.955, 0.96, 0.92, violations=1),  # share
    "320322": Profile("veto", 1.1, 1.0, 0.64, 0.9, 0.96, 0.92, incidents=1),  # pass rate
    "320381": Profile("fair", 1.0, 1.0, 0.36, 0.9, 0.96, 0.92),  # share, pass rate
    "320304": Profile("fair", 1.0, 1.0, 0.35, 0.955, 0.96, 0.85),  # share, agri coverage
    "320305": Profile("weak", 0.5, 0.78, 0.35, 0.9, 0.96, 0.92),  # most counts, share, pass
    "320324": Profile("weak", 0.4, 0.65, 0.28, 0.86, 0.86, 0.78),  # nearly everything
}
DEFAULT_PROFILE = Profile("fair", 0.9, 0.95, 0.5, 0.935, 0.95, 0.9)
PROVINCIAL_PASS_RATE = 0.925


@dataclass(frozen=True)
class Enterprise:
    """A company of the demo city (enterprises have no resource of their own in the API)."""

    credit_code: str
    name: str
    county_code: str
    trade: names.Trade


@dataclass
class DemoCity:
    """Everything the loader sends, in the API's field names."""

    seed: int
    year: int
    regions: list[dict[str, str]]
    target_set: dict[str, Any]
    enterprises: list[Enterprise]
    brands: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    spot_checks: list[dict[str, Any]] = field(default_factory=list)
    reinspections: list[dict[str, Any]] = field(default_factory=list)
    reference_values: list[dict[str, Any]] = field(default_factory=list)
    reported_values: list[dict[str, Any]] = field(default_factory=list)
    metrology_checks: list[dict[str, Any]] = field(default_factory=list)
    equipment_inspections: list[dict[str, Any]] = field(default_factory=list)
    food_licences: list[dict[str, Any]] = field(default_factory=list)
    dispositions: list[dict[str, Any]] = field(default_factory=list)
    """Each enterprise's first decision, with its later decisions under `changes`."""
    incidents: list[dict[str, Any]] = field(default_factory=list)
    """Each incident as reported, with its status changes under `changes`."""
    gi_products: list[dict[str, Any]] = field(default_factory=list)
    awards: list[dict[str, Any]] = field(default_factory=list)


def organization_code_check(body: str) -> str:
    """The ninth character of a GB 11714 organization code whose first eight are digits."""
    total = sum(int(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def credit_code(rng: random.Random, county_code: str) -> str:
    """A valid unified social credit code of an enterprise registered in `county_code`."""
    body = f"{rng.randrange(10**8):08d}"
    first17 = f"91{county_code}{body}{organization_code_check(body)}"
    return first17 + credit_code_check_char(first17)


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _day(rng: random.Random, year: int, start: tuple[int, int], end: tuple[int, int]) -> date:
    first, last = date(year, *start), date(year, *end)
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _achieved(target: float, factor: float) -> int:
    return max(0, round(target * factor))


class _Allocations:
    """The target set's per-county figures, looked up by what they measure."""

    def __init__(self, target_set: dict[str, Any]) -> None:
        self.indicators: list[dict[str, Any]] = target_set["indicators"]

    def _find(self, kind: str, tier: str | None = None) -> dict[str, Any] | None:
        for indicator in self.indicators:
            measure = indicator["measure"]
            if measure["kind"] == kind and (tier is None or measure.get("tier") == tier):
                return indicator
        return None

    def county_targets(self, kind: str, tier: str | None = None) -> dict[str, float]:
        indicator = self._find(kind, tier)
        if indicator is None:
            return {}
        return {
            code: float(a.get("target") or 0)
            for code, a in (indicator.get("allocations") or {}).items()
        }

    def reported(self) -> list[dict[str, Any]]:
        return [i for i in self.indicators if i["measure"]["kind"] == "reported_value"]


class _Generator:
    def __init__(self, seed: int, year: int, config_dir: Path) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.year = year
        self.first_year = year - FIRST_YEAR_OFFSET
        self.regions: list[dict[str, str]] = _read_json(config_dir / "regions.json")
        self.tiers = {t["code"]: t for t in _read_json(config_dir / "brand_tiers.json")}
        self.target_set = load_target_set(year, config_dir)
        self.alloc = _Allocations(self.target_set)
        self.codes = [r["code"] for r in self.regions]
        self.by_county: dict[str, list[Enterprise]] = {}
        self.used_products: set[tuple[str, str, str]] = set()
        self.international: dict[str, tuple[int, int]] = {}

    def profile(self, code: str) -> Profile:
        return PROFILES.get(code, DEFAULT_PROFILE)

    # Enterprises -----------------------------------------------------------------------

    def enterprises(self) -> list[Enterprise]:
        taken_codes: set[str] = set()
        taken_names: set[str] = set()
        everyone: list[Enterprise] = []
        weights = [
            6 if t.sector == "industry" else 3 if t.sector == "agriculture" else 2
            for t in names.TRADES
        ]
        for region in self.regions:
            code = region["code"]
            prefix = "徐州" if region["kind"] == "district" else region["name"][:2]
            count = 240 + self.rng.randrange(80)
            pool: list[Enterprise] = []
            while len(pool) < count:
                trade = self.rng.choices(names.TRADES, weights)[0]
                form = self.rng.choice(names.LEGAL_FORMS[trade.sector])
                name = f"{prefix}{self.rng.choice(names.TRADE_NAMES)}{trade.business}{form}"
                if name in taken_names:
                    continue
                number = credit_code(self.rng, code)
                if number in taken_codes:
                    continue
                taken_names.add(name)
                taken_codes.add(number)
                pool.append(Enterprise(number, name, code, trade))
            self.by_county[code] = pool
            everyone += pool
        return everyone

    # Brands ----------------------------------------------------------------------------

    def _new_listing(
        self, county: str, tier: str, awarded_on: date, international_share: float
    ) -> dict[str, Any]:
        pool = self.by_county[county]
        for _ in range(200):
            enterprise = self.rng.choice(pool)
            if tier == "national_inspection_exempt" and enterprise.trade.sector == "service":
                continue
            product = self.rng.choice(enterprise.trade.products)
            key = (tier, enterprise.credit_code, product)
            if key not in self.used_products:
                self.used_products.add(key)
                break
        # Spread evenly rather than drawn, so a county's share is its profile's, not luck.
        made, total = self.international.get(county, (0, 0))
        international = made < international_share * (total + 1) - 0.5
        self.international[county] = (made + international, total + 1)
        standards = names.ADVANCED_STANDARDS.get(enterprise.trade.product_category, ("ISO 9001",))
        return {
            "product_name": product,
            "brand_name": enterprise.name.split(enterprise.trade.business)[0][-2:] + "牌",
            "enterprise_credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "county_code": county,
            "tier": tier,
            "sector": enterprise.trade.sector,
            "award_kind": "new",
            "awarded_on": awarded_on,
            "international_standard": international,
            "standard_code": self.rng.choice(standards) if international else "",
            "batch_code": f"{awarded_on.year}-{tier}",
        }

    def _award_day(self, tier: str, year: int) -> date:
        # Each tier is announced in one batch a year, at a date that suits its issuer.
        months = {
            "china_famous": 9,
            "national_inspection_exempt": 6,
            "provincial_famous": 12,
            "city_famous": 10,
        }
        day = {
            "china_famous": 10,
            "national_inspection_exempt": 18,
            "provincial_famous": 8,
            "city_famous": 20,
        }
        closed = self.tiers[tier].get("awards_closed_after")
        awarded = date(year, months[tier], day[tier])
        if closed and awarded > date.fromisoformat(closed):
            awarded = date.fromisoformat(closed)
        return awarded

    def brands(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for county in self.codes:
            profile = self.profile(county)
            for tier, policy in self.tiers.items():
                if policy.get("validity_years") is None:
                    continue  # geographical indications: `recognitions.gi_products`
                rows += self._tier_listings(county, tier, int(policy["validity_years"]), profile)
        rows.sort(
            key=lambda r: (
                r["awarded_on"],
                r["tier"],
                r["enterprise_credit_code"],
                r["product_name"],
            )
        )
        for row in rows:
            row["awarded_on"] = row["awarded_on"].isoformat()
        return rows

    def _yearly_new(
        self, county: str, tier: str, profile: Profile, per_year: float | None
    ) -> dict[int, int]:
        """New awards per year; the assessed year's come from the allocation."""
        targets = self.alloc.county_targets("new_awards", tier)
        base = {
            "china_famous": 0.3,
            "national_inspection_exempt": 0.9,
            "provincial_famous": 1.6,
            "city_famous": 4.5,
        }[tier]
        expected = per_year if per_year is not None else base * profile.factor
        counts: dict[int, int] = {}
        for year in range(self.first_year, self.year + 1):
            counts[year] = int(expected) + (self.rng.random() < expected % 1)
        if tier in ("china_famous", "national_inspection_exempt"):
            counts[self.year] = 0
        if county in targets:
            counts[self.year] = _achieved(targets[county], profile.factor)
        return counts

    def _tier_listings(
        self, county: str, tier: str, validity: int, profile: Profile
    ) -> list[dict[str, Any]]:
        share = profile.international_share
        in_force_targets = self.alloc.county_targets("in_force", tier)
        wanted = None
        if county in in_force_targets:
            wanted = _achieved(in_force_targets[county], profile.in_force)
        new = self._yearly_new(
            county, tier, profile, None if wanted is None else wanted / (validity * 1.6)
        )
        window = range(self.year + 1 - validity, self.year + 1)
        by_year: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for year in range(self.first_year, self.year + 1):
            for _ in range(new[year]):
                by_year[year].append(
                    self._new_listing(county, tier, self._award_day(tier, year), share)
                )
        for year in range(self.first_year, self.year + 1):
            for listing in list(by_year[year]):
                renewal_year = year + validity
                # Most holders renew when the listing lapses; renewals are not "new" awards.
                if renewal_year <= self.year and self.rng.random() < 0.6:
                    renewed = dict(listing)
                    renewed["award_kind"] = "renewal"
                    renewed["awarded_on"] = self._award_day(tier, renewal_year)
                    renewed["batch_code"] = f"{renewal_year}-{tier}"
                    by_year[renewal_year].append(renewed)
        if wanted is not None:
            self._fit_in_force(county, tier, by_year, window, wanted, share)
        return [listing for year in sorted(by_year) for listing in by_year[year]]

    def _fit_in_force(
        self,
        county: str,
        tier: str,
        by_year: dict[int, list[dict[str, Any]]],
        window: range,
        wanted: int,
        share: float,
    ) -> None:
        """Make exactly `wanted` listings in force at year end, by adding or dropping awards."""
        earlier = [y for y in window if y != self.year]
        have = sum(len(by_year[y]) for y in window)
        for index in range(max(0, wanted - have)):
            year = earlier[index % len(earlier)]
            by_year[year].append(
                self._new_listing(county, tier, self._award_day(tier, year), share)
            )
        # Renewals inside the window have no renewal of their own, so dropping them is safe;
        # then earlier-year new awards, which nothing in the data renews either.
        for kind in ("renewal", "new"):
            for year in earlier:
                while have > wanted and any(r["award_kind"] == kind for r in by_year[year]):
                    by_year[year].remove(next(r for r in by_year[year] if r["award_kind"] == kind))
                    have -= 1

    # Certificates ----------------------------------------------------------------------

    def certificates(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        targets = self.alloc.county_targets("new_certified_enterprises")
        serial = 0
        for county in self.codes:
            profile = self.profile(county)
            pool = list(self.by_county[county])
            self.rng.shuffle(pool)
            firsts: dict[int, int] = {}
            for year in range(self.first_year - 1, self.year):
                firsts[year] = 10 + self.rng.randrange(12)
            firsts[self.year] = _achieved(targets.get(county, 2), profile.factor)
            cursor = 0
            for year, count in firsts.items():
                for enterprise in pool[cursor : cursor + count]:
                    serial += 1
                    rows += self._enterprise_certificates(enterprise, year, serial)
                cursor += count
        rows.sort(key=lambda r: (r["issued_on"], r["certification_body"], r["certificate_number"]))
        return rows

    def _certificate(
        self,
        enterprise: Enterprise,
        standard: str,
        body: str,
        issued_on: date,
        original: date,
        serial: int,
        cycle: int,
    ) -> dict[str, Any]:
        letter = {"9": "Q", "1": "E", "2": "F", "O": "S", "H": "F", "G": "Q"}[
            standard.split(" ")[1][0] if standard.startswith(("ISO", "GB")) else standard[0]
        ]
        prefix = f"{names.CERTIFICATION_BODIES.index(body) + 1:03d}"
        number = f"{prefix}{issued_on.year % 100:02d}{letter}{serial:05d}R{cycle}M"
        return {
            "certificate_number": number,
            "standard": standard,
            "certification_body": body,
            "accreditation_body": names.ACCREDITATION_BODY,
            "enterprise_credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "county_code": enterprise.county_code,
            "scope": enterprise.trade.scope,
            "issued_on": issued_on.isoformat(),
            "expires_on": (_add_years(issued_on, 3) - timedelta(days=1)).isoformat(),
            "original_issued_on": original.isoformat(),
            "status": "valid",
            "status_since": "",
        }

    def _enterprise_certificates(
        self, enterprise: Enterprise, first_year: int, serial: int
    ) -> list[dict[str, Any]]:
        body = self.rng.choice(names.CERTIFICATION_BODIES)
        first = _day(self.rng, first_year, (1, 15), (12, 10))
        if first_year == self.year:
            first = _day(self.rng, first_year, (1, 15), (11, 30))
        plans: list[tuple[str, date]] = [("quality", first)]
        if self.rng.random() < 0.35:
            plans.append(("environment", first + timedelta(days=200 + self.rng.randrange(500))))
        if enterprise.trade.product_category == "food" and self.rng.random() < 0.5:
            plans.append(("food_safety", first + timedelta(days=100 + self.rng.randrange(700))))
        rows = []
        for number, (family, issued) in enumerate(plans):
            if family != "quality" and issued.year > self.year:
                continue
            original = issued
            cycle = 0
            while issued.year <= self.year:
                standard = self._standard(family, issued, enterprise)
                if standard is None:
                    break
                row = self._certificate(
                    enterprise, standard, body, issued, original, serial * 10 + number, cycle
                )
                rows.append(row)
                cycle += 1
                issued = _add_years(issued, 3) - timedelta(days=20)
        self._statuses(rows, first_year)
        return rows

    def _standard(self, family: str, issued: date, enterprise: Enterprise) -> str | None:
        chinese = self.rng.random() < 0.3
        if family == "quality":
            return "GB/T 19001-2000" if chinese else "ISO 9001:2000"
        if family == "environment":
            if issued < date(2005, 5, 15):
                return None
            return "GB/T 24001-2004" if chinese else "ISO 14001:2004"
        if issued >= date(2006, 7, 1) and self.rng.random() < 0.5:
            return "ISO 22000:2005"
        return "HACCP"

    def _statuses(self, rows: list[dict[str, Any]], first_year: int) -> None:
        # Suspensions and withdrawals hit established holders, never a first certificate of
        # the assessed year, so the year's "newly certified" figure stays what was allocated.
        if first_year >= self.year or not rows:
            return
        roll = self.rng.random()
        row = rows[-1]
        issued = date.fromisoformat(row["issued_on"])
        if issued.year >= self.year:
            return
        since = issued + timedelta(days=120 + self.rng.randrange(200))
        if roll < 0.04:
            row["status"], row["status_since"] = "suspended", since.isoformat()
        elif roll < 0.07:
            row["status"], row["status_since"] = "withdrawn", since.isoformat()

    # Spot-checks -----------------------------------------------------------------------

    def spot_checks(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        originals: list[dict[str, Any]] = []
        reinspections: list[dict[str, Any]] = []
        serial = 0
        for year in range(self.year - 2, self.year + 1):
            for county in self.codes:
                profile = self.profile(county)
                for level, low, high in (
                    ("national", 8, 14),
                    ("provincial", 24, 40),
                    ("city", 20, 36),
                ):
                    count = low + self.rng.randrange(high - low + 1)
                    rate = profile.pass_rate if level != "city" else 0.9
                    if year != self.year:
                        rate = min(0.99, rate + self.rng.uniform(-0.03, 0.02))
                    fails = round(count * (1 - rate))
                    failing = set(self.rng.sample(range(count), fails))
                    # A few failures are overturned by a re-inspection: those samples fail
                    # first, then pass, and count as passed.
                    overturned = {
                        i for i in range(count) if i not in failing and self.rng.random() < 0.02
                    }
                    # The county's mandatory-standard violations of the assessed year are
                    # findings of provincial checks that stay failed.
                    violating = set()
                    if year == self.year and level == "provincial":
                        violating = set(sorted(failing)[: profile.violations])
                    for index in range(count):
                        serial += 1
                        check = self._check(county, level, year, serial)
                        if index in failing or index in overturned:
                            self._fail(check)
                        if index in violating:
                            check["mandatory_standard_violation"] = True
                        originals.append(check)
                        if index in overturned:
                            reinspections.append(self._reinspection(check, passed=True))
                        elif (
                            index in failing and index not in violating and self.rng.random() < 0.15
                        ):
                            reinspections.append(self._reinspection(check, passed=False))
        originals.sort(key=lambda r: (r["sampled_on"], r["sample_code"]))
        return originals, reinspections

    def _check(self, county: str, level: str, year: int, serial: int) -> dict[str, Any]:
        pool = [e for e in self.by_county[county] if e.trade.sector != "service"]
        enterprise = self.rng.choice(pool)
        sampled = _day(self.rng, year, (3, 1), (11, 5))
        quarter = (sampled.month - 1) // 3 + 1
        category = enterprise.trade.product_category
        return {
            "plan_code": f"{year}-{LEVEL_PREFIX[level]}-Q{quarter}-{category}",
            "level": level,
            "product_category": category,
            "product_name": self.rng.choice(enterprise.trade.products),
            "enterprise_credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "county_code": county,
            "sample_code": f"{LEVEL_PREFIX[level]}{year}{county[-4:]}{serial:05d}",
            "sampled_on": sampled.isoformat(),
            "result": "pass",
            "nonconforming_items": "",
            "mandatory_standard_violation": False,
            "testing_lab": self.rng.choice(names.TESTING_LABS),
            "report_number": f"W{year}{serial:06d}",
            "published_on": (sampled + timedelta(days=20 + self.rng.randrange(25))).isoformat(),
        }

    def _fail(self, check: dict[str, Any]) -> None:
        options = names.NONCONFORMITIES.get(
            check["product_category"], names.NONCONFORMITIES["light_industry"]
        )
        chosen = self.rng.sample(options, k=min(len(options), 1 + self.rng.randrange(2)))
        check["result"] = "fail"
        check["nonconforming_items"] = json.dumps(
            [{"item": i, "requirement": r, "measured": m} for i, r, m in chosen],
            ensure_ascii=False,
        )

    def _reinspection(self, check: dict[str, Any], *, passed: bool) -> dict[str, Any]:
        sampled = date.fromisoformat(check["sampled_on"]) + timedelta(days=15)
        body = {
            key: check[key]
            for key in (
                "plan_code",
                "level",
                "product_category",
                "product_name",
                "enterprise_credit_code",
                "enterprise_name",
                "county_code",
                "testing_lab",
            )
        }
        body.update(
            sample_code=check["sample_code"],
            sampled_on=sampled.isoformat(),
            published_on=(sampled + timedelta(days=10)).isoformat(),
            report_number=f"{check['report_number']}-FJ",
            result="pass" if passed else "fail",
            nonconforming_items=[] if passed else json.loads(check["nonconforming_items"]),
            reinspection_of_sample=check["sample_code"],
            reason="復檢：企業對檢驗結果提出異議" if passed else "復檢：整改後複查",
        )
        return body

    # Reported and reference values -----------------------------------------------------

    def reference_values(self) -> list[dict[str, Any]]:
        values = []
        for year in range(self.year - 2, self.year + 1):
            value = (
                PROVINCIAL_PASS_RATE
                if year == self.year
                else round(
                    PROVINCIAL_PASS_RATE
                    - 0.01 * (self.year - year)
                    + self.rng.uniform(-0.004, 0.004),
                    4,
                )
            )
            values.append(
                {
                    "key": PROVINCIAL_PASS_RATE_KEY,
                    "year": year,
                    "value": value,
                    "source": f"江蘇省質量技術監督局《{year}年全省產品質量監督抽查情況通報》",
                    "published_on": date(year + 1, 1, 25).isoformat(),
                }
            )
        return values

    def reported_values(self) -> list[dict[str, Any]]:
        rows = []
        names_by_code = {r["code"]: r["name"] for r in self.regions}
        for indicator in self.alloc.reported():
            key = indicator["measure"].get("key") or indicator["key"]
            unit = indicator["measure"].get("unit", "count")
            for county in self.codes:
                value = self._reported_value(indicator, unit, county)
                if value is None:
                    continue
                fraction = self._fraction(key, value, county) if unit == "rate" else {}
                if fraction:
                    value = round(fraction["numerator"] / fraction["denominator"], 4)
                rows.append(
                    {
                        "county_code": county,
                        "year": self.year,
                        "indicator": key,
                        "value": value,
                        **fraction,
                        "evidence": {
                            "document": f"{names_by_code[county]}{self.year}年質量振興工作總結",
                            "text": f"{indicator['name']}：{value:g}（經{names_by_code[county]}"
                            f"質量技術監督局核實）",
                        },
                        "reported_by": f"{names_by_code[county]}質量技術監督局",
                        "measured_on": date(self.year, 12, 31).isoformat(),
                    }
                )
        return rows

    def _fraction(self, key: str, rate: float, county: str) -> dict[str, float]:
        """A reported rate's numerator and denominator: the county's products (industrial, or
        leading agricultural ones) and those made to a standard."""
        products = len(self.by_county[county]) * (2 if "industrial" in key else 1) // 3
        return {"numerator": float(round(products * rate)), "denominator": float(products)}

    def _reported_value(self, indicator: dict[str, Any], unit: str, county: str) -> float | None:
        profile = self.profile(county)
        comparator = indicator["comparator"]
        allocations = indicator.get("allocations") or {}
        if comparator == "zero":
            return float(profile.incidents)
        if comparator == "milestone":
            if county not in allocations:
                return None
            return 1.0 if profile.factor >= 1 else 0.0
        if unit == "rate":
            if "agri" in indicator["key"]:
                base = profile.agricultural_coverage
            else:
                base = profile.industrial_coverage
            return round(max(0.0, min(1.0, base)), 3)
        if county in allocations:
            return float(_achieved(float(allocations[county].get("target") or 0), profile.factor))
        return None


def generate(*, seed: int = 2007, year: int = 2007, config_dir: Path = CONFIG_DIR) -> DemoCity:
    """The demo city for `year`, the same for the same seed and configuration."""
    generator = _Generator(seed, year, config_dir)
    enterprises = generator.enterprises()
    city = DemoCity(
        seed=seed,
        year=year,
        regions=generator.regions,
        target_set=generator.target_set,
        enterprises=enterprises,
    )
    city.brands = generator.brands()
    city.certificates = generator.certificates()
    city.spot_checks, city.reinspections = generator.spot_checks()
    city.reference_values = generator.reference_values()
    city.reported_values = generator.reported_values()
    plan = _Plan(seed, year, generator)
    city.metrology_checks = plan.metrology_checks()
    city.equipment_inspections = plan.equipment_inspections()
    city.food_licences = plan.food_licences()
    city.dispositions = plan.dispositions(city.food_licences)
    city.incidents = plan.incidents()
    city.gi_products = plan.gi_products()
    city.awards = plan.awards()
    return city


# The rest of the plan (§三.4–§三.7) ------------------------------------------------------

METROLOGY_SUBJECTS = {
    # subject: (plan code, instruments per check (low, high), what a nonconformity is)
    "fuel_dispenser": ("JY", (4, 16), ("加油機示值誤差", "±0.30%", "-0.52%")),
    "vehicle_test_line": ("JC", (1, 3), ("制動檢驗臺示值誤差", "±3%", "+4.6%")),
    "trade_instrument": ("LM", (5, 30), ("電子汽車衡示值誤差", "±1e", "-3e")),
    "prepackaged_quantity": ("DB", (10, 40), ("凈含量短缺量", "≤T", "超出允許短缺量")),
    "catering": ("CY", (2, 8), ("餐飲用電子秤示值誤差", "±1e", "+2e")),
    "energy_metering": ("NY", (10, 60), ("能源計量器具配備率", "≥95%", "88%")),
}
PREPACKAGED = (
    # product, nominal quantity, unit, tolerated deficiency (JJF 1070)
    ("大米", 5000, "g", 75),
    ("食用植物油", 5, "L", 0.075),
    ("面粉", 2500, "g", 37.5),
    ("醬油", 500, "mL", 15),
)
EQUIPMENT_KINDS = (
    # kind, code letter, inspection interval in years, share of the items
    ("boiler", "GL", 1, 3),
    ("pressure_vessel", "RQ", 3, 4),
    ("elevator", "DT", 1, 6),
    ("lifting_machinery", "QZ", 2, 4),
    ("pressure_piping", "GD", 3, 1),
    ("field_vehicle", "CN", 1, 2),
)
OVERDUE_ITEMS = {"320324": 4, "320305": 3, "320322": 2, "320381": 1, "320304": 1}
"""Special-equipment items whose periodic inspection fell due in the year and was not done."""
STILL_RECTIFYING = {"320324": 2, "320305": 1, "320322": 1}
"""Enterprises still `rectifying` on 31 December: the counties that did not complete the
food-processing rectification (完成食品加工業集中整頓)."""
GI_PRODUCTS = (
    # county, protected name, product, approved on, notice (illustrative, see demo/README.md)
    ("320382", "邳州銀杏", "銀杏", date(2005, 9, 28), "2005年第140號"),
    ("320322", "沛縣黿汁狗肉", "黿汁狗肉", date(2006, 12, 20), "2006年第205號"),
    ("320321", "豐縣紅富士蘋果", "紅富士蘋果", date(2007, 6, 12), "2007年第88號"),
    ("320381", "新沂水蜜桃", "水蜜桃", date(2007, 10, 16), "2007年第153號"),
)
AWARDS = (
    # county, kind, level, year, awarded on, GB/T 19580 score (self-assessments)
    ("320302", "city_quality_management_award", "city", 2006, date(2006, 12, 26), None),
    ("320382", "city_quality_management_award", "city", 2006, date(2006, 12, 26), None),
    ("320323", "city_quality_management_award", "city", 2007, date(2007, 12, 25), None),
    ("320302", "city_quality_management_award", "city", 2007, date(2007, 12, 25), None),
    ("320382", "provincial_quality_award", "provincial", 2007, date(2007, 11, 20), None),
    ("320311", "service_quality_award", "city", 2007, date(2007, 12, 25), None),
    ("320323", "excellence_performance_self_assessment", "city", 2007, date(2007, 9, 30), 512),
    ("320303", "excellence_performance_self_assessment", "city", 2007, date(2007, 9, 30), 436),
)


class _Plan:
    """Metrology checks, special-equipment inspections, food production licences and the
    rectification, incidents, geographical-indication products and quality awards: drawn
    from a random stream of their own, so the rest of the city is what it was without them."""

    def __init__(self, seed: int, year: int, city: _Generator) -> None:
        self.rng = random.Random(f"{seed}-plan-{year}")
        self.year = year
        self.city = city
        self.codes = city.codes
        self.names = {r["code"]: r["name"] for r in city.regions}

    def _enterprise(self, county: str, sector: str | None = None, category: str = "") -> Enterprise:
        pool = [
            e
            for e in self.city.by_county[county]
            if (sector is None or e.trade.sector == sector)
            and (not category or e.trade.product_category == category)
        ]
        return self.rng.choice(pool or self.city.by_county[county])

    def _day(self, start: tuple[int, int], end: tuple[int, int], year: int | None = None) -> date:
        return _day(self.rng, year or self.year, start, end)

    def metrology_checks(self) -> list[dict[str, Any]]:
        """About 25 special checks per county across the subjects (§三.5); a county's
        instruments fail about as often as its products do."""
        rows: list[dict[str, Any]] = []
        subjects = list(METROLOGY_SUBJECTS)
        for county in self.codes:
            failure = max(0.01, (1 - self.city.profile(county).pass_rate) * 0.6)
            for serial in range(22 + self.rng.randrange(7)):
                subject = subjects[serial % len(subjects)]
                rows.append(self._metrology(county, subject, serial + 1, failure))
        rows.sort(key=lambda r: (r["sampled_on"], r["sample_code"]))
        return rows

    def _metrology(self, county: str, subject: str, serial: int, failure: float) -> dict[str, Any]:
        plan, (low, high), item = METROLOGY_SUBJECTS[subject]
        checked = low + self.rng.randrange(high - low + 1)
        nonconforming = sum(self.rng.random() < failure for _ in range(checked))
        sampled = self._day((3, 1), (11, 20))
        sector = {"catering": "service", "energy_metering": "industry"}.get(subject)
        enterprise = self._enterprise(county, sector)
        row: dict[str, Any] = {
            "programme": "metrology",
            "plan_code": f"{self.year}-JL-{plan}",
            "level": "provincial" if subject == "fuel_dispenser" and serial % 5 == 0 else "city",
            "metrology_subject": subject,
            "instruments_checked": checked,
            "instruments_nonconforming": nonconforming,
            "enterprise_credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "county_code": county,
            "sample_code": f"JL{self.year}{county}{serial:03d}",
            "sampled_on": sampled.isoformat(),
            "published_on": min(sampled + timedelta(days=20), date(self.year, 12, 31)).isoformat(),
            "result": "fail" if nonconforming else "pass",
            "nonconforming_items": [],
            "testing_lab": "徐州市計量測試所",
        }
        if subject == "prepackaged_quantity":
            product, nominal, unit, tolerated = self.rng.choice(PREPACKAGED)
            shortfall = round(tolerated * (1.6 if nonconforming else self.rng.random() * 0.8), 3)
            row.update(
                product_name=product,
                nominal_quantity=nominal,
                quantity_unit=unit,
                measured_shortfall=shortfall,
                tolerated_deficiency=tolerated,
            )
        if nonconforming:
            name, requirement, measured = item
            row["nonconforming_items"] = [
                {"item": name, "requirement": requirement, "measured": measured}
            ]
        return row

    def equipment_inspections(self) -> list[dict[str, Any]]:
        """About 15 registered items per county, each inspected when due since the year
        before; the items of `OVERDUE_ITEMS` fell due in the year and were not inspected."""
        rows: list[dict[str, Any]] = []
        kinds = [k for k, _, _, share in EQUIPMENT_KINDS for _ in range(share)]
        interval = {k: years for k, _, years, _ in EQUIPMENT_KINDS}
        letters = {k: letter for k, letter, _, _ in EQUIPMENT_KINDS}
        for county in self.codes:
            overdue = OVERDUE_ITEMS.get(county, 0)
            for serial in range(14 + self.rng.randrange(4)):
                kind = kinds[self.rng.randrange(len(kinds))]
                if serial < overdue:
                    kind = "elevator" if serial % 2 else "boiler"
                enterprise = self._enterprise(county, "industry" if kind != "elevator" else None)
                code = f"{letters[kind]}{county}{serial + 1:04d}"
                first = self._day((1, 15), (11, 30), self.year - 1)
                due = _add_years(first, interval[kind])
                visits = [first]
                if due.year == self.year and serial >= overdue:
                    early = due - timedelta(days=self.rng.randrange(20))
                    visits.append(max(early, date(self.year, 1, 2)))
                elif serial < overdue:
                    visits = [self._day((1, 15), (6, 30), self.year - 1)]
                for day in visits:
                    rows.append(self._inspection(county, enterprise, kind, code, day, interval))
        rows.sort(key=lambda r: (r["sampled_on"], r["equipment_code"]))
        return rows

    def _inspection(
        self,
        county: str,
        enterprise: Enterprise,
        kind: str,
        code: str,
        day: date,
        interval: dict[str, int],
    ) -> dict[str, Any]:
        failed = self.rng.random() < 0.06
        row: dict[str, Any] = {
            "programme": "special_equipment",
            "plan_code": f"{day.year}-TS-{kind.upper()[:4]}",
            "level": "city",
            "equipment_code": code,
            "equipment_kind": kind,
            "major_hazard_source": kind in ("boiler", "pressure_vessel") and code.endswith("1"),
            "enterprise_credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "county_code": county,
            "sampled_on": day.isoformat(),
            "next_due_on": _add_years(day, interval[kind]).isoformat(),
            "published_on": (day + timedelta(days=7)).isoformat(),
            "result": "fail" if failed else "pass",
            "nonconforming_items": [],
            "testing_lab": "徐州市特種設備監督檢驗所",
        }
        if failed:
            row["nonconforming_items"] = [
                {"item": "安全保護裝置", "requirement": "動作可靠", "measured": "限速器動作失效"}
            ]
        return row

    def food_licences(self) -> list[dict[str, Any]]:
        """Food production licences (QS) of the food makers, 6 to 12 per county, issued by
        the city bureau from 2005 (three years' validity, so every one is in force)."""
        categories = ("糧食加工品", "食用油", "調味品", "肉制品", "飲料", "糕點", "豆制品", "酒類")
        rows: list[dict[str, Any]] = []
        for index, county in enumerate(self.codes):
            makers = [e for e in self.city.by_county[county] if e.trade.product_category == "food"]
            count = min(len(makers), 6 + self.rng.randrange(7))
            for serial, enterprise in enumerate(self.rng.sample(makers, count), start=1):
                category = self.rng.choice(categories)
                issued = self._day((1, 10), (12, 20), self.year - self.rng.randrange(3))
                rows.append(
                    {
                        "kind": "food_production_licence",
                        "certificate_number": f"QS3203{index + 1:02d}{serial:02d}{serial + 100:04d}",
                        "issuing_authority": "徐州市質量技術監督局",
                        "product_categories": [category],
                        "enterprise_credit_code": enterprise.credit_code,
                        "enterprise_name": enterprise.name,
                        "county_code": county,
                        "scope": f"{category}生產",
                        "issued_on": issued.isoformat(),
                    }
                )
        rows.sort(key=lambda r: (r["issued_on"], r["certificate_number"]))
        return rows

    def dispositions(self, licences: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The food-processing rectification (扶持一批、整頓一批、關閉一批): three to five
        enterprises per county decided in spring, most of those put under rectification
        supported or closed by November; `STILL_RECTIFYING` are not done on 31 December."""
        rows: list[dict[str, Any]] = []
        by_county: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for licence in licences:
            by_county[licence["county_code"]].append(licence)
        for county in self.codes:
            held = by_county[county]
            left = STILL_RECTIFYING.get(county, 0)
            chosen = self.rng.sample(held, min(len(held), 3 + self.rng.randrange(3)))
            for position, licence in enumerate(chosen):
                first = "rectifying" if position < max(2, left) else "supported"
                decided = self._day((3, 1), (4, 30))
                row: dict[str, Any] = {
                    "enterprise_credit_code": licence["enterprise_credit_code"],
                    "enterprise_name": licence["enterprise_name"],
                    "county_code": county,
                    "licence_number": licence["certificate_number"],
                    "disposition": first,
                    "decided_on": decided.isoformat(),
                    "reason": "產品質量穩定，列入扶持名單"
                    if first == "supported"
                    else "生產環境和出廠檢驗不符合食品質量安全市場準入要求，限期整改",
                    "changes": [],
                }
                if first == "rectifying":
                    row["deadline"] = date(self.year, 9, 30).isoformat()
                    if position >= left:
                        outcome = "closed" if position % 2 else "supported"
                        row["changes"].append(
                            {
                                "disposition": outcome,
                                "decided_on": self._day((10, 8), (11, 30)).isoformat(),
                                "reason": "整改不合格，依法注銷生產許可並關閉"
                                if outcome == "closed"
                                else "整改驗收合格，轉入扶持",
                            }
                        )
                rows.append(row)
        return rows

    def incidents(self) -> list[dict[str, Any]]:
        """A handful of incidents: one confirmed major food-safety incident in 沛縣, the
        others ordinary, or major and dismissed on investigation."""

        def enterprise(county: str) -> dict[str, str]:
            chosen = self._enterprise(county, "industry", "food")
            return {
                "enterprise_credit_code": chosen.credit_code,
                "enterprise_name": chosen.name,
            }

        y = self.year
        return [
            {
                "kind": "food_safety_incident",
                "county_code": "320322",
                "occurred_on": f"{y}-08-14",
                "reported_on": f"{y}-08-15",
                "title": "沛縣某食品廠熟肉制品致多人食物中毒",
                "description": "食用同批次熟肉制品後17人出現中毒症狀，經疾控中心確認為沙門氏菌污染。",
                "severity": "major",
                "severity_criterion": "casualties",
                "source_system": "徐州市食品安全應急指揮平台",
                "source_reference": f"SPAQ-{y}-031",
                **enterprise("320322"),
                "changes": [
                    {"status": "confirmed", "effective_on": f"{y}-08-20", "reason": "經調查確認"}
                ],
            },
            {
                "kind": "food_safety_incident",
                "county_code": "320321",
                "occurred_on": f"{y}-06-02",
                "reported_on": f"{y}-06-03",
                "title": "豐縣學校食堂疑似食物中毒",
                "description": "12名學生腹瀉，疑與食堂采購的豆制品有關。",
                "severity": "major",
                "severity_criterion": "casualties",
                "source_system": "徐州市食品安全應急指揮平台",
                "source_reference": f"SPAQ-{y}-019",
                "changes": [
                    {
                        "status": "dismissed",
                        "effective_on": f"{y}-06-25",
                        "reason": "經檢驗豆制品合格，確認為諾如病毒感染，不屬食品安全事故",
                    }
                ],
            },
            {
                "kind": "unlicensed_production",
                "county_code": "320324",
                "occurred_on": f"{y}-04-11",
                "reported_on": f"{y}-04-12",
                "title": "睢寧縣無證生產小作坊",
                "description": "查獲無生產許可證加工糕點的小作坊一處。",
                "severity": "ordinary",
                "source_system": "12365質量投訴舉報平台",
                "source_reference": f"12365-{y}-0412",
                "changes": [
                    {"status": "confirmed", "effective_on": f"{y}-04-13", "reason": "現場查實"},
                    {
                        "status": "closed",
                        "effective_on": f"{y}-05-20",
                        "reason": "已取締並立案處罰",
                    },
                ],
            },
            {
                "kind": "counterfeiting_case",
                "county_code": "320382",
                "occurred_on": f"{y}-09-05",
                "reported_on": f"{y}-09-06",
                "title": "邳州市查處假冒本地名牌板材",
                "description": "查獲假冒本市名牌產品標識的膠合板一批，貨值約8萬元。",
                "severity": "ordinary",
                "source_system": "徐州市打假聯席辦",
                "source_reference": f"DJ-{y}-077",
                "changes": [
                    {"status": "confirmed", "effective_on": f"{y}-09-10", "reason": "經鑒定為假冒"},
                    {"status": "closed", "effective_on": f"{y}-10-30", "reason": "移送公安機關"},
                ],
            },
            {
                "kind": "quality_incident",
                "county_code": "320305",
                "occurred_on": f"{y}-11-22",
                "reported_on": f"{y}-11-23",
                "title": "賈汪區電線電纜產品質量投訴",
                "description": "用戶投訴某批次電線絕緣層偏薄，正在抽樣檢驗。",
                "severity": "ordinary",
                "source_system": "12365質量投訴舉報平台",
                "source_reference": f"12365-{y}-1123",
                "changes": [],
            },
        ]

    def gi_products(self) -> list[dict[str, Any]]:
        """Geographical-indication products of Xuzhou's counties, each protected for its
        county, held by a cooperative of the county (approval details illustrative)."""
        rows = []
        for county, protected, product, approved, notice in GI_PRODUCTS:
            holder = self._enterprise(county, "agriculture")
            rows.append(
                {
                    "product_name": protected,
                    "brand_name": product,
                    "enterprise_credit_code": holder.credit_code,
                    "enterprise_name": holder.name,
                    "county_code": county,
                    "tier": "geographical_indication",
                    "sector": "agriculture",
                    "award_kind": "new",
                    "awarded_on": approved.isoformat(),
                    "protected_name": protected,
                    "protected_area": [county],
                    "approval_authority": "國家質量監督檢驗檢疫總局",
                    "notice_number": notice,
                    "batch_code": f"{approved.year}-geographical_indication",
                }
            )
        return rows

    def awards(self) -> list[dict[str, Any]]:
        """A few quality awards and 卓越績效 self-assessments (GB/T 19580 scores)."""
        rows = []
        for county, kind, level, year, awarded, score in AWARDS:
            winner = self._enterprise(county, "service" if kind.startswith("service") else None)
            row: dict[str, Any] = {
                "kind": kind,
                "level": level,
                "year": year,
                "enterprise_credit_code": winner.credit_code,
                "enterprise_name": winner.name,
                "county_code": county,
                "awarded_on": awarded.isoformat(),
            }
            if score is not None:
                row["excellence_score"] = score
            rows.append(row)
        return rows
