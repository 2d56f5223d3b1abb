"""Who is calling: a key's role, organisation and user, and the scope of what it may read.

:func:`current_principal` is the FastAPI dependency routes use. The :class:`Guard` of the
router the route is under has already authenticated the request (or refused it) by the time
any route dependency runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from watchkeeper.access.roles import GRANTS, Permission, Role
from watchkeeper.model.query import Scope

PRINCIPAL_STATE = "watchkeeper_principal"


class Unauthorized(Exception):
    """No valid key (or session): a 401."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Forbidden(Exception):
    """A valid key whose role or organisation does not allow this: a 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``key_id`` is ``env:<n>`` for the environment's bootstrap keys, ``open``
    when access was opened, otherwise the stored key's id."""

    key_id: str
    role: Role
    name: str
    org_id: str | None = None
    user_id: str | None = None
    rate_limit: int | None = None
    """Requests per minute of this key; ``None``: its role's."""

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def scope(self) -> Scope:
        """What this caller may read. Roles that cannot read get a scope matching nothing."""
        match self.role:
            case Role.SUPER_ADMIN:
                return Scope.everything()
            case Role.ORG_ADMIN | Role.READ_ONLY:
                return Scope(org_id=self.org_id) if self.org_id else Scope.everything()
            case Role.USER:
                return Scope(org_id=self.org_id, user_id=self.user_id)
            case Role.INGEST_ONLY:
                return NOTHING

    def governs(self, org_id: str | None) -> bool:
        """Whether this caller administers an organisation's keys and audit entries."""
        return self.role is Role.SUPER_ADMIN or (
            self.role is Role.ORG_ADMIN and self.org_id is not None and self.org_id == org_id
        )


NOTHING = Scope(org_id="\x00none", user_id="\x00none")
"""A scope no stored row can be in (identities never hold NUL characters)."""

OPEN_ACCESS = Principal("open", Role.SUPER_ADMIN, "open access")


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (a 401 if the request was not)."""
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    if not isinstance(principal, Principal):
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    return principal


def current_scope(request: Request) -> Scope:
    """FastAPI dependency: what the authenticated caller may read."""
    return current_principal(request).scope()


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
"""A route parameter's type: ``def route(principal: CurrentPrincipal)``."""
