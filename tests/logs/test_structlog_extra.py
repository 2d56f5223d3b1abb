"""structlog is an optional extra: without it, asking for the processor says how to install it."""

from __future__ import annotations

import sys

import pytest

import watchkeeper.logging as wk_logging


def test_without_structlog_the_processor_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "structlog", None)
    monkeypatch.setitem(sys.modules, "structlog.typing", None)
    monkeypatch.delitem(sys.modules, "watchkeeper.logs.structlog_capture", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'watchkeeper\[structlog\]'"):
        wk_logging.structlog_processor()
