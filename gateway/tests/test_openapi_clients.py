"""Typed clients generated from the merged OpenAPI document (the real services' documents
behind a test gateway) keep every operation, schema and response.

`openapi-python-client` writes one module per operation under `api/` and one model per schema
under `models/`; `openapi-typescript` one `paths` key per path, one `operations` entry per
operation with its responses, and one `components["schemas"]` key per schema. What the
document holds is compared with what each generated client contains, and anything a
generator dropped is named. The files the API takes and gives (CSV, PDF, XLSX) reach the Python
generator as binary, the way its configuration lets a client say so.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.tests.support import ROOT
from gateway.tests.test_openapi import merged  # noqa: F401

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NPM_PREFIX = ROOT / ".tools" / "npm" / "openapi-typescript"
OPENAPI_TYPESCRIPT = "openapi-typescript@7"
Operation = tuple[str, str, dict[str, Any]]
FILE_TYPES = dict.fromkeys(
    (
        "text/csv",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "application/octet-stream",
)
"""The files the API takes and gives (CSV, PDF, XLSX), which the Python generator knows only
as binary: its configuration maps them to `application/octet-stream`, so their operations
are generated with a file body or answer like any other."""


def _operations(document: dict[str, Any]) -> list[Operation]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _typed_responses(operation: dict[str, Any]) -> list[str]:
    """The status codes (or `default`) whose body the document gives a schema."""
    return [
        code
        for code, response in operation.get("responses", {}).items()
        if any("schema" in media for media in response.get("content", {}).values())
    ]


def _snake(name: str) -> str:
    """The module name openapi-python-client gives an operation id or a schema name."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", words)
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


async def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The generator formats its output with ruff, which lives beside this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PATH": path},
    )


def _spec_file(document: dict[str, Any], directory: Path) -> Path:
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(document), encoding="utf-8")
    return spec


def _python_gaps(document: dict[str, Any], package: Path) -> list[str]:
    """What the document holds that the generated Python package lacks."""
    gaps: list[str] = []
    models = {path.stem for path in (package / "models").glob("*.py")}
    for name in document["components"]["schemas"]:
        if _snake(name) not in models:
            gaps.append(f"schema {name}: no models/{_snake(name)}.py")
    modules = {path.stem: path for path in (package / "api").glob("*/*.py")}
    for method, path, operation in _operations(document):
        module = modules.get(_snake(operation["operationId"]))
        if module is None:
            gaps.append(f"{method.upper()} {path}: no module {_snake(operation['operationId'])}")
            continue
        code = module.read_text(encoding="utf-8")
        for status in _typed_responses(operation):
            variable = f"response_{status}"
            assigned = re.search(rf"^\s*{variable} = (.+)$", code, re.MULTILINE)
            if assigned is None or assigned.group(1).startswith("cast(Any, None)"):
                gaps.append(f"{method.upper()} {path}: response {status} is not parsed")
    return gaps


async def test_the_python_client_keeps_every_operation_schema_and_response(
    merged: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = _spec_file(merged, tmp_path)
    generator = Path(sys.executable).parent / "openapi-python-client"
    out = tmp_path / "client"
    config = tmp_path / "generator.json"
    config.write_text(json.dumps({"content_type_overrides": FILE_TYPES}), encoding="utf-8")
    command = [
        str(generator),
        "generate",
        "--path",
        str(spec),
        "--output-path",
        str(out),
        "--config",
        str(config),
    ]
    result = await _run([*command, "--meta", "none"], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A warning names an endpoint or a response the generator left out: there must be none.
    assert "WARNING" not in output, output
    assert _python_gaps(merged, out) == []
    # The client is importable as generated, models and operations alike.
    check = await _run(
        [sys.executable, "-c", "import client.models, client.api, client.client"], tmp_path
    )
    assert check.returncode == 0, check.stderr


def _block(lines: list[str], opening: str) -> list[str]:
    """The lines of the block that `opening` starts, up to its closing brace."""
    start = lines.index(opening)
    indent = len(opening) - len(opening.lstrip())
    closing = " " * indent + ("}" if indent == 0 else "};")
    end = lines.index(closing, start)
    return lines[start + 1 : end]


def _keys(lines: list[str], indent: int) -> dict[str, list[str]]:
    """The members at `indent` of a block, each with the lines of its own value."""
    members: dict[str, list[str]] = {}
    current: list[str] | None = None
    pattern = re.compile(rf"^ {{{indent}}}(\"[^\"]+\"|[\w$]+)\??: ")
    for line in lines:
        match = pattern.match(line)
        if match:
            current = members.setdefault(match.group(1).strip('"'), [line])
        elif current is not None:
            current.append(line)
    return members


def _typescript_gaps(document: dict[str, Any], declarations: str) -> list[str]:
    """What the document holds that the generated declarations lack."""
    lines = declarations.splitlines()
    paths = _keys(_block(lines, "export interface paths {"), 4)
    components = _keys(_block(lines, "export interface components {"), 4)
    schemas = _keys(components["schemas"][1:], 8)
    operations = _keys(_block(lines, "export interface operations {"), 4)
    gaps = [f"schema {name}" for name in document["components"]["schemas"] if name not in schemas]
    for path in document["paths"]:
        if path not in paths:
            gaps.append(f"path {path}")
    for method, path, operation in _operations(document):
        operation_id = operation["operationId"]
        reference = f'{" " * 8}{method}: operations["{operation_id}"];'
        if reference not in paths.get(path, []):
            gaps.append(f"{method.upper()} {path}: not operations[{operation_id!r}]")
            continue
        body = operations.get(operation_id, [])
        responses = _keys(_block(body, " " * 8 + "responses: {"), 12) if body else {}
        for status, response in operation.get("responses", {}).items():
            typed = "\n".join(responses.get(status, []))
            if status not in responses:
                gaps.append(f"{method.upper()} {path}: response {status}")
            for media in response.get("content", {}):
                if f'"{media}": ' not in typed:
                    gaps.append(f"{method.upper()} {path}: response {status} in {media}")
    return gaps


async def _openapi_typescript(tmp_path: Path) -> Path:
    """The generator's command, installed once under .tools/ from the npm registry."""
    binary = NPM_PREFIX / "node_modules" / ".bin" / "openapi-typescript"
    if binary.exists():
        return binary
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    install = await _run(
        [
            "npm",
            "install",
            "--prefix",
            str(NPM_PREFIX),
            "--no-audit",
            "--no-fund",
            OPENAPI_TYPESCRIPT,
        ],
        tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return binary


async def test_the_typescript_declarations_keep_every_path_operation_schema_and_response(
    merged: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and Node.js are not installed, so openapi-typescript cannot run")
    binary = await _openapi_typescript(tmp_path)
    spec = _spec_file(merged, tmp_path)
    declarations = tmp_path / "api.d.ts"
    result = await _run([str(binary), str(spec), "-o", str(declarations)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _typescript_gaps(merged, declarations.read_text(encoding="utf-8")) == []
