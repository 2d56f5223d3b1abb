"""The example app runs as documented and records what it says it does."""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from watchkeeper.config import load_settings
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import Dimension
from watchkeeper.recording.default import set_recorder
from watchkeeper.storage.factory import open_store
from watchkeeper.testing.fake_ai import FakeAIServer

ROOT = Path(__file__).resolve().parents[1]


def test_guidance_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAIServer(seed=1) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
        monkeypatch.setenv("WATCHKEEPER_SQLITE_PATH", str(tmp_path / "example.db"))
        monkeypatch.setenv("WATCHKEEPER_API_KEYS", '["example-key-0123456789"]')
        monkeypatch.syspath_prepend(str(ROOT))
        sys.modules.pop("examples.guidance_app", None)
        example = importlib.import_module("examples.guidance_app")
        try:
            with TestClient(example.app) as client:
                for _ in range(3):
                    response = client.post(
                        "/api/guidance",
                        json={"text": "Will I move?", "birth_date": "1990-04-01"},
                        headers={"X-Session-ID": "s-1", "X-Org-ID": "acme"},
                    )
                    assert response.status_code == 200, response.text
        finally:
            set_recorder(None)
    store = open_store(load_settings(sqlite_path=tmp_path / "example.db"))
    try:
        window = TimeRange.last(timedelta(minutes=5))
        names = {(s.kind, s.name) for s in store.overview(window, Scope.everything())}
        (model,) = store.usage(window, Scope.everything(), Dimension.MODEL)
        session = store.session("s-1", Scope.everything())
    finally:
        store.close()
    assert {
        ("request", "POST /api/guidance"),
        ("integration", "vector-store"),
        ("integration", "openai"),
        ("tool", "search_docs"),
        ("agent", "guide"),
        ("integration", "voice"),
    } <= names
    assert model.value == "gpt-4o-mini"
    assert model.cost > 0
    assert session is not None
    assert session.validations
    assert session.snapshots[0].name == "question"
