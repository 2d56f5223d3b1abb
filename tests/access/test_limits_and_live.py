"""Per-key rate limits shared by two replicas through Redis, and a live feed that carries only
the caller's scope."""

from __future__ import annotations

import json
import os
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.access.conftest import ACME, BOOTSTRAP, GLOBEX, Deployment, serve
from tests.support.stores import batch_of, span
from watchkeeper.config import Settings, load_settings

REDIS_URL_VARIABLE = "WATCHKEEPER_TEST_REDIS_URL"


def test_one_key_s_limit_is_shared_by_two_replicas_through_redis(
    deployment: Deployment, settings: Settings
) -> None:
    redis_url = os.environ.get(REDIS_URL_VARIABLE)
    if not redis_url:
        pytest.skip(f"set {REDIS_URL_VARIABLE} to run the Redis tests")
    shared = load_settings(**{**settings.model_dump(), "redis_url": redis_url})
    _, token = deployment.make_key("limited", "read_only", org_id=ACME, rate_limit=6)
    first = serve(shared, deployment.store)
    second = serve(shared, deployment.store)
    try:
        answers = []
        retry_after = None
        for index in range(10):
            replica = (first, second)[index % 2]
            with deployment.client(token) as client:
                answer = client.get(replica.url + "/api/v1/integrations")
            answers.append(answer.status_code)
            if answer.status_code == 429:
                retry_after = answer.headers["Retry-After"]
                assert answer.json()["error"]["status"] == 429
        # Six in the minute between them, whichever replica was asked: not six each.
        assert answers == [200] * 6 + [429] * 4
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 60
        # Another key has its own allowance.
        with deployment.client(BOOTSTRAP) as client:
            assert client.get(first.url + "/api/v1/integrations").status_code == 200
    finally:
        first.stop()
        second.stop()


def test_without_redis_each_process_counts_its_own(deployment: Deployment) -> None:
    _, token = deployment.make_key("limited", "read_only", org_id=ACME, rate_limit=3)
    with deployment.client(token) as client:
        answers = [client.get("/api/v1/integrations").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]


def test_the_live_feed_sends_only_the_caller_s_scope(deployment: Deployment) -> None:
    _, acme_admin = deployment.make_key("acme-admin", "org_admin", org_id=ACME)
    url = deployment.url.replace("http://", "ws://") + "/api/v1/live"
    headers = {"Authorization": f"Bearer {acme_admin}"}
    with connect(url, open_timeout=30, additional_headers=headers) as socket:
        assert json.loads(socket.recv(timeout=30)) == {"type": "ready"}
        now = time.time()
        deployment.store.write(
            batch_of(
                [
                    span(now, 0.05, name="POST /globex-live", org_id=GLOBEX, user_id="ug-1"),
                    span(now + 0.01, 0.05, name="POST /acme-live", org_id=ACME, user_id="ua-1"),
                ]
            )
        )
        names: list[str] = []
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while "POST /acme-live" not in names and time.monotonic() < deadline:
            message = socket.recv(timeout=30)
            seen.append(str(message))
            body = json.loads(message)
            if body["type"] == "spans":
                names += [item["name"] for item in body["spans"]]
        assert "POST /acme-live" in names
        assert not [text for text in seen if "globex" in text]


def test_the_live_feed_refuses_ingest_only_and_keys_in_the_url(deployment: Deployment) -> None:
    _, ingest = deployment.make_key("ingest", "ingest_only")
    url = deployment.url.replace("http://", "ws://") + "/api/v1/live"
    for target, headers in (
        (url, {"Authorization": f"Bearer {ingest}"}),
        (url + "?key=" + BOOTSTRAP, {}),
    ):
        with connect(target, open_timeout=30, additional_headers=headers) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=30)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
