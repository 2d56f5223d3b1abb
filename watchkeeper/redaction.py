"""Redaction, in one place: of recorded data, of settings shown, of error messages shown.

Data: personal data is redacted before it is stored, on the flush worker, never the request
path. Defaults cover e-mail addresses, phone numbers, payment card numbers (Luhn-checked, so
order ids survive), API keys and bearer tokens. Users add field names (whose values are replaced
whole, e.g. ``birth_date``) and extra patterns.

Settings: every secret replaced by ``***`` before it leaves the process. Three rules, any one of
which redacts a value: it is a pydantic secret (``SecretStr``), its name says it is a credential
(key, password, token, secret, credential), or it is a URL carrying a password. Numbers and
booleans under a credential-like name (``max_live_keys``) are kept, since a count cannot be a
credential and hiding it would only hinder the operator.

Errors: URLs inside a message (a store's connection error, say) lose their password, and
:func:`scrub_error` also replaces host names, addresses and ports by ``(host)`` and ``(port)``:
what a store's error shows anywhere goes through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

from watchkeeper.model.json import JsonValue

MASK = "[REDACTED]"

# One alternation, so each string is scanned once however many kinds of data are looked for.
# Phone numbers take spaces, dashes and brackets but not dots, so IPv4 addresses stay readable.
_DEFAULT = re.compile(
    r"(?P<bearer>(?i:\bbearer\s+)[A-Za-z0-9\-._~+/]+=*)"
    r"|(?P<key>\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{30,})\b)"
    r"|(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
    r"|(?P<card>\b(?:\d[ -]?){12,18}\d\b)"
    r"|(?P<phone>(?<!\w)(?<!\d\.)(?!\d{4}-\d\d-\d\d)(?:\+|\()?\d[\d ()-]{7,}\d(?!\w|\.\d))"
)
# What every phone number and card number the expression accepts contains: nine or more digits,
# spaces, dashes and brackets, from a digit to a digit. IP addresses and short numbers do not.
_DIGIT_RUN = re.compile(r"\d[\d ()-]{7,}\d")


def _may_hold_personal_data(value: str) -> bool:
    """A cheap first look: the full expression costs microseconds, and most strings are clean."""
    return (
        "@" in value
        or _DIGIT_RUN.search(value) is not None
        or "sk-" in value
        or "earer" in value
        or "EARER" in value
        or "AKIA" in value
        or "AIza" in value
        or "xox" in value
        or "gh" in value
    )


DEFAULT_FIELDS = frozenset(
    {"password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie"}
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in ("card", "phone"):
        digits = re.sub(r"\D", "", match.group())
        if kind == "card" and not (13 <= len(digits) <= 19 and _luhn_valid(digits)):
            return match.group()
        if kind == "phone" and not 8 <= len(digits) <= 15:
            return match.group()
    return MASK


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data in strings and (nested) mappings and lists."""

    field_names: frozenset[str] = DEFAULT_FIELDS
    patterns: tuple[re.Pattern[str], ...] = ()
    _lowered: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lowered", frozenset(name.lower() for name in self.field_names))

    @classmethod
    def build(cls, field_names: Iterable[str] = (), patterns: Iterable[str] = ()) -> Redactor:
        """Defaults plus the user's own; a bad pattern fails here, at start-up."""
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as error:
                raise ValueError(
                    f"redaction pattern {pattern!r} is not a valid regex: {error}"
                ) from None
        return cls(DEFAULT_FIELDS | frozenset(field_names), tuple(compiled))

    def text(self, value: str) -> str:
        if _may_hold_personal_data(value):
            value = _DEFAULT.sub(_mask, value)
        for pattern in self.patterns:
            value = pattern.sub(MASK, value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return self.mapping(value)
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def mapping(self, data: Mapping[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = {}
        for key, item in data.items():
            if str(key).lower() in self._lowered:
                redacted[key] = MASK
            elif type(item) is str:
                redacted[key] = self.text(item)
            elif isinstance(item, int | float | bool) or item is None:
                redacted[key] = item  # the common case: nothing to look at
            else:
                redacted[key] = self.value(item)
        return redacted


# -- settings and error messages ------------------------------------------------------------

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


HOST = "(host)"
PORT = "(port)"
# scheme://[user[:password]@]host[:port]: the host and port of any URL.
_URL_HOST = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/\s@]*@)?)"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^/\s:@?#\"']+)(?::(?P<port>\d+))?"
)
# A host named by what drivers say around it: 'server at "db"', 'host "db"', 'host=db',
# 'host name "db"', 'resolve host 'db''.
_NAMED_HOST = re.compile(
    r"(?i)(?P<head>\b(?:server at|host name|hostname|host|hostaddr|address|resolve host)"
    r"(?:\s*=\s*|\s+))(?P<quote>[\"']?)(?P<host>(?!\(host\))[^\s\"',;()]+)(?P=quote)"
)
_PORT = re.compile(r"(?i)(?P<head>\bport(?:\s*=\s*|\s+))(?P<quote>[\"']?)\d{1,5}(?P=quote)")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\](?::\d{1,5})?")
_SOCKET = re.compile(r"(?i)(?P<head>\bsocket\s+)(?P<quote>[\"']?)[^\s\"']+(?P=quote)")


def _url_host(match: re.Match[str]) -> str:
    port = f":{PORT}" if match.group("port") else ""
    return f"{match.group('head')}{HOST}{port}"


def _address(match: re.Match[str]) -> str:
    return f"{HOST}:{PORT}" if match.group().rsplit("]", 1)[-1].count(":") else HOST


def scrub_hosts(text: str) -> str:
    """Replace host names, IP addresses, ports and socket paths in ``text`` (an error message).

    ``connection to server at "10.1.2.3", port 5432 failed`` becomes
    ``connection to server at "(host)", port (port) failed``.
    """
    text = _URL_HOST.sub(_url_host, text)
    text = _NAMED_HOST.sub(rf"\g<head>\g<quote>{HOST}\g<quote>", text)
    text = _PORT.sub(rf"\g<head>\g<quote>{PORT}\g<quote>", text)
    text = _SOCKET.sub(rf"\g<head>\g<quote>{HOST}\g<quote>", text)
    text = _IPV6.sub(_address, text)
    return _IPV4.sub(_address, text)


def scrub_error(text: str) -> str:
    """An error message fit to show: URLs without passwords, no hosts, addresses or ports."""
    return scrub_hosts(scrub_urls(text))


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
        return _mask_shape(value)
    if isinstance(value, BaseModel):
        return redact_settings(value)
    if isinstance(value, Mapping):
        return {str(key): _redact(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(name, item) for item in value]
    text = _as_text(value)
    return REDACTED if _has_url_password(text) else text


def _mask_shape(value: object) -> JsonValue:
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
