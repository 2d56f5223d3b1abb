"""Business rules on AI answers: each run records pass/fail with the value it saw.

Validators are registered per integration or operation name (``"retrieval"``,
``"chart.compute"``) and run on the caller's thread when :func:`validate` is called, because they
judge the caller's own result. A failure is stored as an issue with a severity, linked to the
span and session that were current. A validator that raises is itself recorded as a failure; it
never raises into the app.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from watchkeeper.model.events import Severity, ValidationResult
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import current_span

_WORD = re.compile(r"[a-z0-9]{4,}")


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool
    observed: float | str | None
    expected: str
    message: str = ""


class Validator(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, value: Any) -> Outcome: ...


def _field(value: Any, field: str | None) -> Any:
    if field is None:
        return value
    if isinstance(value, Mapping):
        return value.get(field)
    return getattr(value, field, None)


@dataclass(frozen=True, slots=True)
class MinimumScore:
    """A number (e.g. a RAG relevance score) must reach ``minimum``."""

    minimum: float
    field: str | None = None
    name: str = "minimum_score"

    def check(self, value: Any) -> Outcome:
        observed = _field(value, self.field)
        expected = f">= {self.minimum:g}"
        if isinstance(observed, bool) or not isinstance(observed, int | float):
            return Outcome(False, None, expected, f"no numeric {self.field or 'value'} to check")
        if math.isnan(observed):
            return Outcome(False, None, expected, "score is NaN")
        passed = observed >= self.minimum
        message = "" if passed else f"{observed:g} is below {self.minimum:g}"
        return Outcome(passed, float(observed), expected, message)


@dataclass(frozen=True, slots=True)
class RequiredFields:
    """Every listed field is present and not empty (e.g. a birth chart's planets and houses)."""

    fields: tuple[str, ...]
    name: str = "required_fields"

    def check(self, value: Any) -> Outcome:
        missing = [field for field in self.fields if _field(value, field) in (None, "", [], {})]
        expected = "all of " + ", ".join(self.fields)
        if missing:
            return Outcome(False, ", ".join(missing), expected, "missing " + ", ".join(missing))
        return Outcome(True, None, expected)


@dataclass(frozen=True, slots=True)
class NotEmpty:
    """The result (e.g. a synthesised voice file) has content."""

    field: str | None = None
    name: str = "not_empty"

    def check(self, value: Any) -> Outcome:
        observed = _field(value, self.field)
        size = len(observed) if isinstance(observed, str | bytes | list | dict | tuple) else None
        if observed is None or size == 0:
            return Outcome(False, 0.0, "non-empty", f"{self.field or 'result'} is empty")
        return Outcome(True, float(size) if size is not None else None, "non-empty")


@dataclass(frozen=True, slots=True)
class UsesContext:
    """The answer shares enough distinctive words with the retrieved context to be grounded in it.

    ``value`` is a mapping or object with ``answer`` (text) and ``context`` (text or texts). The
    observed value is the share of the answer's distinctive words found in the context.
    """

    minimum_overlap: float = 0.3
    answer_field: str = "answer"
    context_field: str = "context"
    name: str = "uses_context"

    def check(self, value: Any) -> Outcome:
        answer = _field(value, self.answer_field)
        context = _field(value, self.context_field)
        expected = f"overlap >= {self.minimum_overlap:g}"
        if not isinstance(answer, str) or context is None:
            return Outcome(False, None, expected, "needs an answer text and a context")
        texts = [context] if isinstance(context, str) else [str(item) for item in context]
        answer_words = set(_WORD.findall(answer.lower()))
        if not answer_words:
            return Outcome(False, 0.0, expected, "the answer has no distinctive words")
        context_words = set(_WORD.findall(" ".join(texts).lower()))
        overlap = len(answer_words & context_words) / len(answer_words)
        passed = overlap >= self.minimum_overlap
        message = "" if passed else f"only {overlap:.0%} of the answer's words are in the context"
        return Outcome(passed, round(overlap, 4), expected, message)


@dataclass(frozen=True, slots=True)
class Rule:
    """A custom rule from a function returning ``True`` when the value is acceptable."""

    name: str
    predicate: Callable[[Any], bool]
    expected: str = "predicate holds"

    def check(self, value: Any) -> Outcome:
        passed = bool(self.predicate(value))
        observed = value if isinstance(value, int | float | str) else None
        return Outcome(passed, observed, self.expected)


@dataclass(frozen=True, slots=True)
class _Registration:
    validator: Validator
    severity: Severity


class ValidatorRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_target: dict[str, tuple[_Registration, ...]] = {}

    def register(
        self, target: str, validator: Validator, severity: Severity = Severity.WARNING
    ) -> None:
        if not isinstance(target, str) or not target:
            raise TypeError(
                f"register_validator() needs the integration or operation name as a non-empty "
                f"string, got {target!r}"
            )
        if not callable(getattr(validator, "check", None)):
            raise TypeError(
                f"register_validator() needs an object with a check(value) method, "
                f"got {validator!r}"
            )
        if not isinstance(severity, Severity):
            choices = ", ".join(item.value for item in Severity)
            raise TypeError(
                f"severity must be a watchkeeper Severity ({choices}), got {severity!r}"
            )
        with self._lock:
            self._by_target[target] = (
                *self._by_target.get(target, ()),
                _Registration(validator, severity),
            )

    def targets(self) -> Iterable[str]:
        return tuple(self._by_target)

    def has(self, target: str) -> bool:
        return target in self._by_target

    def validate(
        self, target: str, value: Any, recorder: Recorder | None = None
    ) -> list[ValidationResult]:
        """Run ``target``'s validators on ``value``, record each result and return them."""
        registrations = self._by_target.get(target, ())
        if not registrations:
            return []
        recorder = recorder or get_recorder()
        span = current_span.get()
        results = []
        for registration in registrations:
            validator = registration.validator
            try:
                outcome = validator.check(value)
            except Exception as error:  # a user's rule failing is a result too
                outcome = Outcome(False, None, "validator runs", f"{type(error).__name__}: {error}")
            result = ValidationResult(
                time=time.time(),
                validator=validator.name,
                target=target,
                passed=outcome.passed,
                observed=outcome.observed,
                expected=outcome.expected,
                severity=registration.severity,
                message=outcome.message,
                trace_id=span.trace_id if span is not None else 0,
                span_id=span.span_id if span is not None else 0,
                session_id=span.session_id if span is not None else None,
                user_id=span.user_id if span is not None else None,
                org_id=span.org_id if span is not None else None,
            )
            if span is not None and not outcome.passed:
                span.set_attribute("validation_failed", validator.name)
            if recorder.enabled:
                recorder.submit(result)
            results.append(result)
        return results


validators = ValidatorRegistry()
"""The process-wide registry used by :func:`register_validator` and :func:`validate`."""


def register_validator(
    target: str, validator: Validator, severity: Severity = Severity.WARNING
) -> None:
    validators.register(target, validator, severity)


def validate(target: str, value: Any) -> list[ValidationResult]:
    return validators.validate(target, value)
