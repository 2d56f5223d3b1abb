"""Replacing methods of third-party classes, and putting the originals back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Patches:
    """The methods one integration replaced, so that uninstrumenting restores them exactly."""

    def __init__(self, integration: str) -> None:
        self._integration = integration
        self._saved: list[tuple[type, str, Any]] = []

    @property
    def applied(self) -> bool:
        return bool(self._saved)

    def apply(self, owner: type, name: str, wrap: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` by ``wrap(original)``."""
        original = owner.__dict__.get(name)
        if original is None:
            self.restore()
            raise RuntimeError(
                f"Watchkeeper cannot instrument {self._integration}: {owner.__qualname__}.{name} "
                "is missing from this version; install a version the extra allows"
            )
        setattr(owner, name, wrap(original))
        self._saved.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
