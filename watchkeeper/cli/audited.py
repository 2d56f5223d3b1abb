"""The command line in the audit log: changes made with ``watchkeeper keys`` or ``alerts``.

Whoever can run these with the store's settings acts as a super admin; each entry names the
command, the host and the operating-system user who ran it.
"""

from __future__ import annotations

import getpass
import socket

from watchkeeper.access.audit import Actor, AuditLog
from watchkeeper.access.principal import Principal
from watchkeeper.access.roles import Role
from watchkeeper.config import Settings
from watchkeeper.model.store import Store

CLI = Principal("cli", Role.SUPER_ADMIN, "command line")


def cli_actor(command: str) -> Actor:
    return Actor(CLI, socket.gethostname(), f"watchkeeper {command} ({getpass.getuser()})")


def audit_log(settings: Settings, store: Store) -> AuditLog:
    return AuditLog.for_settings(settings, lambda: store)
