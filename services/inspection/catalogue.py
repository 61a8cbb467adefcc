"""The reference data a spot-check is checked against: the configured counties and the
product category catalogue, read once when the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspection.settings import Settings
from kit.identifiers import county_code_error
from kit.settings import load_json


@dataclass(frozen=True)
class Catalogue:
    """The configured counties and product categories a record may name, and how far ahead
    of today a bulletin may be scheduled."""

    regions: frozenset[str]
    categories: Mapping[str, str]
    bulletin_horizon_years: int = 1
    county_names: Mapping[str, str] = field(default_factory=dict)

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
    )
