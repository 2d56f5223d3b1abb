"""Error fingerprints: which errors are "the same problem", in Sentry's order.

1. An explicit fingerprint, when the code that logged gave one.
2. Else the exception type and the in-app stack frames (module and function, never line numbers,
   so an edit above a function does not split its group). In-app means not the standard
   library, not an installed package, not Watchkeeper itself.
3. Else the exception type and its message with the variable parts (numbers, ids, UUIDs, e-mail
   addresses, URLs, hex, IP addresses, timestamps) replaced by placeholders.

Warnings and error log lines without an exception are grouped by their template: the logger and
the message masked the same way, so ``retrying in 3 s`` and ``retrying in 9 s`` are one pattern.

A fingerprint is a hash of these components only. :data:`GROUPING_VERSION` is stored with every
group it creates: a later version that changes a rule computes the same hash for every event the
rule does not touch, and passes the hashes of the version before as ``previous``, which the store
resolves to the group they already have, so no history is split.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from watchkeeper.model.events import Frames

GROUPING_VERSION = 1
TITLE_LIMIT = 200

# Order matters: a URL holds what looks like hex, ids and numbers; an e-mail holds words.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), placeholder)
    for pattern, placeholder in (
        (r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", "<url>"),
        (r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", "<email>"),
        (r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", "<uuid>"),
        (
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
            "<time>",
        ),
        (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
        (r"\b0x[0-9a-f]+\b", "<hex>"),
        # Hex or mixed letters-and-digits runs of 8+ characters: hashes, request and object ids.
        (r"\b(?=[a-z_-]*\d)(?=[0-9_-]*[a-z])[a-z0-9_-]{8,}\b", "<id>"),
        # A number, also when a unit follows it (3012ms); not inside a word (http2, gpt4o).
        (r"\b\d+(?:\.\d+)?", "<num>"),
    )
)


class ErrorSource(StrEnum):
    """What an error group's events are: failed spans of a kind, or log lines."""

    REQUEST = "request"
    INTEGRATION = "integration"
    TOOL = "tool"
    SPAN = "span"
    """Any other span kind that failed (an agent step, a queue job, internal work)."""
    LOG = "log"
    """Log records with an exception."""
    PATTERN = "pattern"
    """Log lines at WARNING and above without an exception, grouped by template."""


class Basis(StrEnum):
    """Which rule made the fingerprint."""

    EXPLICIT = "explicit"
    STACK = "stack"
    MESSAGE = "message"
    TEMPLATE = "template"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    hash: str
    """32 hex digits: the group's id."""
    basis: Basis
    title: str
    error_type: str | None
    culprit: str | None
    """The innermost in-app frame, ``module.function``."""
    frames: Frames
    """The in-app frames the fingerprint was made of (empty unless the basis is the stack)."""
    version: int = GROUPING_VERSION
    previous: tuple[str, ...] = ()
    """Hashes an earlier grouping version gave the same event."""


def normalise(message: str) -> str:
    """``message`` with its variable parts replaced by placeholders, whitespace collapsed."""
    for pattern, placeholder in _MASKS:
        message = pattern.sub(placeholder, message)
    return " ".join(message.split())


def _hash(*components: str) -> str:
    return hashlib.sha256("\x1f".join(components).encode("utf-8", "replace")).hexdigest()[:32]


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


@lru_cache(maxsize=1)
def _library_paths() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {
        paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths
    }
    roots.update(path for path in sys.path if "-packages" in path)
    return tuple(sorted({str(Path(root).resolve()) for root in roots}, key=len, reverse=True))


@lru_cache(maxsize=4096)
def is_in_app(module: str) -> bool:
    """Whether a frame's module is the app's own code: not the standard library, not an
    installed package, not Watchkeeper. Decided by the module's top-level package; a package this
    process cannot find (the app's code seen from a collector elsewhere) counts as the app's."""
    top = module.partition(".")[0]
    if not top or top == "watchkeeper" or top in sys.stdlib_module_names:
        return False
    if top == "__main__":
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return True
    if spec is None:
        return True
    if spec.origin in ("built-in", "frozen"):
        return False
    locations = [spec.origin] if spec.origin else list(spec.submodule_search_locations or ())
    return not locations or not all(map(_under_a_library, locations))


def _under_a_library(location: str) -> bool:
    resolved = str(Path(location).resolve())
    return any(resolved.startswith(root + "/") for root in _library_paths())


def in_app(frames: Sequence[tuple[str, str]] | None) -> Frames:
    return tuple((module, function) for module, function in frames or () if is_in_app(module))


def _culprit(frames: Frames) -> str | None:
    if not frames:
        return None
    module, function = frames[-1]
    return f"{module}.{function}"


def exception_value(error_type: str | None, traceback_text: str | None) -> str | None:
    """The message of the exception a traceback ends with (its last ``Type: message`` line)."""
    if not traceback_text:
        return None
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    head, separator, value = last.partition(": ")
    if error_type is not None and separator and head.rsplit(".", 1)[-1] == error_type:
        return value
    return None if error_type is not None and last.strip() == error_type else last


FINGERPRINT = "fingerprint"
"""Where an app names an error's group itself: a log record's ``extra`` key, a span's attribute."""


def fingerprint_of(value: object) -> str | None:
    """An app's explicit fingerprint: a string, or a list of parts (as Sentry takes)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "/".join(str(part) for part in value)
    return str(value)


def error_fingerprint(
    error_type: str | None,
    message: str | None,
    frames: Sequence[tuple[str, str]] | None = None,
    explicit: str | None = None,
) -> Fingerprint:
    """The fingerprint of an error: explicit, else type and in-app stack, else type and message."""
    type_text = error_type or "Error"
    shown = f"{type_text}: {message}" if message else type_text
    app_frames = in_app(frames)
    culprit = _culprit(app_frames)
    if explicit:
        return Fingerprint(
            _hash("explicit", explicit),
            Basis.EXPLICIT,
            _title(shown),
            error_type,
            culprit,
            app_frames,
        )
    if app_frames:
        parts = [f"{module}:{function}" for module, function in app_frames]
        return Fingerprint(
            _hash("stack", type_text, *parts),
            Basis.STACK,
            _title(shown),
            error_type,
            culprit,
            app_frames,
        )
    return Fingerprint(
        _hash("message", type_text, normalise(message or "")),
        Basis.MESSAGE,
        _title(shown),
        error_type,
        None,
        (),
    )


def template_fingerprint(logger: str, message: str) -> Fingerprint:
    """The fingerprint of a log line without an exception: its logger and masked message."""
    template = normalise(message)
    return Fingerprint(
        _hash("template", logger, template), Basis.TEMPLATE, _title(template), None, None, ()
    )
