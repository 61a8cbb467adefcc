"""The shape of the repository: deployables talk HTTP, never import each other."""

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
    "routes.py",
    "migrations/env.py",
    "alembic.ini",
]


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
