"""Real receivers on 127.0.0.1 for the channels' tests: an HTTP server that records what it is
sent and answers as told, a Slack look-alike that checks Slack's documented payload rules, an
SMTP server (aiosmtpd) with STARTTLS and AUTH, and Debian's Prometheus Alertmanager."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from tests.support.phoenix import free_port
from tests.support.server import LiveServer

# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """time.monotonic() on arrival."""


class HttpReceiver:
    """Records every POST; answers with the planned replies in turn, then 200 ``ok``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._plan: list[Reply] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.received.append(
                    Received(f"/{path}", dict(request.headers), body, time.monotonic())
                )
                reply = self._plan.pop(0) if self._plan else None
            reply = reply or self.default_reply(f"/{path}", body)
            deadline = time.monotonic() + reply.delay
            # A slow answer ends early when the server stops, so stopping never waits on it.
            while time.monotonic() < deadline and not self._closing.is_set():
                await asyncio.sleep(0.02)
            return Response(reply.body, reply.status, reply.headers, media_type="text/plain")

        self.server = LiveServer(app)
        self.url = self.server.url

    def default_reply(self, path: str, body: bytes) -> Reply:
        return Reply()

    def plan(self, *replies: Reply) -> None:
        with self._lock:
            self._plan.extend(replies)

    def start(self) -> HttpReceiver:
        self.server.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self.server.stop()


# -- Slack --------------------------------------------------------------------------------------

# The rules of Slack's reference (Block Kit blocks, composition objects, secondary attachments)
# that the channel's messages touch, then Slack's own SDK models (slack_sdk) as a second opinion;
# anything else in a block is refused as Slack does.
_COLOUR = re.compile(r"^(#[0-9A-Fa-f]{6}|good|warning|danger)$")
MAX_BLOCKS = 50


class SlackRefusal(Exception):
    def __init__(self, code: str, why: str) -> None:
        super().__init__(f"{code}: {why}")
        self.code = code


def _text_object(value: Any, *, plain_only: bool = False, limit: int = 3000) -> None:
    if not isinstance(value, dict) or set(value) - {"type", "text", "emoji", "verbatim"}:
        raise SlackRefusal("invalid_blocks", f"text object {value!r}")
    allowed = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    if value.get("type") not in allowed:
        raise SlackRefusal("invalid_blocks", f"text type {value.get('type')!r}")
    text = value.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        raise SlackRefusal("invalid_blocks", f"text of {len(text or '')} characters")


def _url(value: Any) -> None:
    if not isinstance(value, str) or len(value) > 3000 or not value.startswith("http"):
        raise SlackRefusal("invalid_blocks", f"url {value!r}")


def _block(block: Any) -> None:
    if not isinstance(block, dict):
        raise SlackRefusal("invalid_blocks", "a block that is not an object")
    kind = block.get("type")
    keys = set(block) - {"type", "block_id"}
    if kind == "header":
        if keys != {"text"}:
            raise SlackRefusal("invalid_blocks", f"header keys {keys}")
        _text_object(block["text"], plain_only=True, limit=150)
    elif kind == "section":
        if not keys <= {"text", "fields", "accessory"} or not keys & {"text", "fields"}:
            raise SlackRefusal("invalid_blocks", f"section keys {keys}")
        if "text" in block:
            _text_object(block["text"])
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            raise SlackRefusal("invalid_blocks", "more than 10 fields")
        for item in fields:
            _text_object(item, limit=2000)
    elif kind == "context":
        elements = block.get("elements")
        if keys != {"elements"} or not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            raise SlackRefusal("invalid_blocks", "context elements")
        for element in elements:
            _text_object(element)
    elif kind == "actions":
        elements = block.get("elements")
        if keys != {"elements"} or not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            raise SlackRefusal("invalid_blocks", "actions elements")
        for element in elements:
            if not isinstance(element, dict) or element.get("type") != "button":
                raise SlackRefusal("invalid_blocks", f"action {element!r}")
            if set(element) - {"type", "text", "url", "action_id", "value", "style"}:
                raise SlackRefusal("invalid_blocks", f"button keys {set(element)}")
            _text_object(element["text"], plain_only=True, limit=75)
            _url(element.get("url"))
    elif kind != "divider":
        raise SlackRefusal("invalid_blocks", f"block type {kind!r}")


