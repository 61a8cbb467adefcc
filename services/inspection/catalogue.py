"""The reference data a spot-check is checked against: the configured counties, the product
category catalogue and the supervision programmes (`config/programmes.json`), read once when
the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inspection.settings import Settings
from kit.identifiers import county_code_error
from kit.settings import load_json

PROGRAMME_FIELDS = (
    "product_category",
    "product_name",
    "sample_code",
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
"""The fields a programme requires or allows; a record of a programme that does neither
leaves them empty."""
DEFAULT_PROGRAMME = "product_quality"


@dataclass(frozen=True)
class Subject:
    """A metrology subject, with the fields it requires beyond its programme's."""

    code: str
    name: str
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Programme:
    """A supervision programme: the fields it requires and allows, whether its failures are
    re-inspected and flag the enterprise's brands for review, and its own code lists."""

    code: str
    name: str
    required: frozenset[str]
    optional: frozenset[str]
    reinspection: bool
    brand_review: bool
    product_categories: Mapping[str, str] | None = None
    subjects: Mapping[str, Subject] = field(default_factory=dict)
    quantity_units: tuple[str, ...] = ()
    equipment_kinds: Mapping[str, str] = field(default_factory=dict)

    def required_fields(self, subject: str | None = None) -> frozenset[str]:
        """What a record of this programme (and metrology subject) must fill in."""
        chosen = self.subjects.get(subject) if subject is not None else None
        extra = chosen.required if chosen is not None else frozenset()
        return self.required | extra

    def allowed_fields(self, subject: str | None = None) -> frozenset[str]:
        """What a record of this programme (and metrology subject) may fill in."""
        return self.required_fields(subject) | self.optional


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
    """The configured counties, product categories and programmes a record may name, and
    how far ahead of today a bulletin may be scheduled."""

    regions: frozenset[str]
    categories: Mapping[str, str]
    bulletin_horizon_years: int = 1
    county_names: Mapping[str, str] = field(default_factory=dict)
    programmes: Mapping[str, Programme] = field(default_factory=dict)
    incidents: IncidentCatalogue = field(default_factory=IncidentCatalogue)

    def category_label(self, code: str | None) -> str | None:
        """The Chinese name of a category of any programme (the code itself when unknown)."""
        if code is None:
            return None
        return self.all_categories().get(code, code)

    def all_categories(self) -> dict[str, str]:
        """The product categories, then each programme's own (the food categories)."""
        merged = dict(self.categories)
        for programme in self.programmes.values():
            merged.update(programme.product_categories or {})
        return merged

    def categories_of(self, programme: str) -> Mapping[str, str]:
        """The categories a record of `programme` may name, in catalogue order."""
        rule = self.programmes.get(programme)
        if rule is not None and rule.product_categories is not None:
            return rule.product_categories
        return self.categories

    def county_code_error(self, code: str) -> str | None:
        """Why `code` is not one of the configured counties and districts, or None.

        The one county check of this service: records, imports, list filters and stats."""
        return county_code_error(code, self.regions)

    def category_error(self, code: str, programme: str | None = None) -> str | None:
        """Why `code` is not a category of `programme` (of any programme when None), or None."""
        known = self.all_categories() if programme is None else self.categories_of(programme)
        if code in known:
            return None
        return f"unknown product category {code!r}; known: {', '.join(known)}"

    def programme_error(self, code: str) -> str | None:
        """Why `code` is not a configured programme, or None."""
        if code in self.programmes:
            return None
        return f"unknown programme {code!r}; known: {', '.join(self.programmes)}"

    def programme_label(self, code: str) -> str:
        rule = self.programmes.get(code)
        return rule.name if rule else code

    def subject_label(self, code: str | None) -> str | None:
        """The Chinese name of a metrology subject (the code itself when unknown)."""
        if code is None:
            return None
        for programme in self.programmes.values():
            if code in programme.subjects:
                return programme.subjects[code].name
        return code

    def equipment_kind_label(self, code: str | None) -> str | None:
        """The Chinese name of a kind of special equipment (the code itself when unknown)."""
        if code is None:
            return None
        for programme in self.programmes.values():
            if code in programme.equipment_kinds:
                return programme.equipment_kinds[code]
        return code


def _names(entries: list[dict[str, Any]]) -> dict[str, str]:
    return {entry["code"]: entry["name"] for entry in entries}


def _fields(names: list[str], *, where: str) -> frozenset[str]:
    unknown = sorted(set(names) - set(PROGRAMME_FIELDS))
    if unknown:
        raise ValueError(f"{where} names unknown fields: {', '.join(unknown)}")
    return frozenset(names)


def _programme(entry: dict[str, Any]) -> Programme:
    code = entry["code"]
    subjects = {
        subject["code"]: Subject(
            code=subject["code"],
            name=subject["name"],
            required=_fields(subject.get("required", []), where=f"subject {subject['code']}"),
        )
        for subject in entry.get("subjects", [])
    }
    categories = entry.get("product_categories")
    return Programme(
        code=code,
        name=entry["name"],
        required=_fields(entry["required"], where=f"programme {code}"),
        optional=_fields(entry.get("optional", []), where=f"programme {code}"),
        reinspection=bool(entry.get("reinspection", False)),
        brand_review=bool(entry.get("brand_review", False)),
        product_categories=_names(categories) if categories is not None else None,
        subjects=subjects,
        quantity_units=tuple(entry.get("quantity_units", [])),
        equipment_kinds=_names(entry.get("equipment_kinds", [])),
    )


def load_programmes(settings: Settings) -> dict[str, Programme]:
    """The programmes of `config/programmes.json`, in catalogue order; a catalogue naming a
    field no programme can hold is refused when the app is built."""
    programmes = {
        entry["code"]: _programme(entry)
        for entry in load_json(settings.config_dir / "programmes.json")
    }
    if DEFAULT_PROGRAMME not in programmes:
        raise ValueError(f"config/programmes.json must define {DEFAULT_PROGRAMME!r}")
    return programmes


def load_catalogue(settings: Settings) -> Catalogue:
    """The counties of `config/regions.json`, the category catalogue and the programmes."""
    return Catalogue(
        regions=settings.region_codes(),
        categories=_names(load_json(settings.product_categories_file)),
        bulletin_horizon_years=settings.bulletin_horizon_years,
        county_names=settings.region_names(),
        programmes=load_programmes(settings),
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
