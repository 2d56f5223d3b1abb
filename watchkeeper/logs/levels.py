"""The AUDIT and SECURITY levels, registered with the standard library's logging, and helpers.

Both sit above WARNING, so the standard library's default configuration lets them through; the
helpers write them whatever the logger's own level is, since an audit trail must not depend on
how verbose an app was set to be.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from watchkeeper.model.events import LogLevel, level_named

AUDIT = int(LogLevel.AUDIT)
SECURITY = int(LogLevel.SECURITY)


def register_levels() -> None:
    """Give the two levels their names in ``logging`` (idempotent)."""
    logging.addLevelName(AUDIT, "AUDIT")
    logging.addLevelName(SECURITY, "SECURITY")


def level_of(name: str) -> int | None:
    """The number of a level written by name (``warn``, ``INFO``, ``audit``) or as a number."""
    text = name.strip()
    if text.isdigit():
        return int(text)
    level = level_named(text)
    return None if level is None else int(level)


def audit(
    message: str,
    *args: object,
    logger: logging.Logger | str = "audit",
    extra: Mapping[str, Any] | None = None,
    exc_info: Any = None,
    stacklevel: int = 1,
) -> None:
    """Write an AUDIT record (who did what) to ``logger``, whatever its level."""
    _write(AUDIT, message, args, logger, extra, exc_info, stacklevel)


def security(
    message: str,
    *args: object,
    logger: logging.Logger | str = "security",
    extra: Mapping[str, Any] | None = None,
    exc_info: Any = None,
    stacklevel: int = 1,
) -> None:
    """Write a SECURITY record (a refused key, a forged token) to ``logger``, whatever its level."""
    _write(SECURITY, message, args, logger, extra, exc_info, stacklevel)


def _write(
    level: int,
    message: str,
    args: tuple[object, ...],
    logger: logging.Logger | str,
    extra: Mapping[str, Any] | None,
    exc_info: Any,
    stacklevel: int,
) -> None:
    register_levels()
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    # Logger._log is what Logger.log calls once the level check passed (LoggerAdapter calls it
    # too): skipping that check is the point. Two more frames: this one and the helper's.
    target._log(level, message, args, exc_info=exc_info, extra=extra, stacklevel=stacklevel + 2)
