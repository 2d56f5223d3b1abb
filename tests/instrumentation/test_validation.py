from dataclasses import dataclass

import pytest

from watchkeeper.instrumentation.validation import (
    MinimumScore,
    NotEmpty,
    RequiredFields,
    Rule,
    UsesContext,
    ValidatorRegistry,
)
from watchkeeper.model.events import Severity, SpanKind
from watchkeeper.testing.plugin import RecorderUnderTest


@dataclass
class Retrieval:
    relevance: float
    documents: list[str]


def test_relevance_threshold_records_pass_and_fail_linked_to_span_and_session(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    registry = ValidatorRegistry()
    registry.register("retrieval", MinimumScore(0.65, field="relevance"), Severity.ERROR)
    with watchkeeper_recorder.span("POST /api/guidance", SpanKind.REQUEST) as request:
        request.set_identity(user_id="u1", session_id="s1")
        with watchkeeper_recorder.span("retrieval", SpanKind.INTEGRATION) as call:
            good = registry.validate("retrieval", Retrieval(0.81, ["a"]), watchkeeper_recorder)
        with watchkeeper_recorder.span("retrieval", SpanKind.INTEGRATION) as weak_call:
            bad = registry.validate("retrieval", Retrieval(0.42, []), watchkeeper_recorder)
    assert [result.passed for result in good + bad] == [True, False]
    watchkeeper_recorder.flush()
    stored = watchkeeper_recorder.memory.validations
    assert [(r.passed, r.observed, r.expected) for r in stored] == [
        (True, 0.81, ">= 0.65"),
        (False, 0.42, ">= 0.65"),
    ]
    failure = stored[1]
    assert failure.severity is Severity.ERROR
    assert failure.message == "0.42 is below 0.65"
    assert (failure.span_id, failure.trace_id) == (weak_call.span_id, call.trace_id)
    assert (failure.session_id, failure.user_id) == ("s1", "u1")
    spans = watchkeeper_recorder.recorded_spans(kind=SpanKind.INTEGRATION)
    assert spans[1].attributes == {"validation_failed": "minimum_score"}


@pytest.mark.parametrize(
    ("validator", "value", "passed", "observed"),
    [
        (
            RequiredFields(("sun", "moon", "ascendant")),
            {"sun": "Leo", "moon": "", "ascendant": "x"},
            False,
            "moon",
        ),
        (RequiredFields(("sun", "moon")), {"sun": "Leo", "moon": "Aries"}, True, None),
        (NotEmpty(), b"", False, 0.0),
        (NotEmpty(field="audio"), {"audio": b"RIFF...."}, True, 8.0),
        (MinimumScore(0.65), "high", False, None),
        (MinimumScore(0.65), float("nan"), False, None),
        (
            Rule("short_answer", lambda text: len(text) < 10),
            "too long an answer",
            False,
            "too long an answer",
        ),
    ],
)
def test_builtin_validators(
    validator: object, value: object, passed: bool, observed: object
) -> None:
    registry = ValidatorRegistry()
    registry.register("step", validator)  # type: ignore[arg-type]
    outcome = validator.check(value)  # type: ignore[attr-defined]
    assert (outcome.passed, outcome.observed) == (passed, observed)


def test_uses_context_measures_grounding() -> None:
    validator = UsesContext(minimum_overlap=0.5)
    context = ["Saturn returns around age twenty nine bring restructuring of careers"]
    grounded = validator.check(
        {"answer": "Your Saturn return near twenty nine restructures careers", "context": context}
    )
    invented = validator.check(
        {"answer": "Mercury retrograde ruins every contract you sign", "context": context}
    )
    assert grounded.passed
    assert not invented.passed
    assert invented.observed == 0.0


def test_a_raising_validator_is_a_recorded_failure(watchkeeper_recorder: RecorderUnderTest) -> None:
    registry = ValidatorRegistry()
    registry.register("tts", Rule("explodes", lambda value: 1 / 0 > 0))
    (result,) = registry.validate("tts", b"audio", watchkeeper_recorder)
    assert not result.passed
    assert result.message == "ZeroDivisionError: division by zero"


def test_registration_errors_are_clear() -> None:
    registry = ValidatorRegistry()
    with pytest.raises(TypeError, match="non-empty string, got 42"):
        registry.register(42, MinimumScore(0.5))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"check\(value\) method"):
        registry.register("x", lambda value: True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Severity"):
        registry.register("x", MinimumScore(0.5), "high")  # type: ignore[arg-type]


def test_unregistered_target_records_nothing(watchkeeper_recorder: RecorderUnderTest) -> None:
    assert ValidatorRegistry().validate("nothing", 1, watchkeeper_recorder) == []
    watchkeeper_recorder.flush()
    assert watchkeeper_recorder.memory.validations == []
