"""The standards catalogue and the other configuration the service loads once at start."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from certification.settings import Settings


@dataclass(frozen=True)
class Standard:
    code: str
    family: str
    name: str


@dataclass(frozen=True)
class Catalogue:
    """Standards by code, their families, and the families counted as new certifications."""

    standards: dict[str, Standard]
    family_labels: dict[str, str]
    counted_families: tuple[str, ...]

    def standards_of(self, families: list[str] | tuple[str, ...]) -> list[str]:
        """Codes of every standard in `families`."""
        wanted = set(families)
        return sorted(code for code, s in self.standards.items() if s.family in wanted)

    def family_of(self, code: str) -> str | None:
        standard = self.standards.get(code)
        return standard.family if standard else None


def load_catalogue(settings: Settings) -> Catalogue:
    """Read and check the standards catalogue named by the settings."""
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
    return Catalogue(standards=standards, family_labels=labels, counted_families=counted)


@dataclass(frozen=True)
class Config:
    """What the rules need from configuration: catalogue, regions and limits."""

    settings: Settings
    catalogue: Catalogue
    region_codes: frozenset[str]

    def today(self) -> date:
        """Today's date in the bureau's time zone."""
        return datetime.now(ZoneInfo(self.settings.timezone)).date()


def build_config(settings: Settings) -> Config:
    return Config(
        settings=settings,
        catalogue=load_catalogue(settings),
        region_codes=settings.region_codes(),
    )


@asynccontextmanager
async def load_configuration(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: load the catalogue and regions once, failing fast when they are broken."""
    app.state.config = build_config(app.state.settings)
    yield
