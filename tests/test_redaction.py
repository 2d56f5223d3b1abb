import pytest

from watchkeeper.config import ConfigurationError, load_settings
from watchkeeper.model.events import LogLevel, Snapshot
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import MASK, Redactor
from watchkeeper.testing import MemorySink


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+ai@example.co.uk today", f"write to {MASK} today"),
        ("call +44 20 7946 0958 now", f"call {MASK} now"),
        ("call (555) 123-4567.", f"call {MASK}."),
        ("card 4111 1111 1111 1111 expires", f"card {MASK} expires"),
        ("card 5500-0000-0000-0004", f"card {MASK}"),
        ("key sk-proj-abcdefghijklmnop1234 leaked", f"key {MASK} leaked"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstuv", f"anthropic {MASK}"),
        ("aws AKIAIOSFODNN7EXAMPLE", f"aws {MASK}"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"Authorization: {MASK}"),
    ],
)
def test_default_patterns_are_redacted(text: str, expected: str) -> None:
    assert Redactor.build().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # fails the Luhn check: an id, not a card
        "client 192.168.100.200",
        "at 2026-11-23 10:00:00",
        "GET /api/users/{user_id}",
        "took 1234 ms",
    ],
)
def test_lookalikes_are_kept(text: str) -> None:
    assert Redactor.build().text(text) == text


def test_fields_and_custom_patterns_nested() -> None:
    redactor = Redactor.build(field_names=["birth_date"], patterns=[r"\bORD-\d+\b"])
    data = {
        "Birth_Date": "1990-04-01",
        "question": "Is ORD-991 late? mail me at a@b.io",
        "docs": [{"password": "hunter2", "text": "ok"}],
        "score": 0.71,
    }
    assert redactor.mapping(data) == {
        "Birth_Date": MASK,
        "question": f"Is {MASK} late? mail me at {MASK}",
        "docs": [{"password": MASK, "text": "ok"}],
        "score": 0.71,
    }


def test_bad_pattern_fails_at_start_up_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_REDACT_PATTERNS"):
        load_settings(redact_patterns=["(unclosed"])


def test_recorder_redacts_before_the_sink_sees_anything() -> None:
    sink = MemorySink()
    settings = load_settings(flush_interval=0.02, raise_internal_errors=True)
    with Recorder(settings, sink=sink) as recorder:
        with recorder.span("signup") as span:
            span.set_attribute("email", "jane@example.com")
            recorder.log(LogLevel.INFO, "welcome mail sent to jane@example.com")
            recorder.submit(Snapshot(0.0, "form", {"phone": "+1 415 555 0100", "api_key": "x"}))
        with pytest.raises(ValueError, match="jane@"), recorder.span("fails"):
            raise ValueError("no account for jane@example.com")
    (span, failed) = sink.spans()
    assert span.attributes == {"email": MASK}
    assert failed.error_message == f"no account for {MASK}"
    assert sink.logs[0].message == f"welcome mail sent to {MASK}"
    assert sink.snapshots[0].data == {"phone": MASK, "api_key": MASK}


def test_redaction_can_be_turned_off() -> None:
    sink = MemorySink()
    settings = load_settings(flush_interval=0.02, redact=False)
    with Recorder(settings, sink=sink) as recorder, recorder.span("signup") as span:
        span.set_attribute("email", "jane@example.com")
    assert sink.spans()[0].attributes == {"email": "jane@example.com"}


def test_store_errors_never_carry_a_password() -> None:
    from watchkeeper.storage.errors import describe_error  # noqa: PLC0415

    error = OSError("cannot reach postgresql://watch:hunter2-secret@db.internal:5432/wk")
    described = describe_error(error)
    assert "hunter2-secret" not in described
    assert "postgresql://watch:***@db.internal:5432/wk" in described
