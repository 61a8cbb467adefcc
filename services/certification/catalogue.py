"""The reference data the service reads once, when the app is built: the standards catalogue,
the certificate and licence kinds, the counties it serves and the configured validity,
suspension and date-horizon defaults."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from certification.settings import Settings


@dataclass(frozen=True)
class Standard:
    code: str
    family: str
    name: str


MANAGEMENT_SYSTEM = "management_system"
"""The kind of a management-system certificate (a standard, a certification body); every
other configured kind is a licence (a number format, an issuing authority, product categories)."""


@dataclass(frozen=True)
class Kind:
    """A kind of certificate or licence. A licence kind's number matches `number_pattern`
    and, where its authority lists prefixes, starts with one of them."""

    code: str
    label: str
    licence: bool
    number_pattern: re.Pattern[str] | None = None
    number_example: str | None = None
    number_format: str | None = None
    validity_years: int | None = None
    authorities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    product_categories: tuple[str, ...] = ()


def _kind(entry: dict[str, Any]) -> Kind:
    if not entry.get("licence"):
        return Kind(code=entry["code"], label=entry["label"], licence=False)
    categories = tuple(entry["product_categories"])
    authorities = {
        a["name"]: tuple(a.get("number_prefixes", [])) for a in entry["issuing_authorities"]
    }
    if not categories or not authorities:
        raise ValueError(f"licence kind {entry['code']!r} needs authorities and categories")
    return Kind(
        code=entry["code"],
        label=entry["label"],
        licence=True,
        number_pattern=re.compile(entry["number_pattern"]),
        number_example=entry.get("number_example"),
        number_format=entry.get("number_format"),
        validity_years=int(entry["validity_years"]),
        authorities=authorities,
        product_categories=categories,
    )


def load_kinds(data: dict[str, Any]) -> dict[str, Kind]:
    """The kinds of a kinds file, checked: the management-system kind is one of them."""
    kinds = {entry["code"]: _kind(entry) for entry in data["kinds"]}
    if MANAGEMENT_SYSTEM not in kinds or kinds[MANAGEMENT_SYSTEM].licence:
        raise ValueError(f"the kinds must include {MANAGEMENT_SYSTEM!r}, not as a licence")
    return kinds


@dataclass(frozen=True)
class Catalogue:
    """Standards by code, their families, the families counted as new certifications, the
    counties served, and the defaults the rules apply."""

    standards: dict[str, Standard]
    family_labels: dict[str, str]
    counted_families: tuple[str, ...]
    region_codes: frozenset[str]
    default_validity_years: int
    suspension_limit_months: int
    validity_horizon_years: int
    kinds: dict[str, Kind] = field(default_factory=dict)

    def validity_years_of(self, kind: str) -> int:
        """The default validity of a new certificate or licence of `kind`."""
        found = self.kinds.get(kind)
        if found is None or found.validity_years is None:
            return self.default_validity_years
        return found.validity_years

    def standards_of(self, families: list[str] | tuple[str, ...]) -> list[str]:
        """Codes of every standard in `families`."""
        wanted = set(families)
        return sorted(code for code, s in self.standards.items() if s.family in wanted)

    def family_of(self, code: str | None) -> str | None:
        standard = self.standards.get(code) if code else None
        return standard.family if standard else None


def load_catalogue(settings: Settings) -> Catalogue:
    """Read and check the standards catalogue and the regions named by the settings."""
    with settings.standards_path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    labels = {family["code"]: family["label"] for family in data["families"]}
    standards = {}
    for entry in data["standards"]:
        if entry["family"] not in labels:
            raise ValueError(f"standard {entry['code']!r} names unknown family {entry['family']!r}")
        standards[entry["code"]] = Standard(entry["code"], entry["family"], entry["name"])
    counted = tuple(sorted(data["counted_families"]))
    unknown = set(counted) - set(labels)
    if unknown:
        raise ValueError(f"counted families not in the catalogue: {sorted(unknown)}")
    with settings.kinds_path.open(encoding="utf-8") as handle:
        kinds = load_kinds(json.load(handle))
    return Catalogue(
        standards=standards,
        family_labels=labels,
        counted_families=counted,
        region_codes=settings.region_codes(),
        default_validity_years=settings.default_validity_years,
        suspension_limit_months=settings.suspension_limit_months,
        validity_horizon_years=settings.validity_horizon_years,
        kinds=kinds,
    )
