"""What the span, log and metric mappings share: attribute values and their bounds, the resource
attributes kept, the names identity is read from, and what a mapping returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from watchkeeper.model.events import Attributes

MAX_ATTRIBUTES = 64
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 1_024
MAX_ARRAY_ITEMS = 32
MAX_NAME_CHARS = 200
MAX_IDENTITY_CHARS = 256

SERVICE_NAME = "service.name"
UNKNOWN_SERVICE = "unknown_service"
"""What OpenTelemetry SDKs name a service nobody named."""

RESOURCE_KEPT = (
    SERVICE_NAME,
    "service.namespace",
    "service.version",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "telemetry.sdk.language",
)
"""Resource attributes worth keeping on every record; the rest (process, host) repeat each time."""

USER_KEYS = ("enduser.id", "user.id")
SESSION_KEYS = ("session.id", "gen_ai.conversation.id")
ORG_KEYS = ("org.id", "organization.id", "tenant.id")

E = TypeVar("E")


@dataclass
class Mapped(Generic[E]):
    """What a request became: Watchkeeper events, and the items refused, by reason."""

    events: list[E] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


class Lookup:
    """The first present value among several attribute names, the item's before the resource's."""

    def __init__(self, own: Attributes, resource: Attributes) -> None:
        self.own = own
        self.resource = resource

    def value(self, keys: Iterable[str], both: bool = False) -> Any:
        sources = (self.own, self.resource) if both else (self.own,)
        for source in sources:
            for key in keys:
                value = source.get(key)
                if value is not None and value != "":
                    return value
        return None

    def text(self, keys: Iterable[str], both: bool = False) -> str | None:
        value = self.value(keys, both)
        return None if value is None else str(value)

    def identity(self, keys: Iterable[str]) -> str | None:
        """A user, session or organisation id, from the item or its resource, cut short."""
        return short(self.text(keys, both=True))

    def count(self, keys: Iterable[str]) -> int | None:
        """A non-negative integer, also from a float or a string (senders differ)."""
        value = self.value(keys)
        if isinstance(value, bool) or value is None:
            return None
        try:
            number = int(float(value)) if isinstance(value, str) else int(value)
        except (TypeError, ValueError, OverflowError):
            return None
        return number if number >= 0 else None


def resource_kept(resource: Attributes) -> Attributes:
    """The resource attributes every record of the resource carries, with a service name."""
    kept = {key: resource[key] for key in RESOURCE_KEPT if key in resource}
    kept.setdefault(SERVICE_NAME, UNKNOWN_SERVICE)
    return kept


def bounded(own: Attributes, attributes: Attributes) -> Attributes:
    """``own`` (what Watchkeeper reads), then the sender's attributes, at most MAX_ATTRIBUTES."""
    for key, value in attributes.items():
        if len(own) >= MAX_ATTRIBUTES:
            break
        own.setdefault(key, value)
    return own


def attributes_of(pairs: Iterable[KeyValue]) -> Attributes:
    """OTLP key-values as plain values, keys and strings clipped, at most MAX_ATTRIBUTES."""
    result: Attributes = {}
    for pair in pairs:
        if len(result) >= MAX_ATTRIBUTES:
            break
        result[pair.key[:MAX_KEY_CHARS]] = plain(pair.value)
    return result


def plain(value: AnyValue, max_depth: int = 1, depth: int = 0) -> Any:
    """An ``AnyValue`` as a plain value; arrays and maps at most MAX_ARRAY_ITEMS long, and
    nested at most ``max_depth`` deep."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value[:MAX_VALUE_CHARS]
    if which in ("bool_value", "int_value", "double_value"):
        return getattr(value, which)
    if which == "bytes_value":
        return value.bytes_value[: MAX_VALUE_CHARS // 2].hex()
    if depth >= max_depth:
        # Deeper structures are rare and unbounded in shape: kept as short text.
        return str(value)[:MAX_VALUE_CHARS]
    if which == "array_value":
        return [
            plain(item, max_depth, depth + 1) for item in value.array_value.values[:MAX_ARRAY_ITEMS]
        ]
    if which == "kvlist_value":
        return {
            pair.key[:MAX_KEY_CHARS]: plain(pair.value, max_depth, depth + 1)
            for pair in value.kvlist_value.values[:MAX_ARRAY_ITEMS]
        }
    return None


def identifier(raw: bytes, size: int) -> int:
    """A trace (16 bytes) or span (8 bytes) id as an integer; 0 when absent or malformed."""
    return int.from_bytes(raw, "big") if len(raw) == size else 0


def short(value: str | None) -> str | None:
    """Identity and model names, cut so one odd sender cannot bloat the indexes."""
    return value[:MAX_IDENTITY_CHARS] if value else None


def clip(text: str) -> str:
    return text[:MAX_NAME_CHARS]
