"""Who a request is for: user, organisation and session, from configurable extractors.

Each extractor looks at one place — a header, a JWT claim, ``request.state``, or your own
function — and the first answer for each of the three wins.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Headers = Mapping[bytes, bytes]
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str | None = None
    org_id: str | None = None
    session_id: str | None = None


class IdentityExtractor(Protocol):
    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity: ...


def _clean(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text[:MAX_ID_LENGTH]


def _identity_from(values: Mapping[str, Any], user: str, org: str, session: str) -> Identity:
    return Identity(_clean(values.get(user)), _clean(values.get(org)), _clean(values.get(session)))


@dataclass(frozen=True, slots=True)
class FromHeaders:
    user: str = "x-user-id"
    org: str = "x-org-id"
    session: str = "x-session-id"

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        return Identity(
            _clean(headers.get(self.user.lower().encode())),
            _clean(headers.get(self.org.lower().encode())),
            _clean(headers.get(self.session.lower().encode())),
        )


@dataclass(frozen=True, slots=True)
class FromJwtClaims:
    """Claims of a ``Bearer`` JWT, read WITHOUT verifying its signature.

    For labelling traces only: never use what this returns for access decisions. Your app
    verifies the token; Watchkeeper only reads who it says it is for.
    """

    user: str = "sub"
    org: str = "org_id"
    session: str = "sid"

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() != b"bearer ":
            return Identity()
        parts = authorization[7:].strip().split(b".")
        if len(parts) != 3:
            return Identity()
        try:
            padded = parts[1] + b"=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (binascii.Error, ValueError):
            return Identity()
        if not isinstance(claims, dict):
            return Identity()
        return Identity(
            _clean(claims.get(self.user)),
            _clean(claims.get(self.org)),
            _clean(claims.get(self.session)),
        )


@dataclass(frozen=True, slots=True)
class FromRequestState:
    """Attributes your own middleware or dependencies set on ``request.state``.

    Read when the response is finished, so it labels the request span but not the integration
    calls made while the request ran.
    """

    user: str = "user_id"
    org: str = "org_id"
    session: str = "session_id"

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        state = scope.get("state") or {}
        return Identity(
            _clean(state.get(self.user)),
            _clean(state.get(self.org)),
            _clean(state.get(self.session)),
        )


@dataclass(frozen=True, slots=True)
class FromCallable:
    """Your own function of the ASGI scope, returning an :class:`Identity`."""

    function: Callable[[MutableMapping[str, Any]], Identity]

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        return self.function(scope)


def identify(
    extractors: Sequence[IdentityExtractor], scope: MutableMapping[str, Any], headers: Headers
) -> Identity:
    user = org = session = None
    for extractor in extractors:
        found = extractor.extract(scope, headers)
        user, org, session = user or found.user_id, org or found.org_id, session or found.session_id
        if user and org and session:
            break
    return Identity(user, org, session)
