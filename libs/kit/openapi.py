"""The OpenAPI document as clients see it: every error is a problem document.

FastAPI documents 422 with its own `HTTPValidationError` shape; the platform answers
`application/problem+json` instead, so the document is rewritten to say so, and every
operation gains a `default` problem response for its other error statuses.

Each create (`POST` on a collection, answered 201 with the new item's `id`) gains OpenAPI links
to every operation on that item and below it, so a client or a stateful test can follow from
a new record to what may be done with it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kit.errors import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}

VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "type": "object",
    "description": "A 422 problem listing each invalid field.",
    "properties": {
        **PROBLEM_SCHEMA["properties"],
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["field", "message"],
                "additionalProperties": True,
            },
        },
    },
    "required": ["type", "title", "status", "detail", "errors"],
    "additionalProperties": True,
}


def _problem_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """Build (once) the app's OpenAPI document with problem responses."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = _problem_response("Validation failed", "ValidationProblem")
            responses.setdefault("default", _problem_response("Error", "Problem"))
    add_create_links(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    app.openapi_schema = document
    return document


_PARAMETER = re.compile(r"\{([^}]+)\}")
_METHODS = ("get", "put", "post", "delete", "patch")


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_create_links(document: dict[str, Any]) -> None:
    """Link each create's 201 to the operations of the item it made.

    For `POST /things` (or `POST /a/{a}/things`) and an item path `/things/{id}`, every
    operation on `/things/{id}` and on the paths below it that need no other parameter gets a
    link from the 201: `id` from the answer's `id`, the collection's own parameters from the
    create's request, and `If-Match` from its `ETag` where the operation takes one. Links name
    their operation by `operationRef`, which survives a merge that renames operation ids.
    """
    paths: dict[str, Any] = document.get("paths", {})
    for collection, item in paths.items():
        create = item.get("post") if isinstance(item, dict) else None
        if not isinstance(create, dict) or "201" not in create.get("responses", {}):
            continue
        known = set(_PARAMETER.findall(collection))
        links: dict[str, Any] = {}
        for target, operations in paths.items():
            if not target.startswith(collection + "/{"):
                continue
            new = target[len(collection) + 2 :].split("}", 1)[0]
            if set(_PARAMETER.findall(target)) != known | {new}:
                continue
            for method in _METHODS:
                operation = operations.get(method)
                if not isinstance(operation, dict):
                    continue
                parameters = {name: f"$request.path.{name}" for name in sorted(known)}
                parameters[new] = "$response.body#/id"
                if any(
                    p.get("in") == "header" and p.get("name", "").lower() == "if-match"
                    for p in operation.get("parameters", [])
                ):
                    parameters["header.If-Match"] = "$response.header.ETag"
                name = operation.get("operationId") or f"{method}_{target}"
                links[name] = {"operationRef": _pointer(target, method), "parameters": parameters}
        if links:
            create["responses"]["201"].setdefault("links", {}).update(links)


def install_problem_openapi(app: FastAPI) -> None:
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
