"""Print the README's configuration table from ``watchkeeper.config.Settings``.

python scripts/config_table.py   # paste between the config-table markers in README.md
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_core import PydanticUndefined

from watchkeeper.config import Settings, variable


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "this host and process id" if isinstance(value, str) else f"`{value!r}`"
    value = field.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, timedelta):
        days, seconds = value.days, value.seconds
        return f"{days} days" if not seconds else f"{value.total_seconds():g} s"
    return f"`{value}`"


def table() -> str:
    lines = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | `{variable(name)}` | {_default(field)} | {description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
