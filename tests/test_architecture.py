"""The import rules of ARCHITECTURE.md, checked on every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "watchkeeper"
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "recording": (
        "watchkeeper.storage.sql",
        "watchkeeper.storage.engine",
        "watchkeeper.storage.schema",
        "watchkeeper.instrumentation",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.dashboard",
        "watchkeeper.cli",
    ),
    "storage": (
        "watchkeeper.recording.recorder",
        "watchkeeper.recording.worker",
        "watchkeeper.recording.spans",
        "watchkeeper.instrumentation",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.cli",
    ),
    "instrumentation": ("watchkeeper.api", "watchkeeper.health", "watchkeeper.cli"),
    "health": ("watchkeeper.api", "watchkeeper.instrumentation", "watchkeeper.cli"),
    "metrics": ("watchkeeper.api", "watchkeeper.instrumentation", "watchkeeper.cli"),
    "api": ("watchkeeper.cli",),
    "dashboard": (
        "watchkeeper.api",
        "watchkeeper.storage",
        "watchkeeper.recording",
        "watchkeeper.cli",
    ),
    "testing": ("watchkeeper.cli", "watchkeeper.api"),
    "access": (
        "watchkeeper.recording",
        "watchkeeper.storage",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.cli",
    ),
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(layer: str) -> None:
    violations = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imports(path)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert violations == []


def test_nothing_imports_the_cli() -> None:
    violations = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.parts
        and any(name.startswith("watchkeeper.cli") for name in imports(path))
    ]
    assert violations == []
