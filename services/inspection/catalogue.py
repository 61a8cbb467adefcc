"""The reference data a spot-check is checked against: the configured counties and the
product category catalogue, read once when the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspection.settings import Settings
from kit.identifiers import county_code_error
from kit.settings import load_json


@dataclass(frozen=True)
class SeverityCriterion:
    """A criterion by which the bureau rates an incident major, and the kinds it applies to."""

    code: str
    label: str
    kinds: frozenset[str]


@dataclass(frozen=True)
class IncidentCatalogue:
    """The incident kinds with their labels and the criteria of a major incident, from
    `config/incidents.json`."""

    kinds: Mapping[str, str] = field(default_factory=dict)
    criteria: Mapping[str, SeverityCriterion] = field(default_factory=dict)

    def kind_label(self, code: str) -> str:
        return self.kinds.get(code, code)

    def criterion_label(self, code: str | None) -> str | None:
        if code is None:
            return None
        criterion = self.criteria.get(code)
        return criterion.label if criterion else code

    def criterion_error(self, kind: str, code: str) -> str | None:
        """Why `code` cannot be the criterion of a major incident of `kind`, or None."""
        criterion = self.criteria.get(code)
        if criterion is None:
            return f"unknown severity criterion {code!r}; known: {', '.join(self.criteria)}"
        if kind not in criterion.kinds:
            fitting = [c.code for c in self.criteria.values() if kind in c.kinds]
            return f"{code!r} does not apply to a {kind}; applicable: {', '.join(fitting)}"
        return None


@dataclass(frozen=True)
class Catalogue:
    """The configured counties and product categories a record may name, and how far ahead
    of today a bulletin may be scheduled."""

    regions: frozenset[str]
    categories: Mapping[str, str]
    bulletin_horizon_years: int = 1
    county_names: Mapping[str, str] = field(default_factory=dict)
    incidents: IncidentCatalogue = field(default_factory=IncidentCatalogue)

    def category_label(self, code: str) -> str:
        """The Chinese name of a category (the code itself when it is not in the catalogue)."""
        return self.categories.get(code, code)

    def county_code_error(self, code: str) -> str | None:
        """Why `code` is not one of the configured counties and districts, or None.

        The one county check of this service: records, imports, list filters and stats."""
        return county_code_error(code, self.regions)

    def category_error(self, code: str) -> str | None:
        """Why `code` is not a category of the catalogue, or None."""
        if code in self.categories:
            return None
        return f"unknown product category {code!r}; known: {', '.join(self.categories)}"


def load_catalogue(settings: Settings) -> Catalogue:
    """The counties of `config/regions.json` and the category catalogue, in catalogue order."""
    categories = {
        entry["code"]: entry["name"] for entry in load_json(settings.product_categories_file)
    }
    return Catalogue(
        regions=settings.region_codes(),
        categories=categories,
        bulletin_horizon_years=settings.bulletin_horizon_years,
        county_names=settings.region_names(),
        incidents=load_incident_catalogue(settings),
    )


def load_incident_catalogue(settings: Settings) -> IncidentCatalogue:
    """The incident kinds and severity criteria of `config/incidents.json`; a criterion
    naming a kind the catalogue lacks is refused when the app is built."""
    raw = load_json(settings.config_dir / "incidents.json")
    kinds = {entry["code"]: entry["label"] for entry in raw["kinds"]}
    criteria = {}
    for entry in raw["severity_criteria"]:
        unknown = sorted(set(entry["kinds"]) - set(kinds))
        if unknown:
            raise ValueError(f"incident criterion {entry['code']} names unknown kinds: {unknown}")
        criteria[entry["code"]] = SeverityCriterion(
            code=entry["code"], label=entry["label"], kinds=frozenset(entry["kinds"])
        )
    return IncidentCatalogue(kinds=kinds, criteria=criteria)
