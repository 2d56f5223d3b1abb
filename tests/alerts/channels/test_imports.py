"""ARCHITECTURE.md's rule for the channels: the contract, redaction, the model and resilience's
retry schedule; nothing of the store, the recorder, the API or the rest of alerting."""

from __future__ import annotations

from tests.test_architecture import PACKAGE, imports

ALLOWED = (
    "watchkeeper._version",
    "watchkeeper.alerts.channels",
    "watchkeeper.alerts.notification",
    "watchkeeper.redaction",
    "watchkeeper.model",
    "watchkeeper.resilience.policy",
    "watchkeeper.resilience.schedule",
)


def test_channels_import_only_what_they_may() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / "alerts" / "channels").rglob("*.py"))
        for name in sorted(imports(path))
        if name.startswith("watchkeeper") and not name.startswith(ALLOWED)
    ]
    assert offenders == []
