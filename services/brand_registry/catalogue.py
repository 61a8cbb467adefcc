"""The reference data of the brand registry, loaded once when the app is built: the tier
policy table (`config/brand_tiers.json`), the quality award kinds (`config/award_kinds.json`)
and the counties and districts served."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from brand_registry.schemas import AwardLevel, Tier
from brand_registry.settings import Settings
from kit.dates import add_years
from kit.identifiers import county_code_error


@dataclass(frozen=True)
class TierPolicy:
    """One tier's rules: its Chinese label, how long an award lasts, when awards stopped, and
    how long after a listing lapses it may still be renewed."""

    code: str
    label: str
    validity_years: int | None
    awards_closed_after: date | None
    renewal_grace_days: int = 0

    def closed_on(self, awarded_on: date) -> bool:
        """Whether an award dated `awarded_on` comes after the tier stopped accepting awards."""
        return self.awards_closed_after is not None and awarded_on > self.awards_closed_after

    def default_valid_until(self, awarded_on: date) -> date | None:
        """`awarded_on` plus the tier's validity (29 February falls back to the 28th; the
        calendar's end at most, never an overflow); None for a tier without a fixed validity,
        whose listings never expire."""
        if self.validity_years is None:
            return None
        return add_years(awarded_on, self.validity_years)


GEOGRAPHICAL_INDICATION = "geographical_indication"
GI_FIELDS = ("protected_name", "protected_area", "approval_authority", "notice_number")
"""The fields a geographical-indication listing requires and every other tier refuses."""


@dataclass(frozen=True)
class AwardKindPolicy:
    """One kind of quality award: its label, the levels it is conferred at, and whether a
    GB/T 19580 score must be reported with it."""

    code: str
    label: str
    levels: tuple[str, ...]
    score_required: bool = False


@dataclass(frozen=True)
class Catalogue:
    """The tier policies by code, the county codes this deployment serves, and how far
    ahead of today a validity may end."""

    policies: dict[str, TierPolicy]
    regions: frozenset[str]
    award_kinds: dict[str, AwardKindPolicy] = field(default_factory=dict)
    validity_horizon_years: int = 10
    suspension_limit_months: int = 6

    def county_code_error(self, code: str) -> str | None:
        """Why `code` is not one of the configured counties, or None: the one county check
        of creates, edits, imports, list filters and stats."""
        return county_code_error(code, self.regions)

    def suspension_cutoff(self, today: date) -> date:
        """A suspension begun before this day is overdue on `today`: `today` moved back by the
        suspension limit in calendar months, clamped to the month's last day."""
        index = today.year * 12 + today.month - 1 - self.suspension_limit_months
        year, month = divmod(index, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(today.day, last))


def load_tier_policies(path: Path, *, required: set[str]) -> dict[str, TierPolicy]:
    """Read the policy table; every tier of the API must have an entry."""
    with path.open(encoding="utf-8") as handle:
        entries = json.load(handle)
    policies = {}
    for entry in entries:
        closed = entry.get("awards_closed_after")
        policies[entry["code"]] = TierPolicy(
            code=entry["code"],
            label=entry["label"],
            validity_years=(
                None if entry["validity_years"] is None else int(entry["validity_years"])
            ),
            awards_closed_after=date.fromisoformat(closed) if closed else None,
            renewal_grace_days=int(entry.get("renewal_grace_days", 0)),
        )
    missing = required - set(policies)
    if missing:
        raise ValueError(f"{path} has no policy for the tiers {sorted(missing)}")
    return policies


def load_award_kinds(path: Path) -> dict[str, AwardKindPolicy]:
    """Read the award kinds; each names at least one known level."""
    with path.open(encoding="utf-8") as handle:
        entries = json.load(handle)
    known = {level.value for level in AwardLevel}
    kinds = {}
    for entry in entries:
        levels = tuple(entry["levels"])
        if not levels or set(levels) - known:
            raise ValueError(f"{path}: {entry['code']} needs levels among {sorted(known)}")
        kinds[entry["code"]] = AwardKindPolicy(
            code=entry["code"],
            label=entry["label"],
            levels=levels,
            score_required=bool(entry.get("score_required", False)),
        )
    if not kinds:
        raise ValueError(f"{path} names no award kinds")
    return kinds


def load_catalogue(settings: Settings) -> Catalogue:
    """The catalogue named by the settings; a broken policy table stops the service at start."""
    return Catalogue(
        policies=load_tier_policies(
            settings.tier_policy_file(), required={tier.value for tier in Tier}
        ),
        regions=settings.region_codes(),
        award_kinds=load_award_kinds(settings.award_kinds_file()),
        validity_horizon_years=settings.validity_horizon_years,
        suspension_limit_months=settings.suspension_limit_months,
    )
