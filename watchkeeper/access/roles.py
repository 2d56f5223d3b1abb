"""Roles and what each may do.

Five roles: a **super admin** may do everything; an **org admin** reads everything of their
organisation, manages its keys, reads its audit log and acknowledges its alerts; a **user** reads
what concerns their own user id; a **read-only** viewer reads (its organisation's data when it has
one) and changes nothing; an **ingest-only** key sends telemetry and reads nothing.
"""

from __future__ import annotations

from enum import StrEnum

from watchkeeper.config import ConfigurationError, Settings


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    ORG_ADMIN = "org_admin"
    USER = "user"
    READ_ONLY = "read_only"
    INGEST_ONLY = "ingest_only"


class Permission(StrEnum):
    """What a route needs. Routes declare it (see :mod:`watchkeeper.access.guard`)."""

    READ = "read"
    """Read recorded data, within the caller's scope."""
    INGEST = "ingest"
    """Send spans, logs and metrics."""
    MANAGE_KEYS = "manage_keys"
    """Create, rotate and revoke keys (an org admin: of their organisation only)."""
    READ_AUDIT = "read_audit"
    """Read the audit log (an org admin: their organisation's entries only)."""
    ACKNOWLEDGE = "acknowledge"
    """Acknowledge alerts (an org admin: their organisation's)."""
    CONFIGURE = "configure"
    """Change rules, silences, retention, resilience and other settings; read configuration."""
    SIGNED_IN = "signed_in"
    """Any valid key: who am I, log in and out."""


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SUPER_ADMIN: frozenset(Permission),
    Role.ORG_ADMIN: frozenset(
        {
            Permission.READ,
            Permission.MANAGE_KEYS,
            Permission.READ_AUDIT,
            Permission.ACKNOWLEDGE,
            Permission.SIGNED_IN,
        }
    ),
    Role.USER: frozenset({Permission.READ, Permission.SIGNED_IN}),
    Role.READ_ONLY: frozenset({Permission.READ, Permission.SIGNED_IN}),
    Role.INGEST_ONLY: frozenset({Permission.INGEST, Permission.SIGNED_IN}),
}

DEFAULT_RATE_LIMITS: dict[Role, int] = {
    Role.SUPER_ADMIN: 600,
    Role.ORG_ADMIN: 600,
    Role.USER: 300,
    Role.READ_ONLY: 300,
    Role.INGEST_ONLY: 6000,
}
"""Requests per minute per key when neither the key nor ``WATCHKEEPER_KEY_RATE_LIMITS`` says."""


def rate_limits(settings: Settings) -> dict[Role, int]:
    """The per-minute limit of each role: the defaults, overridden by the settings."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for name, limit in settings.key_rate_limits.items():
        try:
            role = Role(name)
        except ValueError:
            raise ConfigurationError(
                f"WATCHKEEPER_KEY_RATE_LIMITS: {name!r} is not a role; expected one of "
                + ", ".join(role.value for role in Role)
            ) from None
        if limit < 1:
            raise ConfigurationError(
                f"WATCHKEEPER_KEY_RATE_LIMITS: {name}'s limit must be at least 1 request a minute"
            )
        limits[role] = limit
    return limits


def may_grant(granter: Role, role: Role) -> bool:
    """Whether a key of role ``granter`` may create (or rotate, revoke) a key of ``role``."""
    match granter:
        case Role.SUPER_ADMIN:
            return True
        case Role.ORG_ADMIN:
            return role in (Role.ORG_ADMIN, Role.USER, Role.READ_ONLY)
        case Role.USER | Role.READ_ONLY | Role.INGEST_ONLY:
            return False