def check_slack_payload(payload: Any) -> None:
    """Raise :class:`SlackRefusal` where Slack would answer 400."""
    if not isinstance(payload, dict):
        raise SlackRefusal("invalid_payload", "not a JSON object")
    text, attachments = payload.get("text"), payload.get("attachments")
    if not (isinstance(text, str) and text) and not payload.get("blocks"):
        raise SlackRefusal("no_text", "neither text nor blocks")
    blocks = list(payload.get("blocks") or [])
    for attachment in attachments or []:
        if not isinstance(attachment, dict):
            raise SlackRefusal("invalid_attachments", "an attachment that is not an object")
        if "color" in attachment and not _COLOUR.match(str(attachment["color"])):
            raise SlackRefusal("invalid_attachments", f"colour {attachment['color']!r}")
        blocks += attachment.get("blocks") or []
    if len(blocks) > MAX_BLOCKS:
        raise SlackRefusal("invalid_blocks", f"{len(blocks)} blocks")
    for block in blocks:
        _block(block)
        check_with_slack_sdk(block)


def check_with_slack_sdk(block: dict[str, Any]) -> None:
    """A second opinion: Slack's own SDK models, which carry the documented limits, must take
    the block whole (parsed back to the same JSON, so no field they do not know)."""
    try:
        parsed = Block.parse(block)
        if parsed is None:
            raise SlackRefusal("invalid_blocks", f"the SDK does not know {block!r}")
        parsed.validate_json()
    except SlackObjectFormationError as error:
        raise SlackRefusal("invalid_blocks", str(error)) from None
    if parsed.to_dict() != block:
        raise SlackRefusal("invalid_blocks", f"fields the SDK does not know in {block!r}")


class SlackReceiver(HttpReceiver):
    """An incoming webhook as Slack documents it: ``ok``, or 400 with the refusal's code."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: list[str] = []

    def default_reply(self, path: str, body: bytes) -> Reply:
        try:
            check_slack_payload(json.loads(body))
        except (SlackRefusal, ValueError) as refusal:
            self.refusals.append(str(refusal))
            return Reply(400, getattr(refusal, "code", "invalid_payload"))
        return Reply(200, "ok")


# -- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed_certificate(directory: Path) -> Certificate:
    """A certificate for 127.0.0.1 and localhost that is its own CA (the client's ``ca_file``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None
    tls: bool


class MailHandler:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.authenticated else None
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                message,
                login,
                # STARTTLS sets session.ssl; TLS from the first byte is the transport's own.
                bool(session.ssl) or server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 OK"


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login == self.user
            and data.password == self.password
        ):
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


@contextmanager
def smtp_server(
    certificate: Certificate | None, user: str, password: str, implicit_tls: bool = False
) -> Iterator[tuple[int, MailHandler]]:
    """aiosmtpd on 127.0.0.1: STARTTLS required (or, with ``implicit_tls``, TLS from the first
    byte) and AUTH only over TLS when a certificate is given; without one, a plain server that
    offers neither."""
    handler = MailHandler()
    port = free_port()
    tls: dict[str, Any] = {}
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        tls = {
            "authenticator": Authenticator(user, password),
            "auth_required": True,
            "auth_require_tls": True,
        }
        if implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS throughout.
            tls |= {"ssl_context": context, "auth_require_tls": False}
        else:
            tls |= {"tls_context": context, "require_starttls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30, **tls)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


# -- Alertmanager -------------------------------------------------------------------------------

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
START_SECONDS = 60.0


class Alertmanager:
    """Debian's Alertmanager on a free port, state in ``directory``, notifying ``webhook_url``
    (firing and resolved) one second after a group changes."""

    def __init__(self, directory: Path, webhook_url: str) -> None:
        assert ALERTMANAGER is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "alertmanager.yml"
        config.write_text(
            f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""
        )
        self.log = directory / "alertmanager.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={config}",
                    f"--storage.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> Alertmanager:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Alertmanager exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Alertmanager did not start:\n{self.log.read_text()[-3000:]}")

    def alerts(self) -> list[dict[str, Any]]:
        """Its API v2's alerts (those not yet resolved)."""
        answer = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        answer.raise_for_status()
        return list(answer.json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
