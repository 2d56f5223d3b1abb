"""The import rules of ARCHITECTURE.md, checked on every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "watchkeeper"
OTHER_LAYERS = (
    "watchkeeper.recording",
    "watchkeeper.storage",
    "watchkeeper.instrumentation",
    "watchkeeper.health",
    "watchkeeper.metrics",
    "watchkeeper.access",
    "watchkeeper.api",
    "watchkeeper.otlp",
    "watchkeeper.resilience",
    "watchkeeper.alerts",
    "watchkeeper.collector",
    "watchkeeper.dashboard",
    "watchkeeper.logs",
    "watchkeeper.logging",
    "watchkeeper.runtime",
    "watchkeeper.wiring",
    "watchkeeper.demo",
    "watchkeeper.testing",
    "watchkeeper.cli",
)
ASSEMBLY = ("watchkeeper.runtime", "watchkeeper.wiring", "watchkeeper.cli", "watchkeeper.demo")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "model": OTHER_LAYERS,
    "recording": (
        "watchkeeper.collector",
        "watchkeeper.storage",
        "watchkeeper.instrumentation",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.dashboard",
        *ASSEMBLY,
    ),
    "storage": (
        "watchkeeper.recording",
        "watchkeeper.instrumentation",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        *ASSEMBLY,
    ),
    "instrumentation": (
        "watchkeeper.api",
        "watchkeeper.health",
        "watchkeeper.resilience",
        *ASSEMBLY,
    ),
    "health": (
        "watchkeeper.api",
        "watchkeeper.instrumentation",
        "watchkeeper.resilience",
        *ASSEMBLY,
    ),
    "metrics": (
        "watchkeeper.api",
        "watchkeeper.instrumentation",
        "watchkeeper.resilience",
        *ASSEMBLY,
    ),
    "api": ASSEMBLY,
    "dashboard": (
        "watchkeeper.api",
        "watchkeeper.storage",
        "watchkeeper.recording",
        "watchkeeper.model",
        *ASSEMBLY,
    ),
    "testing": ("watchkeeper.api", *ASSEMBLY),
    # Stored keys, sessions and the audit log are in the store; access never records events.
    "access": (
        "watchkeeper.recording",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        *ASSEMBLY,
    ),
    "otlp": (
        "watchkeeper.storage",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.dashboard",
        *ASSEMBLY,
    ),
    # The collector's process assembles a runtime; the rest of it is the app's side.
    "collector": (
        "watchkeeper.storage",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.dashboard",
        "watchkeeper.otlp",
        "watchkeeper.cli",
        "watchkeeper.demo",
        "watchkeeper.wiring",
    ),
    # Resilience guards the app's calls: it records them, but never reads the store.
    "resilience": (
        "watchkeeper.storage",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.otlp",
        "watchkeeper.dashboard",
        *ASSEMBLY,
    ),
    # The app's logs reach the store only through the recorder, as every event does.
    "logs": (
        "watchkeeper.storage",
        "watchkeeper.instrumentation",
        "watchkeeper.health",
        "watchkeeper.metrics",
        "watchkeeper.api",
        "watchkeeper.dashboard",
        "watchkeeper.otlp",
        "watchkeeper.collector",
        "watchkeeper.resilience",
        *ASSEMBLY,
    ),
    # Alerts read the store and judge health (their channels reuse resilience's retry
    # schedule); they never instrument the app or ship events.
    "alerts": (
        "watchkeeper.instrumentation",
        "watchkeeper.otlp",
        "watchkeeper.collector",
        "watchkeeper.dashboard",
        "watchkeeper.logs",
        *ASSEMBLY,
    ),
    "runtime": ("watchkeeper.cli", "watchkeeper.demo", "watchkeeper.wiring"),
}


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    here = module_name(path, package).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # a module's relative imports start from its package
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from . import x` may import module x: count both the package and package.x.
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def violations(package: Path, layer: str) -> list[str]:
    return [
        f"{path.relative_to(package.parent)} imports {name}"
        for path in sorted((package / layer).rglob("*.py"))
        for name in sorted(imports(path, package))
        if name.startswith(FORBIDDEN[layer])
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(layer: str) -> None:
    assert violations(PACKAGE, layer) == []


def test_redaction_stands_on_the_model_alone() -> None:
    own = {name for name in imports(PACKAGE / "redaction.py") if name.startswith("watchkeeper")}
    assert {name for name in own if not name.startswith("watchkeeper.model")} == set()


def test_nothing_imports_the_cli() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        and any(name.startswith("watchkeeper.cli") for name in imports(path))
    ]
    assert offenders == []


def test_the_check_catches_absolute_and_relative_forbidden_imports(tmp_path: Path) -> None:
    package = tmp_path / "watchkeeper"
    (package / "storage" / "sub").mkdir(parents=True)
    (package / "storage" / "fine.py").write_text("from watchkeeper.storage import base\n")
    (package / "storage" / "sub" / "bad.py").write_text(
        "from watchkeeper.recording.recorder import Recorder\n"
        "from ...cli import main\n"
        "from .. import rollups\n"
    )
    assert violations(package, "storage") == [
        "watchkeeper/storage/sub/bad.py imports watchkeeper.cli",
        "watchkeeper/storage/sub/bad.py imports watchkeeper.cli.main",
        "watchkeeper/storage/sub/bad.py imports watchkeeper.recording.recorder",
        "watchkeeper/storage/sub/bad.py imports watchkeeper.recording.recorder.Recorder",
    ]
