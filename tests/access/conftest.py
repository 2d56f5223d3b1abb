"""A standalone Watchkeeper on a real HTTP server over SQLite or PostgreSQL, holding the data
of two organisations, and keys of every role made through the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import MetricKind, MetricPoint, SessionMark, Snapshot, SpanKind
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.schema import api_keys
from watchkeeper.storage.sql_store import SqlStore

BOOTSTRAP = "bootstrap-key-0123456789abcdef"
ACME, GLOBEX = "acme", "globex"
# What only the other organisation's rows hold: none of it may reach an acme caller. Request
# values (path parameters) never contain these, so an error that echoes them cannot trip it.
GLOBEX_MARKERS = ("globex", "ug-1", "/globex-only", "globex-model")
ACME_MARKERS = ("acme", "ua-1", "ua-2", "/acme-only", "acme-model")
GLOBEX_TRACE = 7000
GLOBEX_SESSION = "sess-g"


@dataclass
class Deployment:
    url: str
    store: SqlStore
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def make_key(self, name: str, role: str, **fields: object) -> tuple[str, str]:
        with self.client(BOOTSTRAP) as client:
            answer = client.post("/api/v1/keys", json={"name": name, "role": role, **fields})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        self.tokens[name] = body["token"]
        self.key_ids[name] = body["key"]["key_id"]
        return body["key"]["key_id"], body["token"]


def fill_two_organisations(store: SqlStore, now: float) -> None:
    spans = []
    for index, (org, user, name, model, session) in enumerate(
        [
            (ACME, "ua-1", "POST /acme-only", "acme-model", "sess-a1"),
            (ACME, "ua-2", "POST /acme-only", "acme-model", "sess-a2"),
            (GLOBEX, "ug-1", "POST /globex-only", "globex-model", GLOBEX_SESSION),
        ]
        * 4
    ):
        trace = (GLOBEX_TRACE if org == GLOBEX else 6000) + index
        start = now - 200 + index * 5
        spans.append(
            span(
                start,
                0.3,
                name=name,
                user_id=user,
                org_id=org,
                session_id=session,
                trace_id=trace,
                span_id=100 + index,
            )
        )
        spans.append(
            span(
                start + 0.1,
                0.1,
                kind=SpanKind.INTEGRATION,
                name="openai",
                model=model,
                user_id=user,
                org_id=org,
                session_id=session,
                trace_id=trace,
                span_id=500 + index,
                parent_id=100 + index,
                input_tokens=10,
                output_tokens=5,
                cost=0.001,
            )
        )
    snapshots = [
        Snapshot(
            now - 100,
            "question",
            {"text": "globex secret"},
            GLOBEX_TRACE + 2,
            102,
            GLOBEX_SESSION,
            "ug-1",
            GLOBEX,
        )
    ]
    metrics = [
        MetricPoint(now - 90, "credits_used", MetricKind.COUNTER, 3, ACME),
        MetricPoint(now - 90, "credits_used", MetricKind.COUNTER, 4, GLOBEX),
    ]
    store.write(
        batch_of(
            spans,
            snapshots=snapshots,
            metrics=metrics,
            session_marks=[SessionMark(now - 5, "sess-a1", True, org_id=ACME)],
        )
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, object] = {"api_keys": [BOOTSTRAP]}
    if request.param == "sqlite":
        return load_settings(sqlite_path=tmp_path / "access.db", **common)
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return load_settings(database_url=url, database_schema=schema, **common)


def serve(settings: Settings, store: SqlStore) -> LiveServer:
    return LiveServer(create_app(settings, store=store)).start()


@contextmanager
def deployed(
    settings: Settings, fill: Callable[[SqlStore], None] = lambda store: None
) -> Iterator[Deployment]:
    """Watchkeeper served over a store opened with ``settings``, filled first, once it is open."""
    store = open_store(settings)
    fill(store)
    server = serve(settings, store)
    try:
        deployment = Deployment(server.url, store, settings)
        wait_open(deployment)
        yield deployment
    finally:
        server.stop()
        store.close()


@pytest.fixture
def deployment(settings: Settings) -> Iterator[Deployment]:
    with deployed(settings, lambda store: fill_two_organisations(store, time.time())) as served:
        yield served


def wait_open(deployment: Deployment) -> None:
    deadline = time.monotonic() + 60
    with deployment.client(BOOTSTRAP) as client:
        while client.get("/api/v1/keys").status_code != 200:
            assert time.monotonic() < deadline, "the server's store did not open"
            time.sleep(0.05)


def keys_of_every_kind(deployment: Deployment) -> None:
    """Keys of every role in acme, globex's admin and user, and expired and revoked keys."""
    make = deployment.make_key
    make("super", "super_admin")
    make("acme-admin", "org_admin", org_id=ACME)
    make("acme-user", "user", org_id=ACME, user_id="ua-1")
    make("acme-viewer", "read_only", org_id=ACME)
    make("ingest", "ingest_only")
    make("globex-admin", "org_admin", org_id=GLOBEX)
    make("globex-user", "user", org_id=GLOBEX, user_id="ug-1")
    expired_id, _ = make("expired", "org_admin", org_id=ACME)
    with deployment.store.engine.begin() as connection:
        past = (datetime.now(UTC) - timedelta(seconds=1)).timestamp()
        connection.execute(
            update(api_keys).where(api_keys.c.key_id == expired_id).values(expires_at=past)
        )
    revoked_id, _ = make("revoked", "org_admin", org_id=ACME)
    with deployment.client(BOOTSTRAP) as client:
        assert client.delete(f"/api/v1/keys/{revoked_id}").status_code == 200


def cli_environment(settings: Settings) -> dict[str, str]:
    """The environment a command needs to open the settings' store."""
    environment = {
        "WATCHKEEPER_SQLITE_PATH": str(settings.sqlite_path),
        "WATCHKEEPER_DATABASE_SCHEMA": settings.database_schema,
    }
    if settings.database_url is not None:
        environment["WATCHKEEPER_DATABASE_URL"] = settings.database_url.get_secret_value()
    return environment
