"""Settings made safe to show: every secret replaced by ``***`` before it leaves the process.

Three rules, any one of which redacts a value: it is a pydantic secret (``SecretStr``), its name
says it is a credential (key, password, token, secret, credential), or it is a URL carrying a
password. Numbers and booleans under a credential-like name (``max_live_keys``) are kept, since
a count cannot be a credential and hiding it would only hinder the operator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import Enum
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

from watchkeeper.health.status import JsonValue

REDACTED = "***"

_CREDENTIAL_WORDS = frozenset(
    {
        "key",
        "keys",
        "apikey",
        "password",
        "passwd",
        "pwd",
        "secret",
        "secrets",
        "token",
        "tokens",
        "credential",
        "credentials",
        "dsn",
        "auth",
    }
)
# scheme://user:password@host — the password is whatever sits between the first ':' after the
# user name and the last '@' before the host.
_URL_WITH_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^\s@/]*(?:@[^\s@/]*)*(@)")


def scrub_urls(text: str) -> str:
    """Replace the password of every URL inside ``text`` (an error message, say) by ``***``."""
    return _URL_WITH_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)


def is_credential_name(name: str) -> bool:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(word in _CREDENTIAL_WORDS for word in words)


def redact_settings(settings: BaseModel) -> dict[str, JsonValue]:
    """The effective settings as JSON, secrets replaced by ``***``."""
    return {name: _redact(name, getattr(settings, name)) for name in type(settings).model_fields}


def _redact(name: str, value: object) -> JsonValue:
    if value is None:
        return None
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if is_credential_name(name) and not _is_empty(value):
        return _mask(value)
    if isinstance(value, BaseModel):
        return redact_settings(value)
    if isinstance(value, Mapping):
        return {str(key): _redact(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(name, item) for item in value]
    text = _as_text(value)
    return REDACTED if _has_url_password(text) else text


def _mask(value: object) -> JsonValue:
    # Keep the shape (how many keys are configured) without any of the content.
    if isinstance(value, list | tuple | set | frozenset):
        return [REDACTED for _ in value]
    return REDACTED


def _is_empty(value: object) -> bool:
    return isinstance(value, str | bytes | list | tuple | set | frozenset | Mapping) and not value


def _as_text(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def _has_url_password(text: str) -> bool:
    if _URL_WITH_PASSWORD.search(text):
        return True
    try:
        return urlsplit(text).password is not None
    except ValueError:
        return False
