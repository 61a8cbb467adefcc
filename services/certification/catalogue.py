"""The reference data the service reads once, when the app is built: the standards catalogue,
the counties it serves and the configured validity, suspension and date-horizon defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass

from certification.settings import Settings


@dataclass(frozen=True)
class Standard:
    code: str
    family: str
    name: str


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

    def standards_of(self, families: list[str] | tuple[str, ...]) -> list[str]:
        """Codes of every standard in `families`."""
        wanted = set(families)
        return sorted(code for code, s in self.standards.items() if s.family in wanted)

    def family_of(self, code: str) -> str | None:
        standard = self.standards.get(code)
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
    return Catalogue(
        standards=standards,
        family_labels=labels,
        counted_families=counted,
        region_codes=settings.region_codes(),
        default_validity_years=settings.default_validity_years,
        suspension_limit_months=settings.suspension_limit_months,
        validity_horizon_years=settings.validity_horizon_years,
    )
