"""A value that is not text in a text column is stored as its text, alike on both stores."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.events import LogLevel, LogRecord, Severity, ValidationResult
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
MINUTE = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 60, UTC))


def test_numbers_in_text_columns_are_stored_as_their_text(store: SqlStore) -> None:
    # Typed as text, but user code fills them: a validator's expectation, an operation's name.
    rule = ValidationResult(T0, "max_len", "answer", False, 120, 100, Severity.ERROR, 0)  # type: ignore[arg-type]
    zero = ValidationResult(T0 + 1, "v", "t", True, None, 0, Severity.INFO, "ok")  # type: ignore[arg-type]
    log = LogRecord(T0 + 2, LogLevel.INFO, "app", 2.5)  # type: ignore[arg-type]
    store.write(
        batch_of(
            [span(T0 + 3, operation=7, error_type=404)],
            validations=[rule, zero],
            logs=[log],
        )
    )

    by_validator = {v.validator: v for v in store.validations(MINUTE, EVERYTHING).items}
    assert (by_validator["max_len"].expected, by_validator["max_len"].message) == ("100", "0")
    assert by_validator["max_len"].observed == 120
    assert by_validator["v"].expected == "0"
    (stored,) = store.spans(MINUTE, EVERYTHING).items
    assert (stored.operation, stored.error_type) == ("7", "404")
    (line,) = store.logs(MINUTE, EVERYTHING).items
    assert line.message == "2.5"
