"""The base of every request and configuration schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown fields are refused (422 naming them) and text is stripped of outer whitespace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
