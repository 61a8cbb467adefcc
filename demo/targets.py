"""The demo year's target set, read from `config/target_sets/<year>.json` (the seed's targets
with their county allocations), the same file the assessment service ships."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVINCIAL_PASS_RATE_KEY = "provincial_spot_check_pass_rate"  # noqa: S105


def load_target_set(year: int, config_dir: Path) -> dict[str, Any]:
    """The year's target set from configuration; a clear error when none is configured."""
    path = config_dir / "target_sets" / f"{year}.json"
    if not path.exists():
        raise FileNotFoundError(f"no target set for {year}: expected {path}")
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document
