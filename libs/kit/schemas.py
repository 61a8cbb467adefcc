"""The base of every request and configuration schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Unknown fields are refused (422 naming them) and text is stripped of outer whitespace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ImportReportRead(BaseModel):
    """The answer to a CSV import: its counts and the first errors, each with line and field."""

    rows: int
    valid: int
    stored: int
    dry_run: bool
    error_count: int
    errors: list[dict[str, Any]]
    errors_truncated: bool
    encoding: str | None = Field(
        default=None,
        description='A CSV file\'s encoding: "utf-8", or "gb18030" (GBK) for a file that is not '
        "UTF-8; null for a workbook.",
    )


IMPORT_ROUTE_DOCS: dict[str, Any] = {
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
    "responses": {
        200: {"description": "Dry run: every row valid, nothing stored", "model": ImportReportRead},
        201: {"description": "Every row stored", "model": ImportReportRead},
    },
}
"""How every import route documents its CSV body and its two answers."""
