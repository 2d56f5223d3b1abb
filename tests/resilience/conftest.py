"""Fixtures for the resilience tests: a real flaky service, a recorder, a fresh Resilience."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.resilience.flaky import FlakyService, flaky_service
from watchkeeper.resilience.events import Events
from watchkeeper.resilience.registry import Resilience
from watchkeeper.testing.plugin import RecorderUnderTest


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[tuple[FlakyService, str]]:
    with flaky_service() as running:
        yield running


@pytest.fixture
def service(flaky_server: tuple[FlakyService, str]) -> FlakyService:
    flaky_server[0].reset()
    return flaky_server[0]


@pytest.fixture
def url(flaky_server: tuple[FlakyService, str]) -> str:
    return flaky_server[1]


@pytest.fixture
def resilience(watchkeeper_recorder: RecorderUnderTest) -> Iterator[Resilience]:
    resilience = Resilience(events=Events(watchkeeper_recorder))
    yield resilience
    resilience.state.close()
