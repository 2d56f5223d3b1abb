"""Settings read from the environment the way the README's configuration table describes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchkeeper.config import ConfigurationError, load_settings


@pytest.mark.parametrize(
    ("given", "period"),
    [
        ("3600", timedelta(hours=1)),
        ("90.5", timedelta(seconds=90.5)),
        ("PT1H", timedelta(hours=1)),
        ("P7D", timedelta(days=7)),
    ],
)
def test_retention_periods_read_seconds_or_iso_8601(
    monkeypatch: pytest.MonkeyPatch, given: str, period: timedelta
) -> None:
    monkeypatch.setenv("WATCHKEEPER_RETENTION_SPANS", given)
    assert load_settings().retention_spans == period


@pytest.mark.parametrize("given", ["0", "-P1D", "soon"])
def test_a_retention_period_that_is_not_a_positive_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("WATCHKEEPER_RETENTION_LOGS", given)
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_RETENTION_LOGS"):
        load_settings()
