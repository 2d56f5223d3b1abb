"""The resilience file (TOML or YAML) and ``WATCHKEEPER_RESILIENCE_POLICIES``, read and checked
at start-up.

Both hold one table per integration, plus ``defaults`` for every integration without a policy
from code; each table sets only what it changes::

    [defaults]
    timeout = 20

    [openai]
    deadline = 90
    retry = { attempts = 4, idempotent = true }
    rate_limit = { tokens_per_minute = 200000, wait = 5 }
    fallback = { cache = true }

The environment variable's JSON is merged over the file, table by table. A mistake fails the
start with the file or variable, the integration and the field named.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watchkeeper.config import ConfigurationError, Settings, read_yaml
from watchkeeper.resilience.policy import Policy, merge, overridden

DEFAULTS = "defaults"


def _read(path: Path) -> dict[str, Any]:
    where = f"WATCHKEEPER_RESILIENCE_FILE ({path})"
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigurationError(f"{where}: expected a .toml, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{where}: cannot be read ({error.strerror})") from None
    if suffix == ".toml":
        try:
            document: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(f"{where}: not valid TOML ({error})") from None
    else:
        document = read_yaml(text, where)
    return _tables(document, where)


def _tables(document: object, where: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigurationError(f"{where}: expected a table per integration")
    for name, table in document.items():
        if not isinstance(table, dict):
            raise ConfigurationError(
                f"{where}: [{name}] must be a table of policy fields, got {table!r}"
            )
    return dict(document)


def _check(tables: dict[str, Any], where: str) -> None:
    defaults = tables.get(DEFAULTS, {})
    base = _policy(Policy(), defaults, where, DEFAULTS)
    for name, table in tables.items():
        if name != DEFAULTS:
            _policy(base, table, where, name)


def _policy(base: Policy, table: dict[str, Any], where: str, name: str) -> Policy:
    try:
        return overridden(base, table)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'policy'}: "
            f"{str(problem['msg']).removeprefix('Value error, ')} "
            f"(given {problem.get('input')!r})"
            for problem in error.errors()
        )
        raise ConfigurationError(f"{where}: [{name}] {problems}") from None


def load_policies(settings: Settings) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ``defaults`` table and each integration's, from the file and the environment."""
    tables: dict[str, Any] = {}
    if settings.resilience_file is not None:
        path = settings.resilience_file.expanduser()
        tables = _read(path)
        _check(tables, f"WATCHKEEPER_RESILIENCE_FILE ({path})")
    if settings.resilience_policies:
        given = _tables(settings.resilience_policies, "WATCHKEEPER_RESILIENCE_POLICIES")
        tables = merge(tables, given)
        _check(tables, "WATCHKEEPER_RESILIENCE_POLICIES")
    defaults = tables.pop(DEFAULTS, {})
    return defaults, tables
