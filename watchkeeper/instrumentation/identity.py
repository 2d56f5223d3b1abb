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

from watchkeeper.config import DEFAULT_ORG_HEADER, DEFAULT_SESSION_HEADER, DEFAULT_USER_HEADER

Headers = Mapping[bytes, bytes]
MAX_ID_LENGTH = 1024
"""Bounds what a request holds on to; the store shortens longer ids further, keeping distinct
ids distinct (see :mod:`watchkeeper.storage.rows`)."""
AUTHORIZATION = b"authorization"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str | None = None
    org_id: str | None = None
    session_id: str | None = None


NOBODY = Identity()
"""What an extractor that found nothing returns: one shared object, not one per request."""


def _identity(user_id: str | None, org_id: str | None, session_id: str | None) -> Identity:
    if user_id is None and org_id is None and session_id is None:
        return NOBODY
    return Identity(user_id, org_id, session_id)


class IdentityExtractor(Protocol):
    """Anything with this method can be passed in ``RequestOptions(identity=...)``."""

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity: ...


def _clean(value: object) -> str | None:
    if value is None or value in ("", b""):
        return None
    text = _header_text(value) if isinstance(value, bytes) else str(value)
    return text[:MAX_ID_LENGTH]


def _header_text(value: bytes) -> str:
    """A header value as text: UTF-8 when it is valid UTF-8 (``héllo``), else byte for byte.

    ASGI hands header values over as the bytes sent; HTTP's historical charset is latin-1, but
    clients send identities in UTF-8. ASCII, nearly every value, is checked for in C first.
    """
    if value.isascii():
        return value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class FromHeaders:
    """Request headers naming the user, organisation and session (any of them may be absent)."""

    __slots__ = ("_names",)

    def __init__(
        self,
        user: str = DEFAULT_USER_HEADER,
        org: str = DEFAULT_ORG_HEADER,
        session: str = DEFAULT_SESSION_HEADER,
    ) -> None:
        for role, header in (("user", user), ("org", org), ("session", session)):
            if not isinstance(header, str) or not header:
                raise TypeError(f"FromHeaders' {role} header must be a header name, got {header!r}")
        # ASGI gives header names lower-cased as bytes: converted once here, not per request.
        self._names = tuple(header.lower().encode("latin-1") for header in (user, org, session))

    @property
    def header_names(self) -> tuple[bytes, ...]:
        """The user, organisation and session header names, as ASGI spells them."""
        return self._names

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        get = headers.get
        user_name, org_name, session_name = self._names
        user, org, session = get(user_name), get(org_name), get(session_name)
        if user is None and org is None and session is None:
            return NOBODY  # most requests of most apps: no cleaning, no object
        return _identity(_clean(user), _clean(org), _clean(session))


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
        authorization = headers.get(AUTHORIZATION)
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return NOBODY
        parts = authorization[7:].strip().split(b".")
        if len(parts) != 3:
            return NOBODY
        try:
            padded = parts[1] + b"=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (binascii.Error, ValueError):
            return NOBODY
        if not isinstance(claims, dict):
            return NOBODY
        return _identity(
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
        state = scope.get("state")
        if not state:
            return NOBODY
        user, org, session = state.get(self.user), state.get(self.org), state.get(self.session)
        if user is None and org is None and session is None:
            return NOBODY  # state the app keeps for other things: no cleaning, no object
        return _identity(_clean(user), _clean(org), _clean(session))


ScopeReader = Callable[[MutableMapping[str, Any]], str | None]


class FromCallable:
    """Your own functions of the ASGI scope, one per thing they know (``None``: unknown).

    ``FromCallable(org=lambda scope: tenant_of(scope["server"][0]))``
    """

    __slots__ = ("_org", "_session", "_user")

    def __init__(
        self,
        user: ScopeReader | None = None,
        org: ScopeReader | None = None,
        session: ScopeReader | None = None,
    ) -> None:
        readers = {"user": user, "org": org, "session": session}
        for role, reader in readers.items():
            if reader is not None and not callable(reader):
                raise TypeError(
                    f"FromCallable's {role} must be a function of the ASGI scope, got {reader!r}"
                )
        if user is None and org is None and session is None:
            raise TypeError("FromCallable needs at least one of user=, org= or session=")
        self._user, self._org, self._session = user, org, session

    def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
        return _identity(
            _clean(self._user(scope)) if self._user is not None else None,
            _clean(self._org(scope)) if self._org is not None else None,
            _clean(self._session(scope)) if self._session is not None else None,
        )


def identify(
    extractors: Sequence[IdentityExtractor], scope: MutableMapping[str, Any], headers: Headers
) -> Identity:
    user = org = session = None
    for extractor in extractors:
        found = extractor.extract(scope, headers)
        if found is NOBODY:
            continue
        user, org, session = user or found.user_id, org or found.org_id, session or found.session_id
        if user and org and session:
            break
    return _identity(user, org, session)


def headers_read(extractors: Sequence[IdentityExtractor]) -> frozenset[bytes] | None:
    """All that ``extractors`` read, if that is only request headers: these names; else ``None``.

    Such extractors find nobody in a request that has none of these headers, so the middleware
    need not call them then (most requests of most apps). Only Watchkeeper's own header and JWT
    extractors are known to read nothing else: a subclass, or any other extractor, may read
    anything in the scope, so it is always called.
    """
    names: set[bytes] = set()
    for extractor in extractors:
        if type(extractor) is FromHeaders:
            names.update(extractor.header_names)
        elif type(extractor) is FromJwtClaims:
            names.add(AUTHORIZATION)
        else:
            return None
    return frozenset(names)


def only_state_read(extractors: Sequence[IdentityExtractor]) -> bool:
    """Whether ``extractors`` read nothing but ``request.state``.

    Such extractors find nobody in a request whose scope has no state, or an empty one (where
    neither the app nor its lifespan stored anything), so the middleware need not call them then.
    As with :func:`headers_read`, only Watchkeeper's own extractor is known to read nothing else.
    """
    return all(type(extractor) is FromRequestState for extractor in extractors)
