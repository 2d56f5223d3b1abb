"""Real servers: uvicorn serving the app, and Prometheus scraping it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.metrics.support import (
    free_port,
    poll,
    prometheus,
    running,
    total,
    uvicorn_command,
    wait_until_serving,
)

KEY = "end-to-end-key-0123456789"
pytestmark = pytest.mark.slow


def app_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    # The store the instrumented app's API reads: the test's, not the working directory's.
    return {
        "WATCHKEEPER_API_KEYS": f'["{KEY}"]',
        "WATCHKEEPER_SQLITE_PATH": str(tmp_path / "watchkeeper.db"),
        **extra,
    }


@pytest.mark.skipif(
    prometheus() is None,
    reason="the Prometheus server is not installed (Debian package prometheus)",
)
def test_prometheus_scrapes_the_app_and_answers_queries(tmp_path: Path) -> None:
    app_port, prometheus_port = free_port(), free_port()
    app_log = tmp_path / "app.log"
    with running(uvicorn_command(app_port), app_environment(tmp_path), app_log) as server:
        wait_until_serving(f"http://127.0.0.1:{app_port}/items/0", server, app_log)
        (tmp_path / "key").write_text(KEY)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    scrape_interval: 1s
    authorization:
      type: Bearer
      credentials_file: {tmp_path / "key"}
    static_configs:
      - targets: ["127.0.0.1:{app_port}"]
"""
        )
        command = [
            str(prometheus()),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        prometheus_log = tmp_path / "prometheus.log"
        with running(command, {}, prometheus_log, cwd=tmp_path) as server_process:
            with httpx.Client(base_url=f"http://127.0.0.1:{app_port}") as client:
                for index in range(25):
                    assert client.get(f"/items/{index}").status_code == 200
                assert client.get("/items/not-a-number").status_code == 422
            api = f"http://127.0.0.1:{prometheus_port}/api/v1/query"
            query = 'sum by (status) (http_requests_total{job="app",handler="/items/{item_id}"})'

            def counted() -> dict[str, float] | None:
                if server_process.poll() is not None:
                    raise RuntimeError(f"prometheus exited:\n{prometheus_log.read_text()}")
                try:
                    answer = httpx.get(api, params={"query": query}, timeout=2.0).json()
                except (httpx.TransportError, ValueError):
                    return None
                by_status = {
                    result["metric"]["status"]: float(result["value"][1])
                    for result in answer.get("data", {}).get("result", [])
                }
                # The readiness probe above was one more request to the same handler.
                return by_status if by_status.get("2xx", 0) >= 26 and "4xx" in by_status else None

            by_status = poll(counted, 60.0, "Prometheus to report the requests")
            assert by_status == {"2xx": 26.0, "4xx": 1.0}
            up = httpx.get(api, params={"query": 'up{job="app"}'}, timeout=2.0).json()
            assert float(up["data"]["result"][0]["value"][1]) == 1.0


def test_workers_share_one_exposition(tmp_path: Path) -> None:
    directory = tmp_path / "multiprocess"
    directory.mkdir()
    port = free_port()
    log = tmp_path / "app.log"
    requests = 60
    environment = app_environment(tmp_path, WATCHKEEPER_METRICS_MULTIPROCESS_DIR=str(directory))
    with running(uvicorn_command(port, workers=2), environment, log) as server:
        wait_until_serving(f"http://127.0.0.1:{port}/items/0", server, log)
        sent = 1  # the request that found the server up
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for index in range(requests - sent):
                # A fresh connection each time, so both workers take requests.
                assert client.get(f"/items/{index}", headers={"Connection": "close"}).is_success
            headers = {"Authorization": f"Bearer {KEY}", "Connection": "close"}

            def scraped_all() -> str | None:
                text = client.get("/metrics", headers=headers).text
                return text if total(text, "http_requests_total") >= requests else None

            scrapes = [poll(scraped_all, 20.0, f"{requests} requests in /metrics")]
            scrapes += [client.get("/metrics", headers=headers).text for _ in range(4)]
    for text in scrapes:
        handler = "/items/{item_id}"
        assert total(text, "http_requests_total", handler=handler, status="2xx") == requests
        assert total(text, "watchkeeper_recorder_events_recorded_total") >= requests
    # Both workers wrote their own files into the shared directory.
    assert len({path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}) == 2
