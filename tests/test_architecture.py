"""The shape of the repository: deployables talk HTTP, never import each other, and inside
each one the same files hold the same layer: SQL only in repositories, rules only in services,
HTTP only in routes."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOYABLES = {
    "brand_registry": ROOT / "services" / "brand_registry",
    "certification": ROOT / "services" / "certification",
    "inspection": ROOT / "services" / "inspection",
    "assessment": ROOT / "services" / "assessment",
    "gateway": ROOT / "gateway",
}
SERVICE_FILES = [
    "app.py",
    "settings.py",
    "models.py",
    "schemas.py",
    "repository.py",
    "service.py",
    "dependencies.py",
    "routes.py",
    "migrations/env.py",
    "alembic.ini",
]
SQL_FREE_FILES = ["service.py", "routes.py"]
# The SQLAlchemy names a service may import, for its signatures: the session's type, and the
# engine's (what a read made with `kit.db.fetch_rows` is given).
ALLOWED_SQL_IMPORTS = {
    ("sqlalchemy.ext.asyncio", "AsyncSession"),
    ("sqlalchemy.ext.asyncio", "AsyncEngine"),
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_a_deployable_never_imports_another(name: str) -> None:
    others = set(DEPLOYABLES) - {name}
    for path in DEPLOYABLES[name].rglob("*.py"):
        crossing = _imported_roots(path) & others
        assert not crossing, f"{path.relative_to(ROOT)} imports {crossing}"


def test_the_kit_imports_no_deployable() -> None:
    for path in (ROOT / "libs" / "kit").rglob("*.py"):
        crossing = _imported_roots(path) & set(DEPLOYABLES)
        assert not crossing, f"{path.relative_to(ROOT)} imports {crossing}"


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_every_deployable_has_the_same_files(name: str) -> None:
    for relative in SERVICE_FILES:
        assert (DEPLOYABLES[name] / relative).exists(), f"{name} lacks {relative}"


def sql_in(source: str) -> list[str]:
    """What in `source` belongs in a repository: SQLAlchemy or SQLModel imports (the session's
    type aside) and calls on a session."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in {"sqlalchemy", "sqlmodel"}
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] not in {"sqlalchemy", "sqlmodel"}:
                continue
            found += [
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if (node.module, alias.name) not in ALLOWED_SQL_IMPORTS
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "session"
        ):
            found.append(f"line {node.lineno}: session.{node.func.attr}(…)")
    return found


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
@pytest.mark.parametrize("filename", SQL_FREE_FILES)
def test_services_and_routes_hold_no_sql(name: str, filename: str) -> None:
    path = DEPLOYABLES[name] / filename
    assert sql_in(path.read_text(encoding="utf-8")) == [], f"{name}/{filename} holds SQL"


SPLIT_SQL_FREE_FILES = sorted(
    path
    for root in DEPLOYABLES.values()
    for pattern in ("*_service.py", "*_routes.py")
    for path in root.glob(pattern)
)
"""A resource's rules and routes kept beside the service's main ones (`incident_service.py`
beside `service.py`) are held to the same rule."""


@pytest.mark.parametrize("path", SPLIT_SQL_FREE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_split_services_and_routes_hold_no_sql(path: Path) -> None:
    assert sql_in(path.read_text(encoding="utf-8")) == [], f"{path.relative_to(ROOT)} holds SQL"


def test_a_misplaced_query_is_found() -> None:
    misplaced = (
        "from sqlalchemy import select\n"
        "async def count(*, session):\n"
        "    return await session.execute(select(1))\n"
    )
    assert sql_in(misplaced) == [
        "line 1: from sqlalchemy import select",
        "line 3: session.execute(…)",
    ]
    assert sql_in("from sqlalchemy.ext.asyncio import AsyncSession\n") == []
