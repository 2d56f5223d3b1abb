"""A service in another language: OpenTelemetry JS's own SDK and OTLP/HTTP exporter (OTLP JSON) in
Node.js send a chat request and its LLM call; Watchkeeper stores and prices the call, and the REST
API shows it in one trace with the Python app's request the Node service made.

The npm packages (``tests/otlp/node``, versions pinned by its package-lock.json) are installed once
with ``npm ci`` into pytest's cache directory, under a name that changes with the lock file or the
script; ``scripts/test`` installs Node.js and npm where they are missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.otlp.served import INGEST_KEY, Served

NODE_PROJECT = Path(__file__).parent / "node"
PROJECT_FILES = ("package.json", "package-lock.json", "send_trace.mjs")
INSTALL_SECONDS = 900
"""A first install on a fresh CI machine downloads a dozen packages: a generous deadline."""
NETWORK_ERRORS = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
)
"""npm's error codes for a registry it cannot reach."""


def _executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: scripts/test installs Node.js and npm with apt-get")
    return found


@pytest.fixture(scope="module")
def node_sender(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """The command running the sender script beside its node_modules, installed once per lock."""
    node, npm = _executable("node"), _executable("npm")
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        digest.update((NODE_PROJECT / name).read_bytes())
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("otlp-node") if cache is not None else tmp_path_factory.getbasetemp()
    installed = root / digest.hexdigest()[:16]
    command = [node, str(installed / "send_trace.mjs")]
    if (installed / "node_modules" / ".package-lock.json").exists():
        return command
    # Installed beside, then renamed into place: a run beside this one installs into its own
    # directory, and whichever renames second keeps the first one's.
    staging = Path(tempfile.mkdtemp(prefix="installing-", dir=root))
    for name in PROJECT_FILES:
        shutil.copy(NODE_PROJECT / name, staging / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(staging)],
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        if any(code in done.stderr for code in NETWORK_ERRORS):
            pytest.skip(f"npm cannot reach its registry: {done.stderr.strip()[-500:]}")
        pytest.fail(f"npm ci failed:\n{done.stderr[-2000:]}")
    try:
        staging.rename(installed)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return command


def _nodes(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every node of the API's span tree, depth first."""
    found = []
    for node in tree:
        found.append(node)
        found.extend(_nodes(node["children"]))
    return found


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_SECONDS + 300)
def test_a_node_service_trace_is_stored_priced_and_shown_beside_the_python_app(
    served: Served, node_sender: list[str]
) -> None:
    sent = subprocess.run(
        [*node_sender, served.traces_url, INGEST_KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    ids = json.loads(sent.stdout)
    trace_id, root_id = ids["traceId"], ids["rootSpanId"]

    # The Node service calls the Python app, passing its trace on as W3C trace context does.
    answer = httpx.get(
        f"{served.url}/hello", headers={"traceparent": f"00-{trace_id}-{root_id}-01"}
    )
    assert answer.status_code == 200

    found = served.api(f"/traces/{trace_id}")
    assert found["span_count"] == 3
    [root] = found["roots"]
    spans = {node["span"]["name"]: node["span"] for node in _nodes(found["roots"])}
    assert set(spans) == {"POST /chat", "openai", "GET /hello"}
    gateway, call, python = spans["POST /chat"], spans["openai"], spans["GET /hello"]

    assert root["span"] == gateway
    assert (gateway["kind"], gateway["span_id"]) == ("request", root_id)
    assert gateway["attributes"]["service.name"] == "chat-gateway"
    assert gateway["attributes"]["telemetry.sdk.language"] == "nodejs"

    assert (call["kind"], call["operation"]) == ("integration", "chat gpt-4o-mini")
    assert (call["span_id"], call["parent_id"]) == (ids["callSpanId"], root_id)
    assert call["model"] == "gpt-4o-mini"
    assert (call["input_tokens"], call["output_tokens"]) == (1000, 500)
    # Priced by Watchkeeper, as the Python app's own calls are: $0.15 and $0.60 per million tokens.
    assert call["cost"] == pytest.approx(1_000 * 0.15e-6 + 500 * 0.6e-6)
    assert call["user_id"] == "node-user"

    assert (python["kind"], python["parent_id"]) == ("request", root_id)
    assert "service.name" not in python["attributes"]  # the app's own, recorded in-process

    usage = {row["value"]: row for row in served.api("/costs/model")}
    assert usage["gpt-4o-mini"]["cost"] == pytest.approx(call["cost"])
